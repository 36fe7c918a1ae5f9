"""Backends: run epochs of minibatch training on a flat parameter vector.

A trainer is made once per ``fit`` call; it owns the workspaces, allocated
once, and runs whole epochs (``run_epoch(X, T, order, sw=None)``, with
optional sample weights ``sw``; the ``l2`` weight penalty is fixed per trainer):

- ``"cpu"``: one compiled call per epoch (``kernels.epoch.train_epoch``).
- ``"parallel"``: the same, each minibatch split across threads
  (``train_epoch_parallel``).
- ``"numpy"``: the plain-NumPy reference (``fastbp.reference``), minibatch by
  minibatch in Python. Slow, but independent of the kernels.
- ``"cuda"``: the device-resident loop of ``fastbp.kernels.cuda`` on a CUDA
  GPU. Its parameters live on the device during ``fit``; the host copy is
  refreshed by ``fetch()`` (a trainer with ``on_device = True`` has one).
"""

import numba
import numpy as np

from . import _config, reference
from .kernels import epoch
from .kernels.activations import ACTIVATION_NAMES
from .kernels.losses import LOSSES, row_divisor
from .params import layer_table, unflatten, workspace_width

BACKENDS = ("auto", "numpy", "cpu", "parallel", "cuda")


def choose_backend(backend, sizes, batch_size):
    """Resolve ``"auto"``: the parallel backend when a minibatch holds enough work for the threads.

    The work of a minibatch is about ``3 * batch_size * n_weights`` multiply-adds
    (forward, deltas, weight gradients). Below ``FASTBP_PARALLEL_MIN_WORK``
    (see ``fastbp._config``) the cost of waking threads outweighs the gain.
    From ``FASTBP_CUDA_MIN_WORK`` on, a real CUDA GPU is used when one is
    present (the simulator never counts); below it, numba-cuda is not even
    imported. ``"cuda"`` asked for explicitly raises a clear error when no GPU
    can be used.
    """
    if backend == "cuda":
        from .kernels import cuda

        cuda.require_device()
    if backend != "auto":
        return backend
    n_weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    work = 3 * batch_size * n_weights
    if work >= _config.CUDA_MIN_WORK:
        from .kernels import cuda

        if cuda.real_device_available():
            return "cuda"
    if numba.get_num_threads() > 1 and work >= _config.PARALLEL_MIN_WORK:
        return "parallel"
    return "cpu"


