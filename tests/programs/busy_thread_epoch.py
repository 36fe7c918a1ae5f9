"""Time parallel-backend epochs alone and beside a busy Python thread; print the two best times in seconds.

Run by tests/test_threads.py. A thread spinning in pure Python holds the GIL for a whole switch
interval at a time, so compiled code that waits for the GIL during an epoch (Numba's launch of each
parallel region did, twice per minibatch) is slowed down by up to that interval per wait. The
interval is set to 10 ms, twice Python's default, so that the waits show even on a loaded machine,
where the epoch's own threads often win the race for the GIL. Minibatches of 128 rows through
256-wide layers make each parallel region long enough for the spinning thread to wake up and take
the GIL meanwhile; 512 of them make an epoch long next to the few GIL waits that ``fit`` itself has
between its compiled calls.
Usage: ``busy_thread_epoch.py [repeats]``.
"""

import sys
import threading
import time

import numpy as np

EPOCHS = 3  # per fit call, as a user would run them


def best_epoch_seconds(model, X, y, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(X, y, epochs=EPOCHS, batch_size=128, backend="parallel")
        best = min(best, (time.perf_counter() - start) / EPOCHS)
    return best


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    import fastbp

    sys.setswitchinterval(0.01)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((65536, 64)).astype(np.float32)
    y = rng.integers(0, 8, size=65536)
    model = fastbp.MLP([64, 256, 256, 8], loss="softmax_cross_entropy", seed=0)
    model.fit(X[:256], y[:256], epochs=1, batch_size=128, backend="parallel")  # compile, or load the cache
    alone = best_epoch_seconds(model, X, y, repeats)

    stop = [False]

    def spin():
        while not stop[0]:
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        busy = best_epoch_seconds(model, X, y, repeats)
    finally:
        stop[0] = True
        spinner.join()
    print(alone, busy)


if __name__ == "__main__":
    main()
