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

Fits may run in several Python threads at once. A compiled epoch releases the
GIL while it runs; the BLAS thread count is limited for as long as any epoch
runs (:func:`fastbp.kernels.threads.blas_threads`); parallel epochs take turns
(:data:`fastbp.kernels.threads.parallel_epochs`).
"""

import contextlib
import inspect
import time

import numba
import numpy as np

from . import _settings, reference
from .kernels import cuda, driver
from .kernels.layout import H_LR, N_STATS, S_CORRECT, S_DIVERGED, S_LOSS, S_SEEN, S_WEIGHT
from .kernels.threads import blas_threads, configure_threading, parallel_epochs
from .kernels.variants import GENERAL
from .sparse_input import CSRInput
from .variant_choice import call_driver, network_variant

BACKENDS = ("auto", "numpy", "cpu", "parallel", "cuda")
_PREDICT_BLOCK = 1024  # rows per compiled forward call: bounds the workspace of a large predict
_NO_ROWS = np.zeros(0, dtype=np.int64)  # dense input: the drivers take its rows in order
# Where the per-step learning rates stand among the epoch driver's arguments (an array, or None).
_RATES_ARG = list(inspect.signature(driver._train_epoch).parameters).index("lrs")
_VARIANT_ARG = list(inspect.signature(driver._train_epoch).parameters).index("variant")


def choose_backend(backend, sizes, batch_size, allow_cuda=True):
    """Resolve ``"auto"``: the parallel backend when a minibatch holds enough work for the threads.

    The work of a minibatch is about ``3 * batch_size * n_weights`` multiply-adds
    (forward, deltas, weight gradients). Below ``FASTBP_PARALLEL_MIN_WORK``
    (see ``fastbp._settings``) the cost of waking threads outweighs the gain.
    From ``FASTBP_CUDA_MIN_WORK`` on, a real CUDA GPU is used when one is
    present (the simulator never counts); below it, numba-cuda is not even
    imported. ``"cuda"`` asked for explicitly raises a clear error when no GPU
    can be used. ``allow_cuda=False`` keeps ``"auto"`` on the CPU backends
    (for what the CUDA backend does not do).
    """
    if backend == "cuda":
        cuda.require_device()
    if backend != "auto":
        return backend
    n_weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    work = 3 * batch_size * n_weights
    if allow_cuda and work >= _settings.CUDA_MIN_WORK and cuda.real_device_available():
        return "cuda"
    # Reading the thread count starts Numba's threads, and with them its threading layer: fastbp's choice
    # of layer must come first, or Numba's default (OpenMP, spinning) is the one that runs.
    configure_threading()
    if numba.get_num_threads() > 1 and work >= _settings.PARALLEL_MIN_WORK:
        return "parallel"
    return "cpu"


#: Seconds one call of a trainer should take at most, about: an epoch runs as calls of as many minibatches as
#: fit in that time, so that progress can be shown and Ctrl-C answered between them.
CALL_SECONDS = 0.1


class EpochRunner:
    """What the host trainers share: an epoch as a few calls of many minibatches each.

    A subclass provides ``run_batches(X, T, order, sw, first, last, rates, stats)``,
    which runs minibatches ``first`` to ``last - 1`` of the epoch and adds
    their statistics (``fastbp.kernels.layout.S_*``) to ``stats``.
    """

    _batch_seconds = None  # the last measured seconds per minibatch

    def _chunk(self, remaining):
        """How many minibatches the next call runs: as many as take about ``CALL_SECONDS``."""
        if self._batch_seconds is None:
            return min(remaining, 4)  # first measure
        return max(1, min(remaining, int(CALL_SECONDS / max(self._batch_seconds, 1e-9))))

    def run_epoch(self, X, T, order, sw=None, schedule=None, on_progress=None):
        """One epoch over ``X[order]``; returns ``(mean_loss, correct_fraction, diverged)``.

        Parameters
        ----------
        X, T : ndarray (or CSRInput for ``X``)
        order : ndarray of int64
        sw : ndarray, optional
            Sample weights; the loss is then their weighted mean (the
            accuracy is never weighted).
        schedule : fastbp.schedules.Schedule, optional
            A schedule stepped per optimizer step: it gives each minibatch's
            learning rate.
        on_progress : callable, optional
            Called between calls as ``on_progress(samples_seen, mean_loss_so_far)``.
        """
        n_batches = -(-X.shape[0] // self.batch_size)
        stats = self.stats  # allocated once, with the workspaces
        stats[:] = 0.0
        done = 0
        while done < n_batches:
            count = self._chunk(n_batches - done)
            rates = None if schedule is None else schedule.rates(count)
            t0 = time.perf_counter()
            self.run_batches(X, T, order, sw, done, done + count, rates, stats)
            self._batch_seconds = (time.perf_counter() - t0) / count
            done += count
            if stats[S_DIVERGED]:
                break
            if on_progress is not None and done < n_batches:
                on_progress(int(stats[S_SEEN]), epoch_figures(stats, self.network)[0])
        return epoch_figures(stats, self.network)


class CompiledTrainer(EpochRunner):
    """Runs epochs with the compiled driver, serial or parallel.

    ``dropout`` (per weight layer, the output's 0), ``clip`` (a maximum
    gradient norm) and ``seed`` (of the dropout masks) are as in
    :func:`fastbp.kernels.driver.train_epoch`; None for none.
    """

    def __init__(self, network, theta, optimizer, batch_size, parallel, l2=0.0, dropout=None, clip=None, seed=0,
                 sparse=False):
        if parallel:
            configure_threading()
            chunks = numba.get_num_threads()
            self._drivers = (driver.train_epoch_parallel, driver.train_epoch_sparse_parallel)
            self._turn = parallel_epochs
        else:
            chunks = 1
            self._drivers = (driver.train_epoch, driver.train_epoch_sparse)
            self._turn = contextlib.nullcontext()
        rows = -(-batch_size // chunks)
        dtype = theta.dtype
        width = network.workspace_width(rows)
        self.network = network
        self.theta = theta
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.l2 = float(l2)
        self.layers = network.layer_table(rows)
        # sparse input is read where it is, never gathered: no input workspace (it would be rows x d_in)
        self.xbuf = np.zeros((chunks, 0 if sparse else rows * network.n_inputs), dtype=dtype)
        self.tbuf = np.zeros((chunks, rows * network.n_outputs), dtype=dtype)
        self.swbuf = np.zeros((chunks, rows), dtype=dtype)
        self.no_weights = np.zeros(0, dtype=dtype)
        self.zbuf = np.zeros((chunks, width), dtype=dtype)
        self.abuf = np.zeros((chunks, width), dtype=dtype)
        self.dbuf = np.zeros((chunks, width), dtype=dtype)
        self.wtbuf = np.zeros(network.transposed_width(), dtype=dtype)
        self.gbuf = np.zeros((chunks, theta.shape[0]), dtype=dtype)
        self.chunk_out = np.zeros((chunks, 2))
        self.stats = np.zeros(N_STATS)
        self.hyper = optimizer.hyperparameters()
        self.dropout = _dropout_table(dropout)
        self.clip = None if clip is None else float(clip)
        self.seed = int(seed)
        self.variant = network_variant(network, optimizer=optimizer.code)

    def _driver(self, X):
        return self._drivers[1] if isinstance(X, CSRInput) else self._drivers[0]

    def needs_compiling(self, X, step_rates=False):
        """Whether the epoch driver for ``X`` (with per-step rates or not) has not run in this process yet.

        Either variant counts, the general one or the network's own.
        """
        run = self._driver(X)
        served = (numba.typeof(GENERAL), numba.typeof(self.variant))
        return not any(isinstance(sig[_RATES_ARG], numba.types.Array) == step_rates and sig[_VARIANT_ARG] in served
                       for sig in run.signatures)

    def prepare(self, X, T, order, sw=None, step_rates=False):
        """Compile (or load from the cache) the epoch driver for these arguments, running no minibatch.

        Returns
        -------
        str
            ``"compiled"``, ``"loaded"`` (from the on-disk cache) or ``"ready"`` (already in memory).
        """
        run = self._driver(X)
        before = (sum(run.stats.cache_hits.values()), sum(run.stats.cache_misses.values()), len(run.signatures))
        self.run_batches(X, T, order, sw, 0, 0, np.zeros(0) if step_rates else None, np.zeros(N_STATS))
        hits, misses = sum(run.stats.cache_hits.values()), sum(run.stats.cache_misses.values())
        if len(run.signatures) == before[2]:
            return "ready"
        return "loaded" if hits > before[0] and misses == before[1] else "compiled"

    def run_batches(self, X, T, order, sw, first, last, rates, stats):
        """Minibatches ``first`` to ``last - 1`` of the epoch over ``X[order]``, their statistics added to ``stats``."""
        opt = self.optimizer
        sw = self.no_weights if sw is None else sw
        self.hyper[H_LR] = opt.lr  # a schedule stepped per epoch sets the optimizer's rate between calls
        data = X.arrays if isinstance(X, CSRInput) else X
        # One BLAS thread per fastbp thread (no oversubscription), and parallel epochs of concurrent fits one
        # at a time. The compiled epoch releases the GIL while it runs.
        with blas_threads(1), self._turn:
            call_driver(self._driver(X), (data, T, sw, order, self.batch_size, self.theta, self.layers,
                                          self.network.loss_code, self.l2, self.xbuf, self.tbuf, self.swbuf,
                                          self.zbuf, self.abuf, self.dbuf, self.wtbuf, self.gbuf, self.chunk_out,
                                          opt.code, self.hyper, opt.m, opt.v, opt.step, stats, first, last, rates,
                                          self.clip, self.dropout, self.seed),
                        self.variant, self.theta.dtype)
        if rates is not None and len(rates):
            opt.lr = float(rates[-1])


def _dropout_table(dropout):
    """The driver's ``(L, 2)`` table of ``p`` and ``1 / (1 - p)`` per weight layer, or None without dropout."""
    if dropout is None or not any(dropout):
        return None
    p = np.asarray(dropout, dtype=np.float64)
    return np.ascontiguousarray(np.stack([p, 1.0 / (1.0 - p)], axis=1))


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
        self.optimizer = optimizer
        self.device = cuda.DeviceEpochs(network.layer_table(batch_size), network.loss_code, theta, optimizer.m,
                                        optimizer.v, optimizer.step, optimizer.code, optimizer.hyperparameters(),
                                        batch_size, l2)

    def run_epoch(self, X, T, order, sw=None):
        """One epoch over ``X[order]``; returns ``(mean_loss, correct_fraction, diverged)``.

        After a divergence the device state is back where the epoch began.
        The optimizer's hyperparameters are sent again first, so that a
        schedule stepped per epoch reaches the device.
        """
        self.device.hyper.copy_to_device(np.asarray(self.optimizer.hyperparameters(), dtype=np.float64))
        return epoch_figures(self.device.run_epoch(X, T, order, sw), self.network)

    def upload(self, X, T, sw=None):
        """Copy the checked data to the device now; the epochs given the same arrays then copy nothing."""
        self.device.upload(X, T, sw)

    def fetch(self):
        """Copy the device parameters and optimizer state into the host ``theta`` and optimizer arrays."""
        self.device.fetch()


