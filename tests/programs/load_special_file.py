"""``MLP.load`` a path given on the command line and print what happened, on one line.

Run by tests/test_reliability.py on a named pipe and on /dev/zero, in a child process with a
timeout, so that a load that blocks or reads forever fails the test instead of hanging it. Where
the platform allows, the child's address space is capped at 1 GiB above what it uses after
importing fastbp, so a load that reads without bound ends in a MemoryError instead of exhausting
the machine's memory. Prints ``ValueError: <message>`` (or another exception's name), or ``loaded``.
"""

import os
import sys

import fastbp


def cap_address_space(extra=1 << 30):
    try:
        import resource

        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = used + extra
    if hard == resource.RLIM_INFINITY or limit < hard:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main():
    cap_address_space()
    try:
        fastbp.MLP.load(sys.argv[1])
    except Exception as exc:  # the test checks which exception it was
        print(f"{type(exc).__name__}: {exc}", flush=True)
    else:
        print("loaded", flush=True)


if __name__ == "__main__":
    main()
