"""Training beside other Python threads (fastbp/kernels/threads.py, fastbp/kernels/compile.py, fastbp/training.py).

A parallel epoch must not wait for the GIL that a busy Python thread holds; two
threads fitting at once must get the results of a lone fit and leave the process's
BLAS thread count as they found it. The timing and concurrency checks run in child
processes (tests/programs/), with a timeout, so that a hang or a crash fails one test.
"""

import json
import os
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest
from conftest import PROGRAMS

from fastbp import kernels
from fastbp.kernels import driver, threads


def _run(program, *args, env=None, timeout=600):
    out = subprocess.run([sys.executable, PROGRAMS / program, *map(str, args)], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_parallel_epoch_is_not_slowed_by_a_busy_python_thread():
    """A functional check of the GIL defect (tens of times slower beside a spinning thread), not a benchmark.

    The bound is loose: on two cores the spinning thread takes a core from the epoch's two threads,
    and ``fit``'s own Python between compiled calls waits for the GIL too.
    """
    alone, busy = map(float, _run("busy_thread_epoch.py", 2).split())
    assert busy < 5 * alone, f"parallel epoch {busy:.3f} s beside a busy thread, {alone:.3f} s alone"


@pytest.mark.parametrize("layer", ["auto", "workqueue"])
def test_concurrent_parallel_fits_match_a_lone_fit_and_restore_blas_threads(layer):
    """Two threads fitting the same seeded model at once, five times: each result equals a lone fit's bit for bit.

    OpenBLAS's Haswell kernels round differently with one thread and with two, so a BLAS thread count
    changed by one fit during the other's epoch shows in the results (the AVX-512 kernels round alike).
    The workqueue layer aborts the process when two threads launch parallel regions at once.
    """
    env = {"OPENBLAS_CORETYPE": "Haswell"}
    if layer != "auto":
        env["NUMBA_THREADING_LAYER"] = layer
    report = json.loads(_run("concurrent_parallel_fits.py", 5, env=env))
    for run in report["runs"]:
        assert "errors" not in run, run
        assert run["equal"] == [True, True], f"max |theta - lone theta| = {run['max_diff']}"
    assert report["blas_after"] == report["blas_before"]


def test_blas_thread_count_is_restored_when_blocks_of_two_threads_overlap():
    """The first block in sets the count, the last one out restores it, whatever the order they leave in."""
    functions = threads._find_blas_thread_functions()
    if functions is None:
        pytest.skip("SciPy's OpenBLAS is not found here")
    setter, getter = functions
    before = getter()
    setter(2)
    try:
        first_in, second_in, first_may_leave = threading.Event(), threading.Event(), threading.Event()
        seen = {}

        def first():
            with threads.blas_threads(1):
                first_in.set()
                second_in.wait(10)
                seen["first"] = getter()
            first_may_leave.set()

        def second():
            first_in.wait(10)
            with threads.blas_threads(1):
                second_in.set()
                first_may_leave.wait(10)  # the first block leaves while this one is still inside
                seen["second"] = getter()

        workers = [threading.Thread(target=first), threading.Thread(target=second)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(20)
        assert seen == {"first": 1, "second": 1}
        assert getter() == 2
    finally:
        setter(before)


def test_compiled_drivers_release_the_gil_and_public_kernels_keep_it():
    """An epoch called from Python lets other threads run; a small kernel call does not pay to release the GIL."""
    for dispatcher in (driver.train_epoch, driver.train_epoch_parallel, driver.loss_and_grad, driver.predict_raw):
        assert dispatcher.targetoptions.get("nogil") is True
    for dispatcher in (kernels.dense_forward, kernels.backprop_delta_parallel, kernels.weight_gradient):
        assert not dispatcher.targetoptions.get("nogil")


def test_region_launcher_is_installed_for_fastbp_only():
    """fastbp's parfors get the launcher that never waits for the GIL; a user's own still compile as Numba's."""
    from numba.np.ufunc import parallel
    from numba.parfors import parfor_lowering

    assert getattr(parallel.build_gufunc_kernel, "_fastbp_wrapped", False)
    assert getattr(parfor_lowering.call_parallel_gufunc, "_fastbp_wrapped", False)
    assert threads.install_region_launcher() is True  # idempotent

    @numba.njit(parallel=True)
    def users_own(x):
        total = 0.0
        for i in numba.prange(x.shape[0]):
            total += x[i]
        return total

    assert users_own(np.arange(10000.0)) == np.arange(10000.0).sum()


def test_small_matrix_kernels_are_read_from_the_kernel_set_openblas_reports():
    """The answer follows the kernel set that threadpoolctl reads from the same OpenBLAS (an optional package)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    answer = threads.blas_has_small_matrix_kernels()  # loads SciPy's OpenBLAS, if it was not yet
    ours = [info for info in threadpoolctl.threadpool_info()
            if info.get("internal_api") == "openblas" and "scipy_openblas" in info.get("filepath", "")
            and "openblas64" not in os.path.basename(info["filepath"])]
    if not ours:
        pytest.skip("SciPy's OpenBLAS is not loaded under the expected name")
    expected = (ours[0].get("architecture") or "").lower() in ("skylakex", "cooperlake", "sapphirerapids")
    assert answer is expected