class NumpyTrainer(EpochRunner):
    """Runs epochs with the plain-NumPy reference, one minibatch per Python iteration.

    Dropout masks, clipping and per-step rates are those of the compiled
    trainer, computed with NumPy (:func:`fastbp.reference.dropout_mask`).
    """

    def __init__(self, network, theta, optimizer, batch_size, l2=0.0, dropout=None, clip=None, seed=0):
        self.network = network
        self.l2 = float(l2)
        self.theta = theta
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.dropout = None if dropout is None or not any(dropout) else [float(p) for p in dropout]
        self.clip = None if clip is None else float(clip)
        self.seed = int(seed)
        self.stats = np.zeros(N_STATS)

    def needs_compiling(self, X, step_rates=False):
        """Nothing here is compiled."""
        return False

    def prepare(self, X, T, order, sw=None, step_rates=False):
        """Nothing to compile: ``"ready"``."""
        return "ready"

    def _masks(self, step, rows):
        if self.dropout is None:
            return None
        return [reference.dropout_mask(self.seed, step, rows, l, self.network.sizes[l + 1], p, self.network.dtype)
                if p > 0 else None for l, p in enumerate(self.dropout[:-1])]

    def run_batches(self, X, T, order, sw, first, last, rates, stats):
        """Minibatches ``first`` to ``last - 1`` of the epoch over ``X[order]``, their statistics added to ``stats``."""
        opt = self.optimizer
        net = self.network
        Ws, bs = net.unflatten(self.theta)
        mWs, mbs = net.unflatten(opt.m)
        vWs, vbs = net.unflatten(opt.v)
        state = {"step": int(opt.step[0]), "m": mWs + mbs, "v": vWs + vbs}
        settings = opt.settings()
        norm = net.row_divisor
        n = X.shape[0]
        for b, start in enumerate(range(first * self.batch_size, min(last * self.batch_size, n), self.batch_size)):
            idx = order[start:start + self.batch_size]
            Xb = X.dense_rows(idx) if isinstance(X, CSRInput) else X[idx]
            Tb = T[idx]
            swb = None if sw is None else sw[idx]
            _, wsum = reference.sample_weights(len(idx), swb)
            if wsum == 0:  # a minibatch of zero weights: no step
                stats[S_SEEN] += len(idx)
                continue
            masks = self._masks(state["step"] + 1, len(idx))
            Zs, As = reference.forward(Xb, Ws, bs, net.activations, masks)
            loss = reference.loss_value(net.loss, Zs[-1], Tb, swb) + reference.l2_penalty(Ws, self.l2, wsum)
            if not np.isfinite(loss):
                stats[S_DIVERGED] = 1.0
                break
            gWs, gbs = reference.backward(Xb, Tb, Ws, Zs, As, net.activations, net.loss, swb, self.l2, masks)
            if self.clip is not None:
                gWs, gbs = reference.clip_grad_norm(gWs, gbs, self.clip)
            stats[S_CORRECT] += correct_count(net.loss, Zs[-1], Tb)
            stats[S_LOSS] += loss * wsum * norm
            stats[S_SEEN] += len(idx)
            stats[S_WEIGHT] += wsum
            if rates is not None:
                settings["lr"] = float(rates[b])
            reference.optimizer_step(opt.name, Ws + bs, gWs + gbs, state, **settings)
        opt.step[0] = state["step"]
        if rates is not None and len(rates):
            opt.lr = float(rates[-1])


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


