"""The CUDA backend (fastbp/kernels/cuda/), tested without a GPU.

The kernel and training checks live in ``tests/cuda_checks.py`` and run here
in subprocesses, because the environment they need must be set before numba
is imported, while the rest of the suite runs real CPU kernels in this
process:

- on Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) with tiles of 4x4
  threads and 1-D blocks of 8, so that tiny inputs span several blocks: every
  kernel against ``fastbp.reference``, and ``fit(backend="cuda")`` against
  ``backend="cpu"``;
- compiled to PTX for a real GPU with ``numba.cuda.compile_ptx`` (float32 and
  float64), which rejects code the simulator would run.

The tests here check what needs no numba-cuda at all: the lazy import, the
error without a GPU, and ``backend="auto"`` staying on the CPU.
"""

import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import PROGRAMS, ROOT

from fastbp import training

HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
needs_numba_cuda = pytest.mark.skipif(not HAS_NUMBA_CUDA,
                                      reason="numba-cuda is not installed (pip install fastbp[cuda])")


def _run(code_or_args, env_extra=None, timeout=600):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_ENABLE_CUDASIM", "FASTBP_CUDA_"))}
    env.update(env_extra or {})
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _pytest_checks(env_extra, *selection):
    proc = _run(["-m", "pytest", "tests/cuda_checks.py", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                 *selection], env_extra)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return summary


@needs_numba_cuda
def test_kernels_and_fit_under_the_simulator():
    summary = _pytest_checks({"NUMBA_ENABLE_CUDASIM": "1", "FASTBP_CUDA_TILE": "4", "FASTBP_CUDA_THREADS": "8"},
                             "-k", "not ptx and not gpu_")
    assert " passed" in summary and "skipped" not in summary and "deselected" in summary


@needs_numba_cuda
def test_kernels_compile_to_ptx_for_a_real_gpu():
    summary = _pytest_checks({}, "-k", "ptx", "-rs")
    if "2 passed" not in summary:
        pytest.skip(f"PTX compilation unavailable here: {summary}")


def test_import_loads_no_cuda():
    proc = _run("import sys, fastbp, fastbp.kernels, fastbp.kernels.cuda as c\n"
                "c.simulator_enabled()\n"
                "print(sorted(m for m in sys.modules if m.startswith(('numba.cuda', 'numba_cuda'))))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_backend_cuda_without_gpu_is_a_clear_error():
    proc = _run([str(PROGRAMS / "cuda_without_gpu.py")])
    if "a CUDA GPU is present" in proc.stderr:
        pytest.skip("a CUDA GPU is present")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip()
    assert out.startswith("CudaUnavailableError: backend='cuda' cannot run:"), out
    assert "pip install fastbp[cuda]" in out and "Traceback" not in out and "\n" not in out


def test_backend_cuda_without_numba_cuda_says_how_to_install():
    code = ("import sys; sys.modules['numba_cuda'] = None\n"  # as if numba-cuda were not installed
            "import numpy as np, fastbp\n"
            "try:\n"
            "    fastbp.MLP([2, 3, 1]).fit(np.zeros((4, 2)), np.zeros(4), backend='cuda')\n"
            "except RuntimeError as exc:\n"
            "    print(exc)\n")
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert "needs the numba-cuda package, which is not installed" in proc.stdout
    assert "pip install fastbp[cuda]" in proc.stdout


def test_auto_stays_on_the_cpu_without_a_real_gpu(monkeypatch):
    from fastbp.kernels import cuda

    sizes = [4096, 4096, 10]  # far above FASTBP_CUDA_MIN_WORK at batch 256
    monkeypatch.setattr(cuda, "real_device_available", lambda: False)
    assert training.choose_backend("auto", sizes, 256) in ("cpu", "parallel")
    monkeypatch.setattr(cuda, "real_device_available", lambda: True)
    assert training.choose_backend("auto", sizes, 256) == "cuda"
    assert training.choose_backend("auto", [4, 8, 2], 32) in ("cpu", "parallel")  # too small to gain


def test_auto_without_numba_cuda_stays_on_the_cpu():
    code = ("import sys; sys.modules['numba_cuda'] = None\n"
            "from fastbp import training\n"
            "print(training.choose_backend('auto', [4096, 4096, 10], 256))")
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("cpu", "parallel")


def test_block_sizes_are_read_from_the_environment():
    proc = _run("from fastbp import _settings; print(_settings.CUDA_TILE, _settings.CUDA_THREADS)",
                {"FASTBP_CUDA_TILE": "4", "FASTBP_CUDA_THREADS": "8"})
    assert proc.stdout.split() == ["4", "8"], proc.stderr
    proc = _run("import fastbp", {"FASTBP_CUDA_THREADS": "6"})
    assert proc.returncode != 0 and "FASTBP_CUDA_THREADS must be a power of two" in proc.stderr

