"""Train one small model on the serial backend and report how the compiled kernels' cache behaved.

Run by tests/test_kernel_misuse.py with ``NUMBA_CACHE_DIR`` set. Prints one line of JSON: the
RuntimeWarnings about the kernel cache, whether the loss is finite, and the training driver's
cache hits and misses in this process.
"""

import json
import warnings

import numpy as np


def main():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import fastbp
        from fastbp.kernels import driver

        model = fastbp.MLP([3, 4, 2], loss="mse", seed=0)
        history = model.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=1, backend="cpu")
    stats = driver.train_epoch.stats
    print(json.dumps({
        "warnings": [str(w.message) for w in caught
                     if issubclass(w.category, RuntimeWarning) and "cache" in str(w.message)],
        "finite": bool(np.isfinite(history["loss"][0])),
        "hits": sum(stats.cache_hits.values()),
        "misses": sum(stats.cache_misses.values()),
    }))


if __name__ == "__main__":
    main()
