"""A GridSearchCV over fastbp estimators on a local Dask cluster (joblib's Dask backend), against the serial search.

The workers are separate processes that start with an empty, shared Numba cache directory and compile
the kernels themselves; they train with the ``parallel`` backend on Numba's OpenMP threading layer
(the fork-sensitive one, see fastbp.kernels.threads), which is safe because the nanny starts worker processes
with ``spawn``. A fresh process then loads the kernels from that cache and reproduces the results.
"""

import faulthandler
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import PROGRAMS, ROOT

pytest.importorskip("sklearn")
distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
import joblib  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from fastbp import variant_choice  # noqa: E402
from fastbp.datasets import load_digits  # noqa: E402
from fastbp.sklearn import MLPClassifier  # noqa: E402

TIME_LIMIT = 240  # seconds for the whole test (cold compiles on two busy cores included); aim: well under 60 s
GRID = {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-1]}


def _search():
    estimator = MLPClassifier(batch_size=32, max_iter=5, learning_rate_init=0.01, random_state=0, backend="parallel")
    return GridSearchCV(estimator, GRID, cv=2)


def _worker_report():
    """Runs on each worker: what it compiled or loaded, its threading layer, its process."""
    import numba

    from fastbp.kernels import driver

    stats = driver.train_epoch_parallel.stats
    layer = None
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run in this worker
        pass
    return {"pid": os.getpid(), "cache_dir": os.environ.get("NUMBA_CACHE_DIR"), "threading_layer": layer,
            "signatures": len(driver.train_epoch_parallel.signatures),
            "compiled": sum(stats.cache_misses.values()), "loaded": sum(stats.cache_hits.values())}


def test_grid_search_on_dask_equals_serial(tmp_path):
    faulthandler.dump_traceback_later(TIME_LIMIT, exit=True)  # a hung worker must not hang CI
    try:
        _run(tmp_path)
    finally:
        faulthandler.cancel_dump_traceback_later()


def _run(tmp_path):
    import numba

    X, y = load_digits()
    X, y = X[:300], y[:300]
    # Bit-identical results across processes need the same compiled variant in all of them: the network's own
    # here, whatever this test process compiled before.
    with warnings.catch_warnings(), variant_choice.variants("network"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        serial = _search().fit(X, y)

    # Worker processes are started by the nanny with this multiprocessing method: not "fork", so no
    # worker inherits an initialised threading runtime (OpenMP is not fork-safe).
    assert dask.config.get("distributed.worker.multiprocessing-method") in ("spawn", "forkserver")
    cache = tmp_path / "shared-numba-cache"
    cache.mkdir()
    env = {"NUMBA_CACHE_DIR": str(cache),                          # cold, shared by both workers
           "FASTBP_VARIANTS": "network",                           # the variant this process runs (below)
           "NUMBA_NUM_THREADS": str(numba.get_num_threads()),       # the same minibatch split as here
           "FASTBP_THREADING_LAYER": "omp"}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, env=env) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in client.scheduler_info()["workers"])
        with joblib.parallel_config(backend="dask"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the refit runs here
            with variant_choice.variants("network"):
                dask_search = _search().set_params(n_jobs=-1).fit(X, y)
        reports = list(client.run(_worker_report).values())

    assert dask_search.best_params_ == serial.best_params_
    for key in ["mean_test_score", "std_test_score", "split0_test_score", "split1_test_score", "rank_test_score"]:
        np.testing.assert_array_equal(dask_search.cv_results_[key], serial.cv_results_[key], err_msg=key)
    with variant_choice.variants("network"):
        np.testing.assert_array_equal(dask_search.predict_proba(X), serial.predict_proba(X))

    assert len({r["pid"] for r in reports}) == 2 and os.getpid() not in {r["pid"] for r in reports}
    for r in reports:  # both workers trained with the parallel backend, on OpenMP, from the shared cache dir
        assert r["cache_dir"] == str(cache)
        assert r["signatures"] >= 1 and r["threading_layer"] == "omp", reports
    assert sum(r["compiled"] for r in reports) >= 1, reports  # the cache started cold
    assert any(cache.rglob("*.nbi")), "the workers wrote no kernels to the shared cache"

    # A fresh process loads the kernels the workers wrote, compiles nothing, and fits the same model.
    best = serial.best_estimator_
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "coef0.npy", best.coefs_[0])
    (tmp_path / "params.pkl").write_bytes(pickle.dumps(best.get_params()))
    out = subprocess.run([sys.executable, PROGRAMS / "fit_from_shared_cache.py", tmp_path], capture_output=True,
                         text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "NUMBA_CACHE_DIR": str(cache), "FASTBP_VARIANTS": "network",
                              "NUMBA_NUM_THREADS": str(numba.get_num_threads())})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "loaded from cache, same weights" in out.stdout
