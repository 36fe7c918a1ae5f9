"""Save a large model over an existing file, and fail or get killed while writing it.

Run by tests/test_reliability.py as ``python save_interrupted.py MODE PATH [LIMIT]``:

- ``fsize``: with the file size limit (``RLIMIT_FSIZE``) set to LIMIT bytes and SIGXFSZ ignored, so
  that a write past the limit fails with EFBIG instead of killing the process. Prints ``OSError EFBIG``
  (the errno's name) when ``save`` raised, ``saved`` when it did not.
- ``hang``: writes half of the parameters, prints ``writing`` and sleeps, for the test to SIGKILL it
  in the middle of the save.
"""

import errno
import resource
import signal
import sys
import time

import numpy as np
import numpy.lib.format

import fastbp


def main():
    mode, path = sys.argv[1], sys.argv[2]
    model = fastbp.MLP([300, 300, 10], activation="tanh", loss="mse", dtype=np.float64, seed=1)  # ~750 KB
    if mode == "fsize":
        limit = int(sys.argv[3])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            model.save(path)
        except OSError as exc:
            print("OSError", errno.errorcode.get(exc.errno, exc.errno), flush=True)
        else:
            print("saved", flush=True)
    elif mode == "hang":
        write_array = numpy.lib.format.write_array

        def write_half_then_hang(fp, array, *args, **kwargs):
            if array.size < 1000:  # the header
                return write_array(fp, array, *args, **kwargs)
            write_array(fp, array[: array.size // 2], *args, **kwargs)
            print("writing", flush=True)
            time.sleep(600)

        numpy.lib.format.write_array = write_half_then_hang
        model.save(path)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
