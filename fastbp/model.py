"""The multilayer perceptron: construction, training, prediction, saving."""

import json
import lzma
import numbers
import struct
import time
import warnings
import zipfile
import zlib

import numpy as np

from . import training
from ._validation import as_features, as_penalty, as_positive_int, as_sample_weight, as_targets
from .kernels import epoch
from .kernels.activations import ACTIVATIONS, IDENTITY
from .kernels.losses import LOSSES, row_divisor
from .optim import Adam, Optimizer
from .params import INITS, initial_params, layer_table, unflatten, workspace_width
from .reference import loss_value, sigmoid, softmax

_FORMAT = "fastbp-mlp"
_FORMAT_VERSION = 1
_DTYPES = {"float32": np.float32, "float64": np.float64}
_PREDICT_BLOCK = 1024
_MAX_HEADER_BYTES = 1 << 20  # the JSON header of a saved model is a few hundred bytes
# RuntimeError: zipfile refuses encrypted members (and, as NotImplementedError, unknown compression);
# json.loads gives up on deep nesting (RecursionError)
_LOAD_ERRORS = (OSError, EOFError, KeyError, TypeError, ValueError, OverflowError, RuntimeError, struct.error,
                zlib.error, lzma.LZMAError, zipfile.BadZipFile)


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
        sizes = _check_layers(layers)
        act_names = _check_activations(activation, len(sizes) - 2)
        if not isinstance(loss, str) or loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; expected one of {list(INITS)}")
        self.dtype = _check_dtype(dtype)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise TypeError(f"seed must be a non-negative int or None, got {seed!r}")
        self.layers = sizes
        self.activations = act_names
        self.loss = loss
        self.seed = seed
        self.init = init
        self.optimizer = None
        self._act_codes = [ACTIVATIONS[a] for a in act_names] + [IDENTITY]
        self._loss_code = LOSSES[loss]
        self._rng = np.random.default_rng(seed)
        self.theta = initial_params(sizes, self._act_codes, init, self._rng, self.dtype)

    # ----------------------------------------------------------------- weights
    @property
    def n_params(self):
        """Number of trainable parameters (weights and biases)."""
        return self.theta.shape[0]

    def get_weights(self):
        """Copies of the weights and biases.

        Returns
        -------
        Ws : list of ndarray
            ``W`` of each layer, shaped ``(fan_in, fan_out)``.
        bs : list of ndarray
            ``b`` of each layer, shaped ``(fan_out,)``.
        """
        Ws, bs = unflatten(self.theta, self.layers)
        return [W.copy() for W in Ws], [b.copy() for b in bs]

    def set_weights(self, Ws, bs):
        """Replace the weights and biases; shapes and dtypes must match :meth:`get_weights`.

        Parameters
        ----------
        Ws, bs : sequence of ndarray
            As returned by :meth:`get_weights`. Arrays must have exactly the
            model's dtype and be finite.
        """
        own_Ws, own_bs = unflatten(self.theta, self.layers)
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
        X, T = self._check_data(X, y)
        sw = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        l2 = as_penalty("l2", l2)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a pair (X_val, y_val)")
            val = self._check_data(*validation_data, what="validation ")
        epochs = as_positive_int("epochs", epochs)
        batch_size = as_positive_int("batch_size", batch_size)
        if backend not in training.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; expected one of {list(training.BACKENDS)}")
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a fastbp optimizer (SGD, Adam, AdamW), got {optimizer!r}")
        callbacks = list(callbacks or [])
        if not all(callable(cb) for cb in callbacks):
            raise TypeError("callbacks must be callables taking (epoch, logs)")
        if patience is not None:
            patience = as_positive_int("patience", patience)
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) or not min_delta >= 0:
            raise ValueError(f"min_delta must be a real number >= 0, got {min_delta!r}")

        # A minibatch never holds more than n rows, so neither do the workspaces.
        rows = min(batch_size, X.shape[0])
        resolved = training.choose_backend(backend, self.layers, rows)
        opt = optimizer or self.optimizer or Adam()
        opt.bind(self.n_params, self.dtype)
        trainer = training.make_trainer(resolved, self.layers, self._act_codes, self._loss_code, self.theta, opt,
                                        rows, l2)
        self.optimizer = opt
        classify = self.loss != "mse"
        history = {"loss": [], "samples_per_second": [], "backend": resolved}
        if classify:
            history["accuracy"] = []
        if val is not None:
            history["val_loss"] = []
            if classify:
                history["val_accuracy"] = []
        monitor = "val_loss" if val is not None else "loss"
        on_device = getattr(trainer, "on_device", False)
        best, best_theta, best_state, waited = np.inf, None, None, 0
        n = X.shape[0]
        for ep in range(epochs):
            order = self._rng.permutation(n) if shuffle else np.arange(n)
            if not on_device:  # a device trainer keeps its own copy and restores it after a divergence
                theta_before, state_before = self.theta.copy(), opt.state_copy()
            t0 = time.perf_counter()
            loss, acc, diverged = trainer.run_epoch(X, T, order, sw)
            seconds = time.perf_counter() - t0
            if on_device and (diverged or val is not None or callbacks or patience is not None):
                trainer.fetch()  # these need the weights on the host
            if diverged or not np.all(np.isfinite(self.theta)):
                if not on_device:
                    self.theta[...] = theta_before
                    opt.restore_state(state_before)
                message = (f"training diverged in epoch {ep + 1}: the loss became non-finite; the weights from "
                           "before that epoch were kept. Try a smaller learning rate.")
                if patience is None:
                    raise DivergedError(message, history)
                warnings.warn(message, RuntimeWarning, stacklevel=2)
                break
            logs = {"loss": loss}
            if classify:
                logs["accuracy"] = acc
            if val is not None:
                logs.update({"val_" + k: v for k, v in self._metrics(*val).items()})
            logs["samples_per_second"] = n / seconds if seconds > 0 else float("inf")
            for key, value in logs.items():
                history[key].append(value)
            if verbose:
                print(_progress_line(ep + 1, epochs, logs), flush=True)
            stop = any([cb(ep, dict(logs)) is True for cb in callbacks])  # every callback runs
            if patience is not None:
                if logs[monitor] < best - min_delta:
                    best, waited = logs[monitor], 0
                    if restore_best_weights:
                        best_theta, best_state = self.theta.copy(), opt.state_copy()
                else:
                    waited += 1
                    stop = stop or waited >= patience
            if stop:
                break
        if on_device:
            trainer.fetch()
        if best_theta is not None:
            self.theta[...] = best_theta
            opt.restore_state(best_state)
        return history

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
        X, T = self._check_data(X, y)
        sw = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        l2 = as_penalty("l2", l2)
        rows = X.shape[0]
        width = workspace_width(self.layers, rows)
        bufs = [np.empty(width, dtype=self.dtype) for _ in range(3)]
        grad = np.empty_like(self.theta)
        table = layer_table(self.layers, self._act_codes, rows)
        sw = np.zeros(0, dtype=self.dtype) if sw is None else sw
        loss, _ = epoch.loss_and_grad(X, T, sw, self.theta, table, self._loss_code, l2, *bufs, grad)
        gWs, gbs = unflatten(grad, self.layers)
        return float(loss), gWs, gbs

    # -------------------------------------------------------------- inference
    def decision_function(self, X):
        """The output layer's pre-activations (logits for the cross-entropy losses), shape ``(n, k)``."""
        X = as_features(X, self.layers[0], self.dtype)
        block = min(_PREDICT_BLOCK, X.shape[0])
        width = workspace_width(self.layers, block)
        zbuf, abuf = np.empty(width, dtype=self.dtype), np.empty(width, dtype=self.dtype)
        out = np.empty((X.shape[0], self.layers[-1]), dtype=self.dtype)
        epoch.predict_raw(X, self.theta, layer_table(self.layers, self._act_codes, block), block, zbuf, abuf, out)
        return out

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
        return self._metrics(*self._check_data(X, y))

    def _metrics(self, X, T):
        Z = self.decision_function(X)
        result = {"loss": loss_value(self.loss, Z, T)}
        if self.loss != "mse":
            per_row = row_divisor(self._loss_code, T.shape[1])
            result["accuracy"] = training.correct_count(self.loss, Z, T) / (X.shape[0] * per_row)
        return result

    def _check_data(self, X, y, what=""):
        X = as_features(X, self.layers[0], self.dtype, what)
        T = as_targets(y, X.shape[0], self.layers[-1], self.loss, self.dtype, what)
        return X, T

    # ------------------------------------------------------------- save/load
    def save(self, path):
        """Write the model to ``path`` as an ``.npz``: the flat parameters plus a JSON header.

        The optimizer state is not saved.
        """
        header = {"format": _FORMAT, "version": _FORMAT_VERSION, "layers": self.layers,
                  "activation": self.activations, "loss": self.loss, "dtype": np.dtype(self.dtype).name,
                  "init": self.init, "seed": self.seed}
        blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        with open(path, "wb") as f:
            np.savez(f, header=blob, theta=self.theta)

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
            header, theta = _read_model_file(path)
            model = cls(header["layers"], activation=header["activation"], loss=header["loss"],
                        dtype=_DTYPES[header["dtype"]], seed=header.get("seed"), init=header.get("init", "auto"))
        except _LOAD_ERRORS as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{path!s} is not a valid fastbp model file: {exc}") from None
        model.theta[...] = theta
        return model

    def __repr__(self):
        return (f"MLP({self.layers}, activation={self.activations!r}, loss={self.loss!r}, "
                f"dtype=np.{np.dtype(self.dtype).name}, seed={self.seed!r})")


