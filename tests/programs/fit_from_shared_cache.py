"""Fit an estimator in a fresh process that finds its compiled kernels in a cache other processes wrote.

Run by tests/test_dask.py with ``NUMBA_CACHE_DIR`` set to the cache the Dask workers filled. Usage:
``python fit_from_shared_cache.py DIR``, where ``DIR`` holds ``X.npy``, ``y.npy``, the estimator's
``params.pkl`` (its ``get_params()``) and the first weight matrix it reached, ``coef0.npy``. Fails
unless the fit gives the same weights and loads the parallel epoch from the cache, compiling nothing.
"""

import pathlib
import pickle
import sys
import warnings

import numpy as np

from fastbp.kernels import driver
from fastbp.sklearn import MLPClassifier


def main(folder):
    warnings.simplefilter("ignore")
    X, y = np.load(folder / "X.npy"), np.load(folder / "y.npy")
    params = pickle.loads((folder / "params.pkl").read_bytes())
    clf = MLPClassifier(**params).fit(X, y)
    assert np.array_equal(clf.coefs_[0], np.load(folder / "coef0.npy")), "weights differ"
    stats = driver.train_epoch_parallel.stats
    assert sum(stats.cache_hits.values()) >= 1 and not stats.cache_misses, stats
    print("loaded from cache, same weights")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
