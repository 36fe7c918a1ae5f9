"""The three kernels, serial and parallel, over batch x width x dtype."""

import numpy as np

BATCHES = [1, 32, 256, 4096]
WIDTHS = [2, 32, 256, 1024]
DTYPES = ["float32", "float64"]
VARIANTS = ["serial", "parallel"]


def _skip_if_too_big(batch, width):
    # A sensible grid, not all pairs: the largest products would take seconds per call.
    if batch * width * width > 2 ** 28:
        raise NotImplementedError("outside the benchmark grid")


class _Kernel:
    params = [BATCHES, WIDTHS, DTYPES, VARIANTS]
    param_names = ["batch", "width", "dtype", "variant"]

    def setup(self, batch, width, dtype, variant):
        _skip_if_too_big(batch, width)
        from fastbp import kernels

        suffix = "_parallel" if variant == "parallel" else ""
        if variant == "parallel":
            kernels.configure_threading()  # as the model does before its first parallel call
        self.kernel = getattr(kernels, self.name + suffix)
        rng = np.random.default_rng(0)
        dt = np.dtype(dtype)
        self.X = rng.standard_normal((batch, width)).astype(dt)
        self.W = rng.standard_normal((width, width)).astype(dt)
        self.b = rng.standard_normal(width).astype(dt)
        # Z and A are inputs of backprop_delta and weight_gradient: uninitialised memory there held denormals now
        # and then, which made those kernels 10x slower in some runs and not in others.
        self.Z = rng.standard_normal((batch, width)).astype(dt)
        self.A = np.maximum(self.Z, 0)
        self.D = np.empty((batch, width), dt)
        self.gW = np.empty((width, width), dt)
        self.gb = np.empty(width, dt)
        self.act = kernels.RELU
        self.call()  # compile (or load from the cache) outside the timing

    def time_kernel(self, batch, width, dtype, variant):
        self.call()


class DenseForward(_Kernel):
    name = "dense_forward"

    def call(self):
        self.kernel(self.X, self.W, self.b, self.act, self.Z, self.A)


class BackpropDelta(_Kernel):
    name = "backprop_delta"

    def call(self):
        self.kernel(self.X, self.W, self.Z, self.A, self.act, self.D)


class WeightGradient(_Kernel):
    name = "weight_gradient"

    def call(self):
        self.kernel(self.X, self.Z, self.gW, self.gb)