class CompiledTrainer:
    """Runs epochs with the compiled driver, serial or parallel."""

    def __init__(self, sizes, act_codes, loss_code, theta, optimizer, batch_size, parallel, l2=0.0):
        if parallel:
            _config.configure_threading()
            chunks = numba.get_num_threads()
            self._run = epoch.train_epoch_parallel
        else:
            chunks = 1
            self._run = epoch.train_epoch
        rows = -(-batch_size // chunks)
        dtype = theta.dtype
        width = workspace_width(sizes, rows)
        self.theta = theta
        self.loss_code = loss_code
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.l2 = float(l2)
        self.k = sizes[-1]
        self.layers = layer_table(sizes, act_codes, rows)
        self.xbuf = np.zeros((chunks, rows * sizes[0]), dtype=dtype)
        self.tbuf = np.zeros((chunks, rows * sizes[-1]), dtype=dtype)
        self.swbuf = np.zeros((chunks, rows), dtype=dtype)
        self.no_weights = np.zeros(0, dtype=dtype)
        self.zbuf = np.zeros((chunks, width), dtype=dtype)
        self.abuf = np.zeros((chunks, width), dtype=dtype)
        self.dbuf = np.zeros((chunks, width), dtype=dtype)
        self.gbuf = np.zeros((chunks, theta.shape[0]), dtype=dtype)
        self.chunk_out = np.zeros((chunks, 2))
        self.stats = np.zeros(epoch.N_STATS)
        self.hyper = optimizer.hyperparameters()

    def run_epoch(self, X, T, order, sw=None):
        """One epoch over ``X[order]``; returns ``(mean_loss, correct_fraction, diverged)``.

        ``sw`` are optional sample weights (model dtype, shape ``(n,)``); the
        loss is then their weighted mean. The accuracy is never weighted.
        """
        opt = self.optimizer
        sw = self.no_weights if sw is None else sw
        with _config.blas_threads(1):  # one BLAS thread per fastbp thread: no oversubscription
            self._run(X, T, sw, order, self.batch_size, self.theta, self.layers, self.loss_code, self.l2, self.xbuf,
                      self.tbuf, self.swbuf, self.zbuf, self.abuf, self.dbuf, self.gbuf, self.chunk_out, opt.code,
                      self.hyper, opt.m, opt.v, opt.step, self.stats)
        return epoch_figures(self.stats, self.loss_code, self.k)


def epoch_figures(stats, loss_code, k):
    """``(mean_loss, correct_fraction, diverged)`` from an epoch's ``stats`` (``fastbp.kernels.epoch.S_*``)."""
    seen = stats[epoch.S_SEEN]
    weight = stats[epoch.S_WEIGHT]
    norm = row_divisor(loss_code, k)
    mean = stats[epoch.S_LOSS] / (weight * norm) if weight else float("nan")
    acc = stats[epoch.S_CORRECT] / (seen * norm) if seen else float("nan")
    return mean, acc, bool(stats[epoch.S_DIVERGED])


class CudaTrainer:
    """Runs epochs on a CUDA GPU (``fastbp.kernels.cuda.DeviceEpochs``).

    Data, parameters, gradient and optimizer state are copied to the device
    once; each epoch brings back only its statistics. :meth:`fetch` copies the
    parameters and optimizer state back into the host arrays.
    """

    on_device = True

    def __init__(self, sizes, act_codes, loss_code, theta, optimizer, batch_size, l2=0.0):
        from .kernels import cuda

        self.loss_code = loss_code
        self.k = sizes[-1]
        self.device = cuda.DeviceEpochs(layer_table(sizes, act_codes, batch_size), loss_code, theta, optimizer.m,
                                        optimizer.v, optimizer.step, optimizer.code, optimizer.hyperparameters(),
                                        batch_size, l2)

    def run_epoch(self, X, T, order, sw=None):
        """One epoch over ``X[order]``; returns ``(mean_loss, correct_fraction, diverged)``.

        After a divergence the device state is back where the epoch began.
        """
        return epoch_figures(self.device.run_epoch(X, T, order, sw), self.loss_code, self.k)

    def fetch(self):
        """Copy the device parameters and optimizer state into the host ``theta`` and optimizer arrays."""
        self.device.fetch()


class NumpyTrainer:
    """Runs epochs with the plain-NumPy reference, one minibatch per Python iteration."""

    def __init__(self, sizes, act_codes, loss_code, theta, optimizer, batch_size, l2=0.0):
        self.sizes = sizes
        self.l2 = float(l2)
        self.activations = [ACTIVATION_NAMES[c] for c in act_codes[:-1]]
        self.loss = {code: name for name, code in LOSSES.items()}[loss_code]
        self.loss_code = loss_code
        self.theta = theta
        self.optimizer = optimizer
        self.batch_size = batch_size

    def run_epoch(self, X, T, order, sw=None):
        """One epoch over ``X[order]``; returns ``(mean_loss, correct_fraction, diverged)``."""
        opt = self.optimizer
        Ws, bs = unflatten(self.theta, self.sizes)
        mWs, mbs = unflatten(opt.m, self.sizes)
        vWs, vbs = unflatten(opt.v, self.sizes)
        state = {"step": int(opt.step[0]), "m": mWs + mbs, "v": vWs + vbs}
        k = self.sizes[-1]
        norm = row_divisor(self.loss_code, k)
        total, correct, seen, weight = 0.0, 0.0, 0, 0.0
        for start in range(0, X.shape[0], self.batch_size):
            idx = order[start:start + self.batch_size]
            Xb, Tb = X[idx], T[idx]
            swb = None if sw is None else sw[idx]
            _, wsum = reference.sample_weights(len(idx), swb)
            if wsum == 0:  # a minibatch of zero weights: no step
                seen += len(idx)
                continue
            Zs, As = reference.forward(Xb, Ws, bs, self.activations)
            loss = reference.loss_value(self.loss, Zs[-1], Tb, swb) + reference.l2_penalty(Ws, self.l2, wsum)
            if not np.isfinite(loss):
                break
            gWs, gbs = reference.backward(Xb, Tb, Ws, Zs, As, self.activations, self.loss, swb, self.l2)
            correct += correct_count(self.loss, Zs[-1], Tb)
            total += loss * wsum * norm
            seen += len(idx)
            weight += wsum
            reference.optimizer_step(opt.name, Ws + bs, gWs + gbs, state, **opt.settings())
        opt.step[0] = state["step"]
        diverged = seen < X.shape[0]
        if not weight:
            return float("nan"), float("nan"), diverged
        return total / (weight * norm), correct / (seen * norm), diverged


def correct_count(loss, Z, T):
    """Correct predictions of output pre-activations ``Z`` against target rows ``T`` (NumPy).

    Softmax cross-entropy counts rows whose argmax matches; binary
    cross-entropy counts elements where ``(Z > 0) == (T > 0.5)``; mse counts 0.
    """
    if loss == "softmax_cross_entropy":
        return float(np.sum(Z.argmax(axis=1) == T.argmax(axis=1)))
    if loss == "binary_cross_entropy":
        return float(np.sum((Z > 0) == (T > 0.5)))
    return 0.0


def make_trainer(backend, sizes, act_codes, loss_code, theta, optimizer, batch_size, l2=0.0):
    """The trainer for a resolved backend name (``"numpy"``, ``"cpu"``, ``"parallel"`` or ``"cuda"``).

    ``l2`` is the penalty on the weights (see ``fastbp.kernels.epoch``).
    """
    if backend == "numpy":
        return NumpyTrainer(sizes, act_codes, loss_code, theta, optimizer, batch_size, l2)
    if backend == "cuda":
        return CudaTrainer(sizes, act_codes, loss_code, theta, optimizer, batch_size, l2)
    return CompiledTrainer(sizes, act_codes, loss_code, theta, optimizer, batch_size, parallel=backend == "parallel",
                           l2=l2)
