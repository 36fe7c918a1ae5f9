"""``python -m fastbp warmup`` (fastbp/warmup.py): a cache it fills serves fresh processes, also after a copy."""

import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

from fastbp import __main__ as cli
from fastbp.warmup import warm_cache

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "fastbp"

FIT_AND_REPORT = """
import numpy as np, fastbp
from fastbp.kernels import driver
rng = np.random.default_rng(1)
X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
m = fastbp.MLP([5, 7, 3], activation="tanh", loss="softmax_cross_entropy", dtype=np.float64, seed=2)
m.fit(X, y, epochs=2, batch_size=8, optimizer=fastbp.SGD(lr=0.1, momentum=0.9), backend="cpu", l2=0.01,
      sample_weight=np.ones(64), validation_data=(X, y))
m.predict(X)
m.loss_and_grad(X, y)
stats = driver.train_epoch.stats
print(fastbp.__file__, sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def _copy_package(site):
    shutil.copytree(PACKAGE, site / "fastbp", ignore=shutil.ignore_patterns("__pycache__"),
                    copy_function=shutil.copy, dirs_exist_ok=True)  # shutil.copy: new modification times


def _python(site, cache, *args):
    env = dict(os.environ, PYTHONPATH=str(site), NUMBA_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, *args], cwd=site, env=env, capture_output=True, text=True, timeout=600)


def test_a_warmed_cache_serves_a_new_process_after_the_files_are_copied(tmp_path):
    site, cache = tmp_path / "site", tmp_path / "cache"
    _copy_package(site)
    warm = _python(site, cache, "-m", "fastbp", "warmup", "--dtypes", "float64", "--backends", "cpu")
    assert warm.returncode == 0, warm.stderr
    assert "[1/1] float64, backend 'cpu'" in warm.stdout and "1 configurations compiled" in warm.stdout
    time.sleep(1.1)  # the copy below gets later modification times than the cache entries
    _copy_package(site)
    run = _python(site, cache, "-c", FIT_AND_REPORT)
    assert run.returncode == 0, run.stderr
    path, hits, misses = run.stdout.split()
    assert pathlib.Path(path).is_relative_to(site)  # the copy ran, not the source tree
    assert (int(hits), int(misses)) == (1, 0)  # the epoch driver came from the cache, nothing was compiled


def test_warmup_refuses_unknown_names():
    with pytest.raises(ValueError, match="unknown dtype or backend 'float16', 'gpu'"):
        warm_cache(dtypes=["float16"], backends=["gpu"], log=lambda line: None)
    with pytest.raises(SystemExit, match="python -m fastbp warmup: unknown dtype or backend 'numpy'"):
        cli.main(["warmup", "--backends", "numpy"])
