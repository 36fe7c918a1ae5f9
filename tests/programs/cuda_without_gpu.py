"""``fit(backend="cuda")`` on a machine without a CUDA GPU: one clear error, the weights untouched.

Run by tests/test_cuda.py. Exits with "a CUDA GPU is present" where one is; otherwise prints the
error as ``TypeName: message`` on one line, after checking that it chains no other exception and
that the model kept its weights.
"""

import numpy as np

import fastbp
from fastbp.kernels import cuda


def main():
    if cuda.real_device_available():
        raise SystemExit("a CUDA GPU is present")
    m = fastbp.MLP([2, 3, 1], seed=0)
    before = m.theta.copy()
    try:
        m.fit(np.zeros((4, 2)), np.zeros(4), backend="cuda")
    except RuntimeError as exc:
        assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__), "chained"
        assert np.array_equal(m.theta, before)
        print(type(exc).__name__ + ": " + str(exc))


if __name__ == "__main__":
    main()