def make_trainer(backend, network, theta, optimizer, batch_size, l2=0.0, dropout=None, clip=None, seed=0,
                 sparse=False):
    """The trainer for a resolved backend name (``"numpy"``, ``"cpu"``, ``"parallel"`` or ``"cuda"``).

    ``theta`` is the flat parameter vector the trainer updates in place;
    ``l2`` is the penalty on the weights (see ``fastbp.kernels.driver``);
    ``dropout`` (one probability per weight layer), ``clip`` (a maximum
    gradient norm) and ``seed`` (the dropout masks') are None or 0 for none; ``sparse`` says that the
    input will be a :class:`~fastbp.sparse_input.CSRInput`.
    """
    if backend == "numpy":
        return NumpyTrainer(network, theta, optimizer, batch_size, l2, dropout, clip, seed)
    if backend == "cuda":
        if (dropout is not None and any(dropout)) or clip is not None:
            raise ValueError("backend='cuda' does not support dropout or clip_grad_norm yet; use backend='cpu' or "
                             "'parallel'")
        return CudaTrainer(network, theta, optimizer, batch_size, l2)
    return CompiledTrainer(network, theta, optimizer, batch_size, parallel=backend == "parallel", l2=l2,
                           dropout=dropout, clip=clip, seed=seed, sparse=sparse)


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
        A new array. Up to :data:`FULL_BATCH_ROWS` rows make one compiled
        call; more are taken in blocks (:class:`FullBatchObjective`).
    """
    return FullBatchObjective(network, theta, X, T, sw, l2)()


#: Rows per compiled call of :class:`FullBatchObjective`: bounds its workspaces (three of rows x the layers' widths).
FULL_BATCH_ROWS = 8192


class FullBatchObjective:
    """The mean loss over a whole data set and its gradient at the current parameters, for full-batch optimizers.

    Workspaces are allocated once. Up to ``block_rows`` rows make one
    compiled call, the ``l2`` penalty included (``backend="cpu"``); more are
    taken in blocks of ``block_rows``, whose weighted means and gradients are
    combined and the penalty added once, so the result is that of one
    minibatch of all the rows, to rounding. ``backend="numpy"`` makes one
    NumPy reference evaluation.

    Parameters
    ----------
    network : Network
    theta : ndarray, shape (n_params,)
        The parameters, read at each call (write new values into it first).
    X, T : ndarray or CSRInput, ndarray
        Checked data.
    sw : ndarray, shape (n,), or None
        Sample weights.
    l2 : float
    backend : {"cpu", "numpy"}
    block_rows : int
    """

    def __init__(self, network, theta, X, T, sw, l2, backend="cpu", block_rows=FULL_BATCH_ROWS):
        self.network, self.theta, self.X, self.T, self.l2, self.backend = network, theta, X, T, float(l2), backend
        n = X.shape[0]
        self.sw = sw
        weights = np.ones(n) if sw is None else sw.astype(np.float64)
        self.blocks = [(a, min(a + block_rows, n)) for a in range(0, n, block_rows)]
        self.block_weights = [float(weights[a:b].sum()) for a, b in self.blocks]
        self.total_weight = float(sum(self.block_weights))
        self.grad = np.empty_like(theta)
        self.correct, self.evaluated_at = 0.0, None
        if backend == "numpy":  # the reference reads dense rows: a sparse X is densified once, here
            self._dense = X.dense_rows(np.arange(n)) if isinstance(X, CSRInput) else X
        if backend == "cpu":
            rows = min(block_rows, n)
            self._bufs = [np.empty(network.workspace_width(rows), dtype=network.dtype) for _ in range(3)]
            self._bufs.append(np.empty(network.transposed_width(), dtype=network.dtype))  # see driver.transpose_weights
            self._block_grad = np.empty_like(theta) if len(self.blocks) > 1 else None
            self._no_weights = np.zeros(0, dtype=network.dtype)
            self._run, self._data, self._ids = _full_batch(driver.loss_and_grad, driver.loss_and_grad_sparse, X)
            self._variant = network_variant(network, loss=True)

    def __call__(self):
        """``(loss, grad)`` at the current ``theta``; ``grad`` is a buffer overwritten by the next call.

        The count of correct predictions at the same parameters (for the
        classification losses; see :func:`correct_count`) is left in
        ``self.correct``, and a copy of those parameters in ``self.evaluated_at``.
        """
        self.evaluated_at = self.theta.copy()
        if self.backend == "numpy":
            return self._reference()
        if len(self.blocks) == 1:  # one compiled call, the penalty included
            loss, self.correct = self._run_block(0, self.X.shape[0], self.sw, self.l2, self.grad)
            return float(loss), self.grad
        net, grad = self.network, self.grad
        grad[...] = 0
        loss = 0.0
        self.correct = 0.0
        for (a, b), weight in zip(self.blocks, self.block_weights):
            # a block of zero weights adds nothing but its predictions (run unweighted for those alone)
            sw = None if self.sw is None or weight == 0 else self.sw[a:b]
            block_loss, correct = self._run_block(a, b, sw, 0.0, self._block_grad)
            self.correct += correct
            if weight == 0:
                continue
            share = weight / self.total_weight
            loss += share * float(block_loss)
            grad += net.dtype.type(share) * self._block_grad
        Ws, _ = net.unflatten(self.theta)
        gWs, _ = net.unflatten(grad)
        if self.l2:
            for W, gW in zip(Ws, gWs):
                gW += net.dtype.type(self.l2 / self.total_weight) * W
            loss += reference.l2_penalty(Ws, self.l2, self.total_weight)
        return loss, grad

    def _run_block(self, a, b, sw, l2, grad):
        """One compiled call on rows ``a:b`` (sample weights ``sw`` of those rows, or None): ``(loss, correct)``."""
        if self._data is self.X:
            data, ids = self.X[a:b], self._ids
        else:
            data, ids = self._data, self._ids[a:b]
        sw = self._no_weights if sw is None else sw
        return call_driver(self._run, (data, ids, self.T[a:b], sw, self.theta, self.network.layer_table(b - a),
                                       self.network.loss_code, l2, *self._bufs, grad),
                           self._variant, self.theta.dtype)

    def _reference(self):
        net = self.network
        X = self._dense
        Ws, bs = net.unflatten(self.theta)
        Zs, As = reference.forward(X, Ws, bs, net.activations)
        loss = (reference.loss_value(net.loss, Zs[-1], self.T, self.sw)
                + reference.l2_penalty(Ws, self.l2, self.total_weight))
        gWs, gbs = reference.backward(X, self.T, Ws, Zs, As, net.activations, net.loss, self.sw, self.l2)
        self.correct = correct_count(net.loss, Zs[-1], self.T)
        gW_views, gb_views = net.unflatten(self.grad)
        for view, g in zip(gW_views + gb_views, gWs + gbs):
            view[...] = g
        return float(loss), self.grad


def output_logits(network, theta, X):
    """The output layer's pre-activations of checked inputs ``X``, shape ``(n, n_outputs)``."""
    n = X.shape[0]
    block = min(_PREDICT_BLOCK, n)
    width = network.workspace_width(block)
    zbuf, abuf = np.empty(width, dtype=network.dtype), np.empty(width, dtype=network.dtype)
    out = np.empty((n, network.n_outputs), dtype=network.dtype)
    run, data, ids = _full_batch(driver.predict_raw, driver.predict_raw_sparse, X)
    call_driver(run, (data, ids, theta, network.layer_table(block), block, zbuf, abuf, out),
                network_variant(network), theta.dtype)
    return out


def _full_batch(dense, sparse, X):
    """The driver for ``X`` (dense or sparse), its input arrays, and the row ids the sparse variant reads."""
    if isinstance(X, CSRInput):
        return sparse, X.arrays, np.arange(X.shape[0], dtype=np.int64)
    return dense, X, _NO_ROWS
