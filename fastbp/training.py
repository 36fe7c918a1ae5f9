"""Backends: the one route from the model into compiled code.

A trainer is made once per ``fit`` call for a :class:`~fastbp.network.Network`;
it owns the workspaces, allocated once, and runs whole epochs
(``run_epoch(X, T, order, sw=None)``, with optional sample weights ``sw``; the
``l2`` weight penalty is fixed per trainer):

- ``"cpu"``: one compiled call per epoch (``kernels.driver.train_epoch``).
- ``"parallel"``: the same, each minibatch split across threads
  (``train_epoch_parallel``).
- ``"numpy"``: the plain-NumPy reference (``fastbp.reference``), minibatch by
  minibatch in Python. Slow, but independent of the kernels.
- ``"cuda"``: the device-resident loop of ``fastbp.kernels.cuda`` on a CUDA
  GPU. Its parameters live on the device during ``fit``; the host copy is
  refreshed by ``fetch()`` (a trainer with ``on_device = True`` has one).

:func:`loss_and_grad` and :func:`output_logits` are the compiled full-batch
gradient and forward pass.
"""

import numba
import numpy as np

from . import _settings, reference
from .kernels import cuda, driver
from .kernels.layout import N_STATS, S_CORRECT, S_DIVERGED, S_LOSS, S_SEEN, S_WEIGHT
from .kernels.threads import blas_threads, configure_threading

BACKENDS = ("auto", "numpy", "cpu", "parallel", "cuda")
_PREDICT_BLOCK = 1024  # rows per compiled forward call: bounds the workspace of a large predict


def choose_backend(backend, sizes, batch_size):
    """Resolve ``"auto"``: the parallel backend when a minibatch holds enough work for the threads.

    The work of a minibatch is about ``3 * batch_size * n_weights`` multiply-adds
    (forward, deltas, weight gradients). Below ``FASTBP_PARALLEL_MIN_WORK``
    (see ``fastbp._settings``) the cost of waking threads outweighs the gain.
    From ``FASTBP_CUDA_MIN_WORK`` on, a real CUDA GPU is used when one is
    present (the simulator never counts); below it, numba-cuda is not even
    imported. ``"cuda"`` asked for explicitly raises a clear error when no GPU
    can be used.
    """
    if backend == "cuda":
        cuda.require_device()
    if backend != "auto":
        return backend
    n_weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    work = 3 * batch_size * n_weights
    if work >= _settings.CUDA_MIN_WORK and cuda.real_device_available():
        return "cuda"
    if numba.get_num_threads() > 1 and work >= _settings.PARALLEL_MIN_WORK:
        return "parallel"
    return "cpu"