def _check_layers(layers):
    try:
        sizes = list(layers)
    except TypeError:
        raise TypeError(f"layers must be a sequence of ints, got {layers!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"layers needs at least an input and an output width, got {sizes}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
            raise ValueError(f"layer widths must be positive ints, got {sizes}")
    return [int(s) for s in sizes]


def _check_activations(activation, n_hidden):
    names = [activation] * n_hidden if isinstance(activation, str) else activation
    try:
        names = list(names)
    except TypeError:
        raise TypeError(f"activation must be a name or a list of names, got {activation!r}") from None
    if len(names) != n_hidden:
        raise ValueError(f"expected {n_hidden} hidden-layer activations, got {len(names)}")
    for a in names:
        if not isinstance(a, str) or a not in ACTIVATIONS:
            raise ValueError(f"unknown activation {a!r}; expected one of {sorted(ACTIVATIONS)}")
    if isinstance(activation, str) and n_hidden == 0 and activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    return names


def _check_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dt}")
    return dt


def _read_model_file(path):
    """The checked header dict and parameter vector of a saved model; errors for anything else."""
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        if names != ["header.npy", "theta.npy"]:
            raise ValueError(f"expected arrays 'header' and 'theta', found {names}")
        blob = _read_npy_member(archive, "header.npy", np.dtype(np.uint8), max_items=_MAX_HEADER_BYTES)
        try:
            header = json.loads(blob.tobytes().decode("utf-8"))
        except RecursionError:
            raise ValueError("the header is nested too deeply to be a fastbp header") from None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise ValueError("the header does not describe a fastbp MLP")
        if header.get("version") != _FORMAT_VERSION:
            raise ValueError(f"unsupported format version {header.get('version')!r}")
        dtype = header.get("dtype")
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise ValueError(f"unsupported dtype {dtype!r}")
        for key in ("layers", "activation", "loss"):
            if key not in header:
                raise ValueError(f"the header has no {key!r}")
        sizes = _check_layers(header["layers"])
        n_params = sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))
        theta = _read_npy_member(archive, "theta.npy", np.dtype(_DTYPES[dtype]), shape=(n_params,))
    if not np.all(np.isfinite(theta)):
        raise ValueError("the parameters contain NaN or Inf")
    return header, theta


