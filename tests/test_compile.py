"""Settings, compilation and threading choices (fastbp/_settings.py, fastbp/kernels/compile.py,
fastbp/kernels/threads.py) and import-time behaviour."""

import os
import pathlib
import re
import subprocess
import sys

import numba
import pytest

from fastbp import _settings
from fastbp.kernels import compile as kernel_compile

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "fastbp"


def test_no_decorator_hard_codes_flags():
    """Kernel flags come from kernels/compile.py: no decorator elsewhere sets fastmath/cache/parallel itself."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).as_posix() == "kernels/compile.py":
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(njit|jit)\(.*(fastmath|cache)\s*=", line) or "numba.njit" in line:
                offenders.append(f"{path.name}:{lineno}: {line.strip()}")
    assert offenders == []


def test_import_compiles_nothing():
    code = ("import fastbp, fastbp.kernels as k, fastbp.kernels.driver as e; "
            "print(sum(len(f.overloads) for f in (k.dense_forward, k.backprop_delta, k.weight_gradient, "
            "e.train_epoch, e.train_epoch_parallel)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_twins_are_distinct_cache_entries():
    from fastbp.kernels import dense

    assert dense.dense_forward.py_func.__qualname__ != dense.dense_forward_parallel.py_func.__qualname__
    assert dense.dense_forward.targetoptions.get("parallel") in (False, None)
    assert dense.dense_forward_parallel.targetoptions["parallel"] is True


def test_jit_falls_back_when_cache_unavailable(monkeypatch):
    real_njit = numba.njit

    def njit_without_cache(*args, cache=False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function: no locator available")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit_without_cache)
    monkeypatch.setattr(_settings, "CACHE", True)
    monkeypatch.setattr(kernel_compile, "_cache_warned", False)

    def add_one(x):
        return x + 1

    with pytest.warns(RuntimeWarning, match="cannot cache"):
        compiled = kernel_compile.jit(add_one)
    assert compiled(1) == 2


def test_package_stamp_covers_kernel_sources(tmp_path, monkeypatch):
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    (kernels / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(kernel_compile, "_PACKAGE_DIR", str(tmp_path))
    monkeypatch.setattr(kernel_compile, "_package_stamp", None)
    first = kernel_compile.package_stamp()
    (kernels / "a.py").write_text("x = 2\n")
    monkeypatch.setattr(kernel_compile, "_package_stamp", None)
    assert kernel_compile.package_stamp() != first


def test_install_without_writable_cache_still_imports_and_trains():
    """No writable cache location (as in a read-only install): fastbp warns, compiles in memory, trains."""
    code = (
        "import numba.core.caching as caching\n"
        "def deny(self):\n"
        "    raise OSError('read-only file system')\n"
        "caching._CacheLocator.ensure_cache_path = deny\n"
        "import warnings, numpy as np\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import fastbp\n"
        "    m = fastbp.MLP([2, 1], seed=0)\n"
        "    h = m.fit(np.ones((4, 2)), np.ones(4), epochs=1, backend='cpu')\n"
        "print(np.isfinite(h['loss'][0]), any('cannot cache' in str(w.message) for w in caught))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]


def test_configure_threading_respects_user_choice():
    code = ("import fastbp.kernels.threads as c, numba; print(c.configure_threading())")
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "workqueue"


def test_parallel_backend_uses_a_non_spinning_layer():
    """The parallel backend runs on TBB where the wheel is installed, else OpenMP with a short spin."""
    code = ("import numpy as np, numba, fastbp, os; m = fastbp.MLP([3, 4, 2], seed=0); "
            "m.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=1, backend='parallel'); "
            "print(numba.threading_layer(), os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_THREADING_LAYER", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    layer, spin = out.stdout.split()
    assert layer == "tbb" or (layer == "omp" and spin == "10000")


@pytest.mark.parametrize("variable", ["FASTBP_THREADING_LAYER", "NUMBA_THREADING_LAYER"])
def test_asking_for_tbb_by_name_finds_the_wheel_library(variable):
    """Naming ``tbb`` (fastbp's setting or Numba's) works where ``auto`` would have picked it."""
    code = ("import numpy as np, numba, fastbp; m = fastbp.MLP([3, 4, 2], seed=0); "
            "m.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=1, backend='parallel'); print(numba.threading_layer())")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_THREADING_LAYER", "FASTBP_THREADING_LAYER")}
    auto = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    if auto.stdout.strip() != "tbb":
        pytest.skip("TBB is not installed here")
    env[variable] = "tbb"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "tbb"
