"""The multilayer perceptron: construction, training, prediction, saving."""

import numbers
import time
import warnings

import numpy as np

from . import _settings, training
from ._validation import as_bool, as_penalty, as_sample_weight
from .fitting import (
    CLASSIFICATION_LOSSES,
    EarlyStopping,
    callbacks_say_stop,
    check_clip,
    check_dropout,
    check_fit_arguments,
    check_monitor,
    check_schedule,
    deferred_interrupt,
    divergence_message,
    early_stopping_message,
    new_history,
)
from .lbfgs import LBFGS
from .network import INITS, Network
from .optim import Adam
from .persistence import DTYPES, LOAD_ERRORS, read_model_file, write_model_file
from .progress import Progress
from .reference import loss_value, sigmoid, softmax
from .sparse_input import CSRInput


class DivergedError(FloatingPointError):
    """Training produced a non-finite loss, weights or optimizer state; the model keeps its last finite weights.

    Attributes
    ----------
    history : dict
        The history of the epochs completed before the divergence.
    """

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history


class MLP:
    """A multilayer perceptron trained by back-propagation with compiled kernels.

    Parameters
    ----------
    layers : sequence of int
        Layer widths, input first and output last, e.g. ``[64, 128, 64, 10]``.
    activation : str or sequence of str, default "relu"
        Hidden-layer activation: one name for every hidden layer, or one per
        hidden layer. Names: ``identity``, ``sigmoid``, ``tanh``, ``relu``,
        ``leaky_relu``, ``elu``, ``softplus``, ``gelu``. The output layer is linear.
    loss : {"mse", "binary_cross_entropy", "softmax_cross_entropy", "poisson"}, default "mse"
        The loss applies the sigmoid (binary cross-entropy), softmax or exp
        (poisson: ``torch.nn.PoissonNLLLoss(log_input=True)``, the output is
        the log of the mean) itself.
    dtype : {numpy.float32, numpy.float64}, default numpy.float32
        Parameter and computation dtype.
    seed : int or None, default None
        Seeds the initial weights and the shuffling, so runs can be reproduced.
    init : {"auto", "glorot_uniform", "he_uniform"}, default "auto"
        ``auto`` is He-uniform for the ReLU family and Glorot-uniform otherwise.
    dropout : float or sequence of float, default 0
        ``torch.nn.Dropout`` after each hidden layer's activation: one
        probability for all hidden layers, or one per hidden layer. In
        training, units are dropped with that probability and the kept ones
        scaled by ``1 / (1 - p)``; ``predict``, ``evaluate`` and
        ``loss_and_grad`` use no dropout. The masks are drawn from ``seed``
        (with the optimizer step, the row and the unit), the same on every
        CPU backend.

    Examples
    --------
    >>> import numpy as np, fastbp
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 2)).astype(np.float32)
    >>> y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    >>> model = fastbp.MLP([2, 16, 2], activation="tanh", loss="softmax_cross_entropy", seed=0)
    >>> history = model.fit(X, y, epochs=50, batch_size=16, optimizer=fastbp.Adam(lr=0.01))
    >>> bool(history["loss"][-1] < history["loss"][0])
    True
    >>> model.predict(X[:3]).shape
    (3, 2)
    """

    def __init__(self, layers, activation="relu", loss="mse", dtype=np.float32, seed=None, init="auto", dropout=0.0):
        network = Network(layers, activation, loss, dtype)
        self._setup(network, seed, init, dropout)
        self.theta = network.initial_params(init, self._rng)

    def _setup(self, network, seed, init, dropout=0.0):
        """Check ``seed``, ``init`` and ``dropout`` and set everything but the parameters."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise TypeError(f"seed must be a non-negative int or None, got {seed!r}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; expected one of {list(INITS)}")
        self.dropout = check_dropout(dropout, len(network.sizes) - 2)
        self.seed = seed
        self.init = init
        self.optimizer = None
        self.history = None
        self._rng = np.random.default_rng(seed)
        # The dropout masks' key: the seed itself, so that they are reproducible from it (without a seed, fresh
        # entropy, drawn apart from the shuffling generator so that seeded shuffles stay what they were).
        self._mask_seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (1 << 62))
        self.network = network

    @classmethod
    def _unfilled(cls, network, seed, init, dropout=0.0):
        """A model whose parameter vector is allocated but not written (for :meth:`load` to fill).

        Its shuffling generator is advanced past the draws of the initial
        weights, so the model shuffles as one made by the constructor would.
        """
        model = cls.__new__(cls)
        model._setup(network, seed, init, dropout)
        model.theta = np.empty(network.n_params, dtype=network.dtype)
        model._rng.bit_generator.advance(sum(W.size for W in network.unflatten(model.theta)[0]))
        return model

    # ---------------------------------------------------------- architecture
    layers = property(lambda self: self.network.sizes, doc="Layer widths, input first (``network.sizes``).")
    activations = property(lambda self: self.network.activations, doc="Hidden-layer activation names.")
    loss = property(lambda self: self.network.loss, doc="The loss name.")
    dtype = property(lambda self: self.network.dtype, doc="Parameter and computation dtype.")

    # ----------------------------------------------------------------- weights
    @property
    def n_params(self):
        """Number of trainable parameters (weights and biases)."""
        return self.network.n_params

    def get_weights(self):
        """Copies of the weights and biases.

        Returns
        -------
        Ws : list of ndarray
            ``W`` of each layer, shaped ``(fan_in, fan_out)``.
        bs : list of ndarray
            ``b`` of each layer, shaped ``(fan_out,)``.
        """
        Ws, bs = self.network.unflatten(self.theta)
        return [W.copy() for W in Ws], [b.copy() for b in bs]

    def set_weights(self, Ws, bs):
        """Replace the weights and biases; shapes and dtypes must match :meth:`get_weights`.

        Parameters
        ----------
        Ws, bs : sequence of ndarray
            As returned by :meth:`get_weights`. Arrays must have exactly the
            model's dtype and be finite.
        """
        own_Ws, own_bs = self.network.unflatten(self.theta)
        if len(Ws) != len(own_Ws) or len(bs) != len(own_bs):
            raise ValueError(f"expected {len(own_Ws)} weight and {len(own_bs)} bias arrays, "
                             f"got {len(Ws)} and {len(bs)}")
        for kind, new, own in (("W", Ws, own_Ws), ("b", bs, own_bs)):
            for l, (a, o) in enumerate(zip(new, own)):
                if not isinstance(a, np.ndarray):
                    raise TypeError(f"{kind}[{l}] must be a numpy array, got {type(a).__name__}")
                if a.shape != o.shape:
                    raise ValueError(f"{kind}[{l}] must have shape {o.shape}, got {a.shape}")
                if a.dtype != self.dtype:
                    raise TypeError(f"{kind}[{l}] must have dtype {np.dtype(self.dtype).name}, got {a.dtype}")
                if not np.all(np.isfinite(a)):
                    raise ValueError(f"{kind}[{l}] contains NaN or Inf")
        for a, o in zip(list(Ws) + list(bs), own_Ws + own_bs):
            o[...] = a

    # ---------------------------------------------------------------- training
    def fit(self, X, y, epochs=1, batch_size=32, optimizer=None, shuffle=True, validation_data=None,
            backend="auto", verbose=False, callbacks=None, patience=None, min_delta=0.0,
            restore_best_weights=True, sample_weight=None, l2=0.0, lr_schedule=None, clip_grad_norm=None):
        """Train on ``X, y`` by minibatch gradient descent, continuing from the current weights.

        Parameters
        ----------
        X : array_like, shape (n, layers[0])
            Inputs; converted once to the model dtype.
        y : array_like
            Targets: integer labels ``(n,)`` or one-hot/probability rows ``(n, k)``
            for softmax cross-entropy; 0/1 (or probabilities) shaped ``(n, k)``,
            or ``(n,)`` when ``k == 1``, for binary cross-entropy; values for mse.
        epochs : int, default 1
        batch_size : int, default 32
            The last minibatch of an epoch may be smaller; each minibatch's
            loss is its own mean.
        optimizer : Optimizer or LBFGS, optional
            Defaults to the optimizer of the previous ``fit`` (its state
            continues), or a new :class:`~fastbp.Adam` on the first call.
            :class:`~fastbp.LBFGS` trains on the whole set at once instead:
            each epoch is then one L-BFGS iteration, ``batch_size`` and
            ``shuffle`` are unused, and ``lr_schedule``, ``clip_grad_norm``,
            dropout and the ``parallel`` and ``cuda`` backends are refused.
        shuffle : bool, default True
            Visit samples in a new random order each epoch, drawn from the
            model's seeded generator. ``False`` takes minibatches in order.
            Anything but True or False (NumPy's bools too) is a ``TypeError``.
        validation_data : tuple (X_val, y_val), optional
            Evaluated after every epoch.
        backend : {"auto", "cpu", "parallel", "numpy", "cuda"}, default "auto"
            ``auto`` picks ``cuda`` for very large minibatches when a CUDA GPU is
            present, ``parallel`` for large ones and ``cpu`` otherwise. ``cuda``
            (``pip install fastbp[cuda]``) keeps data, weights and optimizer state
            on the GPU; only each epoch's figures come back, plus the weights
            when validation data, callbacks, early stopping or a divergence need
            them on the host. Without a usable GPU it raises ``RuntimeError``
            saying why.
        verbose : {0, 1, 2} or bool, default False
            Keras's convention: 0 (or False) is silent; 1 (or True) shows a
            progress bar inside each epoch with samples per second and the
            running loss (tqdm's, where tqdm is installed and the output is a
            terminal or a notebook; elsewhere a plain line every few seconds of
            a long epoch), then one line per epoch; 2 prints the line per epoch
            only. Either says when the kernels are compiled (or loaded from the
            cache) before the first epoch, and why early stopping ended
            training.
        callbacks : list of callables, optional
            Each is called as ``callback(epoch, logs)`` after every epoch with
            that epoch's figures (every callback runs). Returning True, a
            Python or NumPy bool, stops training after that epoch; False and
            None go on; any other return value is a ``TypeError``. A single
            callable is not a list: pass ``[callback]``.
        patience : int, optional
            Early stopping: stop when the monitored loss (``val_loss`` if
            validation data is given, else ``loss``) has not improved by more
            than ``min_delta`` for ``patience`` epochs.
        min_delta : float, default 0
        restore_best_weights : bool, default True
            With early stopping, end with the weights of the best epoch.
        sample_weight : array_like, shape (n,), optional
            Non-negative weight of each sample. Each minibatch's loss becomes
            the weighted mean ``sum_i w_i J_i / sum_i w_i`` (a minibatch whose
            weights are all zero is skipped). The accuracy in the history is
            not weighted.
        l2 : float, default 0
            L2 penalty on the weights (not the biases): each minibatch's loss
            gains ``l2 / 2 * sum(W**2) / sum_i w_i``, the sum of its sample
            weights (its size when unweighted). This is scikit-learn's ``alpha``;
            the optimizers' ``weight_decay`` is the PyTorch-style alternative.
        lr_schedule : fastbp.schedules.Schedule, optional
            A learning-rate schedule (``torch.optim.lr_scheduler``'s
            definitions), stepped after each epoch, or after each optimizer
            step when made with ``interval="step"``. It sets the optimizer's
            ``lr``, as a PyTorch scheduler sets its optimizer's; the rate of
            each epoch is recorded in the history as ``"lr"``.
        clip_grad_norm : float, optional
            ``torch.nn.utils.clip_grad_norm_``: before each step, scale the
            minibatch gradient (the ``l2`` penalty's included) so that its
            2-norm over all parameters is at most this.

        Returns
        -------
        dict
            Also kept as ``model.history``, which holds the epochs completed so
            far when training is interrupted (Ctrl-C: ``KeyboardInterrupt``
            reaches the caller within a fraction of a second, and the model
            keeps the parameters and optimizer state of the last completed
            step).
            ``"loss"`` (mean training loss per epoch, with the ``l2`` penalty), ``"accuracy"`` for
            classification, ``"val_loss"``/``"val_accuracy"`` with validation
            data, ``"samples_per_second"``, and ``"backend"`` (the resolved name).

        Raises
        ------
        TypeError, ValueError
            For data or arguments that are not what is documented here,
            raised before training starts: the model and the optimizer are
            then left unchanged. (A callback's return value that is neither a
            bool nor None is a ``TypeError`` after the epoch that called it.)
        DivergedError
            When the loss or a weight becomes non-finite, or the optimizer's
            state does (Adam's ``v`` overflows when the gradients pass about
            6e20 in float32; checked after every epoch on the host backends,
            not by ``cuda``), without early stopping; the model keeps the
            weights and optimizer state from before the diverging epoch.
            With early stopping a ``RuntimeWarning`` says the same and
            ``fit`` returns.

        Notes
        -----
        Softmax cross-entropy takes probability rows as
        ``torch.nn.CrossEntropyLoss`` does: each row's loss is
        ``-sum_j y_j log softmax(z)_j``, not normalised, so a row summing to 2
        weighs twice, and an all-zero row adds 0 to the loss and nothing to the
        gradient while still counting in the mean's denominator (and, with
        argmax 0, in the accuracy).

        The data must fit the model's dtype: values of ``X``, ``y`` or
        ``sample_weight`` beyond its range (1e39 in float32), positive sample
        weights it cannot hold as normal numbers (1e-45 in float32) and an
        optimizer ``lr`` or ``eps`` that rounds to 0 in it are refused with a
        ``ValueError`` saying so, before training starts. mse targets whose
        square overflows the dtype (beyond about 1.8e19 in float32) make the
        loss overflow: the ``DivergedError`` then says the targets are too
        large for the dtype.
        """
        X, T = self.network.check_data(X, y)
        sw = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        l2 = as_penalty("l2", l2)
        shuffle = as_bool("shuffle", shuffle)
        val, epochs, batch_size, callbacks, patience = check_fit_arguments(
            self.network, validation_data, epochs, batch_size, backend, optimizer, callbacks, patience, min_delta)
        schedule, clip = check_schedule(lr_schedule), check_clip(clip_grad_norm)
        n = X.shape[0]
        progress = Progress(verbose, epochs, n)
        stopper = EarlyStopping(patience, min_delta, restore_best_weights, "val_loss" if val is not None else "loss")
        opt = optimizer or self.optimizer or Adam()
        if isinstance(opt, LBFGS):
            return self._fit_lbfgs(opt, X, T, sw, l2, val, epochs, backend, callbacks, stopper, progress, schedule,
                                   clip)
        rows = min(batch_size, n)  # a minibatch never holds more than n rows, so neither do the workspaces
        step_schedule = schedule is not None and schedule.interval == "step"
        host_only = isinstance(X, CSRInput) or step_schedule or clip is not None or any(self.dropout)
        # what the CUDA backend does not do yet: "auto" then chooses among the CPU backends, "cuda" is refused
        resolved = training.choose_backend(backend, self.layers, rows, allow_cuda=not host_only)
        if resolved == "cuda" and host_only:
            raise ValueError("backend='cuda' does not support sparse X, per-step schedules, dropout or "
                             "clip_grad_norm yet; use backend='cpu' or 'parallel'")
        check_monitor(schedule, val is not None, self.loss in CLASSIFICATION_LOSSES)
        opt.bind(self.n_params, self.dtype)
        trainer = training.make_trainer(resolved, self.network, self.theta, opt, rows, l2, self.dropout + [0.0], clip,
                                        self._mask_seed, sparse=isinstance(X, CSRInput))
        self.optimizer = opt
        history = new_history(resolved, classify=self.loss in CLASSIFICATION_LOSSES, validation=val is not None)
        if schedule is not None:
            schedule.bind(opt.lr)
            history["lr"] = []
        self.history = history
        on_device = getattr(trainer, "on_device", False)
        if not on_device and trainer.needs_compiling(X, step_schedule):  # compiled before the first epoch, untimed
            self._prepare(trainer, progress, X, T, sw, step_schedule)
        try:
            with deferred_interrupt() as check_interrupt:
                self._epochs(X, T, sw, val, epochs, shuffle, callbacks, schedule, opt, trainer, progress, stopper,
                             history, check_interrupt)
        finally:
            progress.close_bar()
            if on_device:
                trainer.fetch()  # the state of the last completed epoch, also after Ctrl-C or an error
        stopper.restore(self.theta, opt)
        return history

    def _epochs(self, X, T, sw, val, epochs, shuffle, callbacks, schedule, opt, trainer, progress, stopper, history,
                check_interrupt):
        """``fit``'s loop over the epochs (see :meth:`fit`); the history grows in place."""
        on_device = getattr(trainer, "on_device", False)
        n = X.shape[0]
        best_epoch = None
        for ep in range(epochs):
            if ep and not on_device:
                opt.bind(self.n_params, self.dtype)  # a callback may have replaced the state arrays
            if schedule is not None and schedule.interval == "epoch":
                opt.lr = schedule.current()
            order = self._rng.permutation(n) if shuffle else np.arange(n)
            if not on_device:  # a device trainer keeps its own copy and restores it after a divergence
                theta_before, state_before = self.theta.copy(), opt.state_copy()
            schedule_before, lr_before = (None if schedule is None else dict(vars(schedule))), opt.lr
            progress.start_epoch(ep + 1)

            def on_progress(seen, running_loss, ep=ep):
                progress.update(ep + 1, seen, running_loss)
                check_interrupt()

            t0 = time.perf_counter()
            rate = schedule.current() if schedule is not None else opt.lr  # the epoch's first rate
            if on_device:
                loss, acc, diverged = trainer.run_epoch(X, T, order, sw)
            else:
                loss, acc, diverged = trainer.run_epoch(
                    X, T, order, sw, schedule=schedule if schedule is not None and schedule.interval == "step"
                    else None, on_progress=on_progress)
            seconds = time.perf_counter() - t0
            progress.close_bar()
            if on_device and (diverged or val is not None or callbacks or stopper.active):
                trainer.fetch()  # these need the weights on the host
            message = divergence_message(ep + 1, diverged, self.theta, opt,
                                         X.data if isinstance(X, CSRInput) else X, check_state=not on_device,
                                         T=T, loss=self.loss)
            if message:
                if not on_device:
                    self.theta[...] = theta_before
                    opt.restore_state(state_before)
                if schedule is not None:  # the schedule and the rate go back with the weights
                    vars(schedule).update(schedule_before)
                opt.lr = lr_before
                if not stopper.active:
                    raise DivergedError(message, history)
                warnings.warn(message, RuntimeWarning, stacklevel=3)  # the caller of fit
                break
            logs = self._epoch_logs(loss, acc, val, n / seconds if seconds > 0 else float("inf"))
            if schedule is not None:
                history["lr"].append(rate)
            stop, stopped_early, improved = self._end_epoch(ep + 1, logs, history, progress, callbacks, stopper, opt)
            if improved:
                best_epoch = ep + 1
            if schedule is not None and schedule.interval == "epoch":
                schedule.step(schedule.monitored(logs) if hasattr(schedule, "monitored") else None)
            if schedule is not None:
                opt.lr = schedule.current()  # as a PyTorch scheduler's step sets its optimizer's rate
            check_interrupt()
            if stopped_early:
                progress.message(early_stopping_message(ep + 1, stopper, best_epoch))
            if stopped_early or stop:
                break

    def _end_epoch(self, epoch, logs, history, progress, callbacks, stopper, opt):
        """Record epoch ``epoch``'s (from 1) figures, print its line, and ask the callbacks and early stopping.

        Returns ``(stop, stopped_early, improved)``: a callback said to stop,
        early stopping did, and the monitored figure improved.
        """
        for key, value in logs.items():
            history[key].append(value)
        progress.end_epoch(epoch, logs)
        stop = callbacks_say_stop(callbacks, epoch - 1, logs)
        best_before = stopper.best
        stopped_early = stopper.update(logs, self.theta, opt)
        return stop, stopped_early, stopper.best != best_before

    def _fit_lbfgs(self, opt, X, T, sw, l2, val, epochs, backend, callbacks, stopper, progress, schedule, clip):
        """``fit`` with :class:`~fastbp.LBFGS`: one full-batch L-BFGS run, an epoch per iteration (see :meth:`fit`)."""
        if schedule is not None or clip is not None or any(self.dropout):
            raise ValueError("LBFGS is a full-batch optimizer without a learning rate: lr_schedule, clip_grad_norm "
                             "and dropout do not apply to it (use SGD, Adam or AdamW for them)")
        if backend not in ("auto", "cpu", "numpy"):
            raise ValueError(f"LBFGS runs on backend='cpu' (or 'auto', or 'numpy'), got backend={backend!r}: its "
                             "full-batch evaluations use the BLAS's threads already")
        resolved = "numpy" if backend == "numpy" else "cpu"
        objective = training.FullBatchObjective(self.network, self.theta, X, T, sw, l2, backend=resolved)
        self.optimizer = opt
        classify = self.loss in CLASSIFICATION_LOSSES
        history = self.history = new_history(resolved, classify=classify, validation=val is not None)
        theta_before = self.theta.copy()
        n = X.shape[0]
        clock = {"start": time.perf_counter(), "evaluations": 0}
        best_epoch = None

        with deferred_interrupt() as check_interrupt:
            def evaluate():
                result = objective()
                clock["evaluations"] += 1
                check_interrupt()
                return result

            def on_iteration(epoch, loss):
                nonlocal best_epoch
                seconds = time.perf_counter() - clock["start"]
                rate = n * clock["evaluations"] / seconds if seconds > 0 else float("inf")
                clock["start"], clock["evaluations"] = time.perf_counter(), 0
                if not np.isfinite(loss):
                    return True  # a divergence, reported below
                accuracy = None
                if classify:
                    if not np.array_equal(objective.evaluated_at, self.theta):
                        objective()  # the accepted point was not the last one evaluated
                    accuracy = objective.correct / (n * self.network.row_divisor)
                logs = self._epoch_logs(loss, accuracy, val, rate)
                stop, stopped_early, improved = self._end_epoch(epoch, logs, history, progress, callbacks, stopper,
                                                                opt)
                if improved:
                    best_epoch = epoch
                if stopped_early:
                    progress.message(early_stopping_message(epoch, stopper, best_epoch))
                check_interrupt()
                return stopped_early or stop

            result = opt.minimize(evaluate, self.theta, epochs, on_iteration)
        if not (np.isfinite(result.fun) and np.isfinite(self.theta).all()):
            self.theta[...] = theta_before
            opt.converged, opt.message = False, "the loss or the weights became non-finite"
            message = (f"L-BFGS diverged after {len(history['loss'])} epochs: the loss or the weights became "
                       "non-finite; the model keeps the weights it had before this fit")
            if not stopper.active:
                raise DivergedError(message, history)
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        stopper.restore(self.theta, opt)
        return history

    @staticmethod
    def _prepare(trainer, progress, X, T, sw, step_schedule):
        """Compile or load the epoch kernels before the first epoch, saying so when verbose."""
        progress.message("preparing the training kernels: compiled on a first run (some seconds), loaded from the "
                         "kernel cache after that ...")
        t0 = time.perf_counter()
        how = trainer.prepare(X, T, np.arange(X.shape[0]), sw, step_schedule)
        seconds = time.perf_counter() - t0
        if how == "loaded":
            progress.message(f"... loaded from the kernel cache in {seconds:.1f} s")
        elif _settings.CACHE:
            progress.message(f"... compiled in {seconds:.1f} s and cached for later processes")
        else:
            progress.message(f"... compiled in {seconds:.1f} s (FASTBP_CACHE=0: not cached, every process compiles)")

    def _epoch_logs(self, loss, acc, val, samples_per_second):
        """One epoch's figures, in the order the history and the progress line show them."""
        logs = {"loss": loss}
        if self.loss in CLASSIFICATION_LOSSES:
            logs["accuracy"] = acc
        if val is not None:
            logs.update({"val_" + k: v for k, v in self._metrics(*val).items()})
        logs["samples_per_second"] = samples_per_second
        return logs

    def partial_fit(self, X, y, batch_size=32, optimizer=None, shuffle=True, backend="auto", sample_weight=None,
                    l2=0.0):
        """One pass over ``X, y`` (one epoch); see :meth:`fit` for the parameters.

        Returns
        -------
        dict
            The history of that single epoch.

        Raises
        ------
        ValueError
            With :class:`~fastbp.LBFGS` (given, or left from an earlier
            ``fit``): it is a full-batch optimizer, so one pass is not a
            step of it; call ``fit`` instead.
        """
        if isinstance(optimizer if optimizer is not None else self.optimizer, LBFGS):
            raise ValueError("partial_fit takes minibatch steps; LBFGS is a full-batch optimizer: use fit, or "
                             "pass optimizer=SGD(...), Adam() or AdamW()")
        return self.fit(X, y, epochs=1, batch_size=batch_size, optimizer=optimizer, shuffle=shuffle,
                        backend=backend, sample_weight=sample_weight, l2=l2)

    def loss_and_grad(self, X, y, sample_weight=None, l2=0.0):
        """Mean loss over ``X, y`` and its exact gradients; nothing is updated.

        ``sample_weight`` and ``l2`` define the loss as in :meth:`fit`, with
        all of ``X`` as one minibatch.

        Returns
        -------
        loss : float
        gWs, gbs : list of ndarray
            Gradients in the layout of :meth:`get_weights`.
        """
        X, T = self.network.check_data(X, y)
        sw = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        l2 = as_penalty("l2", l2)
        loss, grad = training.loss_and_grad(self.network, self.theta, X, T, sw, l2)
        gWs, gbs = self.network.unflatten(grad)
        return loss, gWs, gbs

    # -------------------------------------------------------------- inference
    def decision_function(self, X):
        """The output layer's pre-activations (logits for the cross-entropy losses), shape ``(n, k)``."""
        return training.output_logits(self.network, self.theta, self.network.check_features(X))

    def predict(self, X):
        """Class probabilities (softmax / sigmoid) for the cross-entropy losses, the mean ``exp(z)`` for poisson,
        values for mse.

        Returns
        -------
        ndarray, shape (n, k)
        """
        Z = self.decision_function(X)
        if self.loss == "softmax_cross_entropy":
            return softmax(Z)
        if self.loss == "binary_cross_entropy":
            return sigmoid(Z)
        if self.loss == "poisson":
            return np.exp(Z)  # the output is the log of the mean
        return Z

    def evaluate(self, X, y):
        """Mean loss and, for classification, accuracy on ``X, y``.

        Returns
        -------
        dict
            ``{"loss": float}``, plus ``"accuracy"`` for the cross-entropy losses
            (argmax for softmax, ``p > 0.5`` per output for binary).
        """
        return self._metrics(*self.network.check_data(X, y))

    def _metrics(self, X, T):
        Z = training.output_logits(self.network, self.theta, X)
        result = {"loss": loss_value(self.loss, Z, T)}
        if self.loss in CLASSIFICATION_LOSSES:
            result["accuracy"] = training.correct_count(self.loss, Z, T) / (X.shape[0] * self.network.row_divisor)
        return result

    # ------------------------------------------------------------- save/load
    def save(self, path):
        """Write the model to ``path`` as an ``.npz``: the flat parameters plus a JSON header.

        The file is replaced atomically: the model is written to a temporary
        file in the same directory, flushed to disk, and only then renamed
        over ``path``. If writing fails (a full disk, a file size limit, an
        interrupt) the error propagates, the temporary file is removed and a
        file already at ``path`` is left as it was; a process killed while
        saving leaves ``path`` as it was too (and possibly a stray
        ``.NAME.*.tmp`` file beside it). The optimizer state is not saved.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write; its directory must exist. When ``path`` is a
            symbolic link, the file it points to is replaced.
        """
        header = {"layers": self.layers, "activation": self.activations, "loss": self.loss, "dropout": self.dropout,
                  "dtype": self.dtype.name, "init": self.init, "seed": self.seed}
        write_model_file(path, header, self.theta)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`. Never unpickles.

        The file must be a zip holding exactly ``header.npy`` (the JSON header
        as bytes) and ``theta.npy`` (the flat parameters). Only regular files
        are read (a named pipe or a device such as ``/dev/zero`` is refused
        without reading from it). The header is read and checked first: a
        network of more than :data:`fastbp.persistence.MAX_PARAMS` parameters
        (2**28) is refused, as is a parameter member too small for the
        network the header declares, before anything of that size is
        allocated; what a deflated member may expand to is bounded by that
        size (members compressed otherwise than by deflate are refused), and
        the parameters are read into the model's own vector.

        Parameters
        ----------
        path : str, os.PathLike or binary file object

        Raises
        ------
        ValueError
            When the file is not a complete, well-formed fastbp model.
        FileNotFoundError
            When ``path`` does not exist.
        """

        def unfilled_model(header):
            network = Network(header["layers"], header["activation"], header["loss"], DTYPES[header["dtype"]])
            return cls._unfilled(network, header.get("seed"), header.get("init", "auto"), header.get("dropout", 0.0))

        try:
            return read_model_file(path, unfilled_model)
        except LOAD_ERRORS as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{path!s} is not a valid fastbp model file: {exc}") from None

    def summary(self, print_fn=print):
        """A table of the layers: widths, activation, dropout and parameters, with the total.

        Parameters
        ----------
        print_fn : callable or None, default print
            Receives the table; None to only return it.

        Returns
        -------
        str
        """
        rows = [("layer", "in", "out", "activation", "dropout", "parameters")]
        acts = self.activations + ["identity"]
        drops = self.dropout + [0.0]
        for l, (fan_in, fan_out) in enumerate(zip(self.layers[:-1], self.layers[1:])):
            rows.append((f"{l + 1}{' (output)' if l == len(acts) - 1 else ''}", str(fan_in), str(fan_out), acts[l],
                         f"{drops[l]:g}" if drops[l] else "-", f"{fan_in * fan_out + fan_out:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) if i in (0, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        rule = "-" * len(lines[0])
        text = "\n".join([f"MLP, loss {self.loss}, {self.dtype.name}", rule, lines[0], rule, *lines[1:], rule,
                          f"total parameters: {self.n_params:,}"])
        if print_fn is not None:
            print_fn(text)
        return text

    def __repr__(self):
        return (f"MLP({self.layers}, activation={self.activations!r}, loss={self.loss!r}, "
                f"dtype=np.{self.dtype.name}, seed={self.seed!r})")