class CompiledTrainer:
    """Runs epochs with the compiled driver, serial or parallel."""

    def __init__(self, network, theta, optimizer, batch_size, parallel, l2=0.0):
        if parallel:
            configure_threading()
            chunks = numba.get_num_threads()
            self._run = driver.train_epoch_parallel
        else:
            chunks = 1
            self._run = driver.train_epoch
        rows = -(-batch_size // chunks)
        dtype = theta.dtype
        width = network.workspace_width(rows)
        self.network = network
        self.theta = theta
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.l2 = float(l2)
        self.layers = network.layer_table(rows)
        self.xbuf = np.zeros((chunks, rows * network.n_inputs), dtype=dtype)
        self.tbuf = np.zeros((chunks, rows * network.n_outputs), dtype=dtype)
        self.swbuf = np.zeros((chunks, rows), dtype=dtype)
        self.no_weights = np.zeros(0, dtype=dtype)
        self.zbuf = np.zeros((chunks, width), dtype=dtype)
        self.abuf = np.zeros((chunks, width), dtype=dtype)
        self.dbuf = np.zeros((chunks, width), dtype=dtype)
        self.gbuf = np.zeros((chunks, theta.shape[0]), dtype=dtype)
        self.chunk_out = np.zeros((chunks, 2))
        self.stats = np.zeros(N_STATS)
        self.hyper = optimizer.hyperparameters()

    def run_epoch(self, X, T, order, sw=None):
        """One epoch over ``X[order]``; returns ``(mean_loss, correct_fraction, diverged)``.

        ``sw`` are optional sample weights (model dtype, shape ``(n,)``); the
        loss is then their weighted mean. The accuracy is never weighted.
        """
        opt = self.optimizer
        sw = self.no_weights if sw is None else sw
        with blas_threads(1):  # one BLAS thread per fastbp thread: no oversubscription
            self._run(X, T, sw, order, self.batch_size, self.theta, self.layers, self.network.loss_code, self.l2,
                      self.xbuf, self.tbuf, self.swbuf, self.zbuf, self.abuf, self.dbuf, self.gbuf, self.chunk_out,
                      opt.code, self.hyper, opt.m, opt.v, opt.step, self.stats)
        return epoch_figures(self.stats, self.network)


def epoch_figures(stats, network):
    """``(mean_loss, correct_fraction, diverged)`` from an epoch's ``stats`` (``fastbp.kernels.layout.S_*``)."""
    seen = stats[S_SEEN]
    weight = stats[S_WEIGHT]
    norm = network.row_divisor
    mean = stats[S_LOSS] / (weight * norm) if weight else float("nan")
    acc = stats[S_CORRECT] / (seen * norm) if seen else float("nan")
    return mean, acc, bool(stats[S_DIVERGED])


class CudaTrainer:
    """Runs epochs on a CUDA GPU (``fastbp.kernels.cuda.DeviceEpochs``).

    Data, parameters, gradient and optimizer state are copied to the device
    once; each epoch brings back only its statistics. :meth:`fetch` copies the
    parameters and optimizer state back into the host arrays.
    """

    on_device = True

    def __init__(self, network, theta, optimizer, batch_size, l2=0.0):
        self.network = network
        self.device = cuda.DeviceEpochs(network.layer_table(batch_size), network.loss_code, theta, optimizer.m,
                                        optimizer.v, optimizer.step, optimizer.code, optimizer.hyperparameters(),
                                        batch_size, l2)

    def run_epoch(self, X, T, order, sw=None):
        """One epoch over ``X[order]``; returns ``(mean_loss, correct_fraction, diverged)``.

        After a divergence the device state is back where the epoch began.
        """
        return epoch_figures(self.device.run_epoch(X, T, order, sw), self.network)

    def fetch(self):
        """Copy the device parameters and optimizer state into the host ``theta`` and optimizer arrays."""
        self.device.fetch()


class NumpyTrainer:
    """Runs epochs with the plain-NumPy reference, one minibatch per Python iteration."""

    def __init__(self, network, theta, optimizer, batch_size, l2=0.0):
        self.network = network
        self.l2 = float(l2)
        self.theta = theta
        self.optimizer = optimizer
        self.batch_size = batch_size

    def run_epoch(self, X, T, order, sw=None):
        """One epoch over ``X[order]``; returns ``(mean_loss, correct_fraction, diverged)``."""
        opt = self.optimizer
        net = self.network
        Ws, bs = net.unflatten(self.theta)
        mWs, mbs = net.unflatten(opt.m)
        vWs, vbs = net.unflatten(opt.v)
        state = {"step": int(opt.step[0]), "m": mWs + mbs, "v": vWs + vbs}
        norm = net.row_divisor
        total, correct, seen, weight = 0.0, 0.0, 0, 0.0
        for start in range(0, X.shape[0], self.batch_size):
            idx = order[start:start + self.batch_size]
            Xb, Tb = X[idx], T[idx]
            swb = None if sw is None else sw[idx]
            _, wsum = reference.sample_weights(len(idx), swb)
            if wsum == 0:  # a minibatch of zero weights: no step
                seen += len(idx)
                continue
            Zs, As = reference.forward(Xb, Ws, bs, net.activations)
            loss = reference.loss_value(net.loss, Zs[-1], Tb, swb) + reference.l2_penalty(Ws, self.l2, wsum)
            if not np.isfinite(loss):
                break
            gWs, gbs = reference.backward(Xb, Tb, Ws, Zs, As, net.activations, net.loss, swb, self.l2)
            correct += correct_count(net.loss, Zs[-1], Tb)
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


def make_trainer(backend, network, theta, optimizer, batch_size, l2=0.0):
    """The trainer for a resolved backend name (``"numpy"``, ``"cpu"``, ``"parallel"`` or ``"cuda"``).

    ``theta`` is the flat parameter vector the trainer updates in place;
    ``l2`` is the penalty on the weights (see ``fastbp.kernels.driver``).
    """
    if backend == "numpy":
        return NumpyTrainer(network, theta, optimizer, batch_size, l2)
    if backend == "cuda":
        return CudaTrainer(network, theta, optimizer, batch_size, l2)
    return CompiledTrainer(network, theta, optimizer, batch_size, parallel=backend == "parallel", l2=l2)


def loss_and_grad(network, theta, X, T, sw, l2):
    """Mean loss over all of ``X, T`` as one minibatch, and its gradient as a flat vector.

    Parameters
    ----------
    network : Network
    theta : ndarray, shape (n_params,)
    X, T : ndarray
        Checked data (:meth:`Network.check_data`).
    sw : ndarray, shape (n,), or None
        Sample weights.
    l2 : float
        Weight penalty.

    Returns
    -------
    loss : float
    grad : ndarray, shape (n_params,)
    """
    rows = X.shape[0]
    width = network.workspace_width(rows)
    bufs = [np.empty(width, dtype=network.dtype) for _ in range(3)]
    grad = np.empty_like(theta)
    sw = np.zeros(0, dtype=network.dtype) if sw is None else sw
    loss, _ = driver.loss_and_grad(X, T, sw, theta, network.layer_table(rows), network.loss_code, l2, *bufs, grad)
    return float(loss), grad


def output_logits(network, theta, X):
    """The output layer's pre-activations of checked inputs ``X``, shape ``(n, n_outputs)``."""
    block = min(_PREDICT_BLOCK, X.shape[0])
    width = network.workspace_width(block)
    zbuf, abuf = np.empty(width, dtype=network.dtype), np.empty(width, dtype=network.dtype)
    out = np.empty((X.shape[0], network.n_outputs), dtype=network.dtype)
    driver.predict_raw(X, theta, network.layer_table(block), block, zbuf, abuf, out)
    return out
