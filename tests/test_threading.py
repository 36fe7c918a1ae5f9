"""Threading (fastbp/kernels/threads.py): the threading layer fastbp picks for the parallel backend, and the
user's own choice of layer taking precedence over it.

Each check runs in a child process, with its environment set before numba is imported.
"""

import os
import subprocess
import sys

import pytest


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


def test_auto_backend_starts_the_threads_on_fastbps_layer():
    """Resolving ``backend="auto"`` reads Numba's thread count, which starts its threads: the layer is chosen first.

    Before, ``auto`` started them on Numba's default layer (OpenMP with its long spin) while
    ``numba.config.THREADING_LAYER`` said otherwise.
    """
    code = ("import numpy as np, numba, fastbp, fastbp.kernels.threads as t, os; "
            "m = fastbp.MLP([64, 100, 10], loss='softmax_cross_entropy'); "
            "h = m.fit(np.ones((400, 64)), np.zeros(400, dtype=int), epochs=1, batch_size=200); "
            "print(h['backend'], numba.threading_layer(), t.configure_threading(), os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_THREADING_LAYER", "FASTBP_THREADING_LAYER",
                                                            "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    *_, running, configured, spin = out.stdout.split()
    assert running == configured
    assert running == "tbb" or (running == "omp" and spin == "10000")


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
