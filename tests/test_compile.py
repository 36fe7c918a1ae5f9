"""Compilation (fastbp/kernels/compile.py): the one place kernel flags are set, the serial and parallel
twins, the on-disk cache and its fallbacks, and what importing fastbp compiles (nothing)."""

import os
import re
import subprocess
import sys

import numba
import pytest
from conftest import PACKAGE, PROGRAMS

from fastbp import _settings
from fastbp.kernels import compile as kernel_compile


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

    # the compiled pair behind the public (checked) kernels
    assert dense._dense_forward.py_func.__qualname__ != dense._dense_forward_parallel.py_func.__qualname__
    assert dense._dense_forward.targetoptions.get("parallel") in (False, None)
    assert dense._dense_forward_parallel.targetoptions["parallel"] is True


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
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, PROGRAMS / "train_without_writable_cache.py"], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]