def _read_npy_member(archive, name, dtype, shape=None, max_items=None):
    """A 1-D ``.npy`` member of ``dtype``: its header is checked before any data is read or allocated."""
    with archive.open(name) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            got_shape, _, got_dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            got_shape, _, got_dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"{name}: unsupported .npy version {version}")
        if got_dtype != dtype:
            raise ValueError(f"{name}: expected dtype {dtype}, got {got_dtype}")
        if len(got_shape) != 1 or (shape is not None and got_shape != shape):
            raise ValueError(f"{name}: expected shape {shape or '(n,)'}, got {got_shape}")
        if max_items is not None and got_shape[0] > max_items:
            raise ValueError(f"{name}: {got_shape[0]} items is more than the {max_items} allowed")
        nbytes = got_shape[0] * dtype.itemsize
        data = f.read(nbytes + 1)  # reading to the end makes zipfile check the CRC
    if len(data) != nbytes:
        raise ValueError(f"{name}: expected {nbytes} bytes of data, got {'more' if len(data) > nbytes else len(data)}")
    return np.frombuffer(data, dtype=dtype).copy()


def _progress_line(ep, epochs, logs):
    parts = [f"epoch {ep:>{len(str(epochs))}}/{epochs}"]
    for key, value in logs.items():
        if key == "samples_per_second":
            parts.append(f"{value:,.0f} samples/s")
        else:
            parts.append(f"{key} {value:.4f}")
    return "  ".join(parts)
