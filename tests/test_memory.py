"""A training epoch allocates nothing per minibatch, and fit's peak memory stays near its working set."""

import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from conftest import PROGRAMS

import fastbp
from fastbp import training


def test_epoch_allocation_count_does_not_grow_with_minibatches():
    """NRT allocations of one compiled epoch: the same for 10 minibatches as for 1,000."""
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    out = subprocess.run([sys.executable, PROGRAMS / "count_epoch_allocations.py"], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    rows = [line.split() for line in lines if line.strip()]
    assert len(rows) == 4
    for backend, few, many in rows:
        assert int(few) == int(many), f"{backend}: {few} allocations for 10 minibatches, {many} for 1,000"


@pytest.mark.parametrize("backend", ["cpu", "parallel"])
def test_workspaces_are_allocated_once_per_fit(backend):
    """The trainer's buffers are the same objects, unchanged in size, after several epochs."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 5)).astype(np.float32)
    y = rng.integers(0, 3, 100)
    model = fastbp.MLP([5, 8, 3], activation="relu", loss="softmax_cross_entropy", seed=0)
    opt = fastbp.SGD(lr=0.1)
    opt.bind(model.n_params, model.dtype)
    Xc, T = model.network.check_data(X, y)
    trainer = training.make_trainer(backend, model.network, model.theta, opt, 16)
    names = ("xbuf", "tbuf", "zbuf", "abuf", "dbuf", "wtbuf", "gbuf", "chunk_out", "stats")
    before = {name: (id(getattr(trainer, name)), getattr(trainer, name).ctypes.data) for name in names}
    for _ in range(3):
        trainer.run_epoch(Xc, T, np.arange(100))
    after = {name: (id(getattr(trainer, name)), getattr(trainer, name).ctypes.data) for name in names}
    assert before == after
    assert trainer.theta is model.theta


def test_fit_peak_memory_within_one_and_a_half_of_working_set():
    """Traced peak, data included, <= 1.5 x (data + parameters and state + workspaces).

    A copy of ``X`` inside ``fit`` would alone take the ratio to about 2.
    """
    n, layers, batch = 20000, [100, 64, 32, 10], 64
    model = fastbp.MLP(layers, activation="relu", loss="softmax_cross_entropy", seed=0)
    opt = fastbp.Adam()
    warm = np.zeros((256, layers[0]), dtype=np.float32)
    model.fit(warm, np.zeros(256, dtype=np.int64), epochs=1, batch_size=batch, optimizer=opt, backend="cpu")
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n, layers[0]), dtype=np.float32)
        y = rng.integers(0, layers[-1], n)
        model.fit(X, y, epochs=2, batch_size=batch, optimizer=opt, backend="cpu", shuffle=True)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    itemsize = np.dtype(np.float32).itemsize
    data = X.nbytes + y.nbytes + n * layers[-1] * itemsize   # inputs, labels, one-hot rows
    state = 3 * model.n_params * itemsize                    # parameters, Adam's two moments
    width = sum(layers[1:]) * batch
    workspaces = (3 * width + batch * (layers[0] + layers[-1]) + model.n_params) * itemsize
    budget = data + state + workspaces
    assert peak <= 1.5 * budget, f"peak {peak:,} bytes against a working set of {budget:,}"
