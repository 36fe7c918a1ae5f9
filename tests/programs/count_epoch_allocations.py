"""Count the NRT allocations of one compiled training epoch, for 10 minibatches and for 1,000.

Run by tests/test_memory.py with ``NUMBA_NRT_STATS=1`` (Numba counts allocations only when that is
set before it is imported). Prints one line per backend and optimizer: the backend, then the
allocations of an epoch of 160 samples and of one of 16,000 (minibatches of 16).
"""

import numpy as np
from numba.core.runtime import rtsys

import fastbp
from fastbp import training


def allocations(n, backend, optimizer):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 5)).astype(np.float32)
    y = rng.integers(0, 3, n)
    model = fastbp.MLP([5, 8, 6, 3], activation="tanh", loss="softmax_cross_entropy", seed=0)
    optimizer.bind(model.n_params, model.dtype)
    X, T = model.network.check_data(X, y)
    trainer = training.make_trainer(backend, model.network, model.theta, optimizer, 16)
    order = np.arange(n)
    trainer.run_epoch(X, T, order)  # compile
    before = rtsys.get_allocation_stats()
    trainer.run_epoch(X, T, order)
    after = rtsys.get_allocation_stats()
    return after.alloc - before.alloc


def main():
    for backend in ("cpu", "parallel"):
        for make in (lambda: fastbp.SGD(lr=0.1, momentum=0.9), fastbp.Adam):
            few, many = allocations(160, backend, make()), allocations(16000, backend, make())
            print(backend, few, many)


if __name__ == "__main__":
    main()
