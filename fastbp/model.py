"""The multilayer perceptron: construction, training, prediction, saving."""

import numbers
import time
import warnings

import numpy as np

from . import training
from ._validation import as_penalty, as_sample_weight
from .fitting import EarlyStopping, check_fit_arguments, new_history, progress_line
from .network import Network
from .optim import Adam
from .persistence import DTYPES, LOAD_ERRORS, read_model_file, write_model_file
from .reference import loss_value, sigmoid, softmax


class DivergedError(FloatingPointError):
    """Training produced a non-finite loss; the model keeps its last finite weights.

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
    loss : {"mse", "binary_cross_entropy", "softmax_cross_entropy"}, default "mse"
        The loss applies the sigmoid (binary cross-entropy) or softmax itself.
    dtype : {numpy.float32, numpy.float64}, default numpy.float32
        Parameter and computation dtype.
    seed : int or None, default None
        Seeds the initial weights and the shuffling, so runs can be reproduced.
    init : {"auto", "glorot_uniform", "he_uniform"}, default "auto"
        ``auto`` is He-uniform for the ReLU family and Glorot-uniform otherwise.

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

    def __init__(self, layers, activation="relu", loss="mse", dtype=np.float32, seed=None, init="auto"):
        network = Network(layers, activation, loss, dtype)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise TypeError(f"seed must be a non-negative int or None, got {seed!r}")
        self.seed = seed
        self.init = init
        self.optimizer = None
        self._rng = np.random.default_rng(seed)
        self.theta = network.initial_params(init, self._rng)
        self.network = network

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
            restore_best_weights=True, sample_weight=None, l2=0.0):
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
        optimizer : Optimizer, optional
            Defaults to the optimizer of the previous ``fit`` (its state
            continues), or a new :class:`~fastbp.Adam` on the first call.
        shuffle : bool, default True
            Visit samples in a new random order each epoch, drawn from the
            model's seeded generator. ``False`` takes minibatches in order.
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
        verbose : bool, default False
            Print one line per epoch: loss, metrics and samples per second.
        callbacks : sequence of callables, optional
            Each is called as ``callback(epoch, logs)`` after every epoch with
            that epoch's figures; returning ``True`` stops training.
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

        Returns
        -------
        dict
            ``"loss"`` (mean training loss per epoch, with the ``l2`` penalty), ``"accuracy"`` for
            classification, ``"val_loss"``/``"val_accuracy"`` with validation
            data, ``"samples_per_second"``, and ``"backend"`` (the resolved name).

        Raises
        ------
        DivergedError
            When the loss becomes non-finite (without early stopping); the
            model keeps the weights from before the diverging epoch.
        """
        X, T = self.network.check_data(X, y)
        sw = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        l2 = as_penalty("l2", l2)
        val, epochs, batch_size, callbacks, patience = check_fit_arguments(
            self.network, validation_data, epochs, batch_size, backend, optimizer, callbacks, patience, min_delta)
        stopper = EarlyStopping(patience, min_delta, restore_best_weights, "val_loss" if val is not None else "loss")
        rows = min(batch_size, X.shape[0])  # a minibatch never holds more than n rows, so neither do the workspaces
        resolved = training.choose_backend(backend, self.layers, rows)
        opt = optimizer or self.optimizer or Adam()
        opt.bind(self.n_params, self.dtype)
        trainer = training.make_trainer(resolved, self.network, self.theta, opt, rows, l2)
        self.optimizer = opt
        history = new_history(resolved, classify=self.loss != "mse", validation=val is not None)
        on_device = getattr(trainer, "on_device", False)
        n = X.shape[0]
        for ep in range(epochs):
            order = self._rng.permutation(n) if shuffle else np.arange(n)
            if not on_device:  # a device trainer keeps its own copy and restores it after a divergence
                theta_before, state_before = self.theta.copy(), opt.state_copy()
            t0 = time.perf_counter()
            loss, acc, diverged = trainer.run_epoch(X, T, order, sw)
            seconds = time.perf_counter() - t0
            if on_device and (diverged or val is not None or callbacks or stopper.active):
                trainer.fetch()  # these need the weights on the host
            if diverged or not np.all(np.isfinite(self.theta)):
                if not on_device:
                    self.theta[...] = theta_before
                    opt.restore_state(state_before)
                message = (f"training diverged in epoch {ep + 1}: the loss became non-finite; the weights from "
                           "before that epoch were kept. Try a smaller learning rate.")
                if not stopper.active:
                    raise DivergedError(message, history)
                warnings.warn(message, RuntimeWarning, stacklevel=2)
                break
            logs = self._epoch_logs(loss, acc, val, n / seconds if seconds > 0 else float("inf"))
            for key, value in logs.items():
                history[key].append(value)
            if verbose:
                print(progress_line(ep + 1, epochs, logs), flush=True)
            stop = any([cb(ep, dict(logs)) is True for cb in callbacks])  # every callback runs
            if stopper.update(logs, self.theta, opt) or stop:
                break
        if on_device:
            trainer.fetch()
        stopper.restore(self.theta, opt)
        return history

    def _epoch_logs(self, loss, acc, val, samples_per_second):
        """One epoch's figures, in the order the history and the progress line show them."""
        logs = {"loss": loss}
        if self.loss != "mse":
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
        """
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
        """Class probabilities (softmax / sigmoid) for the cross-entropy losses, values for mse.

        Returns
        -------
        ndarray, shape (n, k)
        """
        Z = self.decision_function(X)
        if self.loss == "softmax_cross_entropy":
            return softmax(Z)
        if self.loss == "binary_cross_entropy":
            return sigmoid(Z)
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
        if self.loss != "mse":
            result["accuracy"] = training.correct_count(self.loss, Z, T) / (X.shape[0] * self.network.row_divisor)
        return result

    # ------------------------------------------------------------- save/load
    def save(self, path):
        """Write the model to ``path`` as an ``.npz``: the flat parameters plus a JSON header.

        The optimizer state is not saved.
        """
        header = {"layers": self.layers, "activation": self.activations, "loss": self.loss,
                  "dtype": self.dtype.name, "init": self.init, "seed": self.seed}
        write_model_file(path, header, self.theta)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`. Never unpickles.

        The file must be a zip holding exactly ``header.npy`` (the JSON header
        as bytes) and ``theta.npy`` (the flat parameters). The header is read
        and checked first, so a header that claims an enormous network is
        refused before anything of that size is allocated.

        Raises
        ------
        ValueError
            When the file is not a complete, well-formed fastbp model.
        FileNotFoundError
            When ``path`` does not exist.
        """
        try:
            header, theta = read_model_file(path)
            model = cls(header["layers"], activation=header["activation"], loss=header["loss"],
                        dtype=DTYPES[header["dtype"]], seed=header.get("seed"), init=header.get("init", "auto"))
        except LOAD_ERRORS as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{path!s} is not a valid fastbp model file: {exc}") from None
        model.theta[...] = theta
        return model

    def __repr__(self):
        return (f"MLP({self.layers}, activation={self.activations!r}, loss={self.loss!r}, "
                f"dtype=np.{self.dtype.name}, seed={self.seed!r})")
