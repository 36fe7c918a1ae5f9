"""Import fastbp and train one epoch where no cache location is writable, as in a read-only install.

Run by tests/test_compile.py. Prints two words: whether the loss is finite, and whether fastbp warned
that it cannot cache.
"""

import warnings

import numba.core.caching as caching


def deny(self):
    raise OSError("read-only file system")


def main():
    caching._CacheLocator.ensure_cache_path = deny  # before fastbp is imported: no locator has a writable path
    import numpy as np

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import fastbp

        m = fastbp.MLP([2, 1], seed=0)
        h = m.fit(np.ones((4, 2)), np.ones(4), epochs=1, backend="cpu")
    print(np.isfinite(h["loss"][0]), any("cannot cache" in str(w.message) for w in caught))


if __name__ == "__main__":
    main()
