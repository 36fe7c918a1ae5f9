"""The description of a network: its widths, activations, loss and dtype, and its flat parameter layout.

All weights and biases of a network live in one contiguous vector ``theta``:
layer ``l`` stores its weights ``W`` row-major as ``(fan_in, fan_out)``
followed by its bias ``b``. Gradients and optimizer state use the same
layout, so saving, gradient checking and optimizer updates are single loops
over a vector, and per-layer arrays are views of it. :class:`Network` knows
that layout and everything else the trainers, the compiled drivers and the
tools around the model need to know about a network.
"""

import numbers

import numpy as np

from ._validation import as_features, as_targets
from .kernels.dense import backward_product
from .kernels.layout import (
    ACT,
    ACTIVATIONS,
    B_OFF,
    BACKWARD,
    D_IN,
    D_OUT,
    ELU,
    GELU,
    IDENTITY,
    LEAKY_RELU,
    LOSSES,
    N_COLS,
    RELU,
    SOFTPLUS,
    W_OFF,
    WS_OFF,
    row_divisor,
)
from .kernels.threads import blas_has_small_matrix_kernels
from .sparse_input import CSRInput, is_sparse

INITS = ("auto", "glorot_uniform", "he_uniform")
_RELU_FAMILY = (RELU, LEAKY_RELU, ELU, SOFTPLUS, GELU)


class Network:
    """The architecture of a multilayer perceptron and the layout of its flat parameter vector.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first and output last.
    activation : str or sequence of str
        Hidden-layer activation: one name for every hidden layer, or one per
        hidden layer (names as in :data:`fastbp.kernels.ACTIVATIONS`). The
        output layer is linear.
    loss : str
        A name in :data:`fastbp.kernels.LOSSES`.
    dtype : numpy.float32 or numpy.float64

    Attributes
    ----------
    sizes : list of int
    activations : list of str
        One name per hidden layer.
    loss : str
    dtype : numpy.dtype
    act_codes : list of int
        One activation code per weight layer; the output layer's is ``IDENTITY``.
    loss_code : int
    weight_offsets, bias_offsets : list of int
        Where each layer's ``W`` and ``b`` start in the flat vector.
    n_params : int

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp.network import Network
    >>> net = Network([3, 4, 2], "tanh", "softmax_cross_entropy", np.float64)
    >>> net.n_params, net.weight_offsets, net.bias_offsets
    (26, [0, 16], [12, 24])
    >>> Ws, bs = net.unflatten(np.arange(26.0))
    >>> Ws[1].shape, bs[1]
    ((4, 2), array([24., 25.]))
    """

    def __init__(self, sizes, activation, loss, dtype):
        self.sizes = check_sizes(sizes)
        self.activations = _check_activations(activation, len(self.sizes) - 2)
        if not isinstance(loss, str) or loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
        self.loss = loss
        self.dtype = check_dtype(dtype)
        self.act_codes = [ACTIVATIONS[a] for a in self.activations] + [IDENTITY]
        self.loss_code = LOSSES[loss]
        self.weight_offsets, self.bias_offsets = [], []
        off = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            self.weight_offsets.append(off)
            off += fan_in * fan_out
            self.bias_offsets.append(off)
            off += fan_out
        self.n_params = off

    @property
    def n_inputs(self):
        """Width of the input layer."""
        return self.sizes[0]

    @property
    def n_outputs(self):
        """Width of the output layer."""
        return self.sizes[-1]

    @property
    def row_divisor(self):
        """How many values each row's loss is averaged over (see :func:`fastbp.kernels.layout.row_divisor`)."""
        return row_divisor(self.loss_code, self.n_outputs)

    def layer_table(self, rows):
        """The int64 layer table the compiled drivers read (its columns: :mod:`fastbp.kernels.layout`).

        Parameters
        ----------
        rows : int
            Rows per workspace chunk; sets each layer's workspace offset and,
            with the BLAS found, how its backward product runs
            (:func:`fastbp.kernels.dense.backward_product`).

        Returns
        -------
        ndarray of int64, shape (L, N_COLS)
        """
        table = np.zeros((len(self.sizes) - 1, N_COLS), dtype=np.int64)
        small_matrix_blas = blas_has_small_matrix_kernels()
        ws = 0
        for l in range(len(self.sizes) - 1):
            table[l, D_IN] = self.sizes[l]
            table[l, D_OUT] = self.sizes[l + 1]
            table[l, W_OFF] = self.weight_offsets[l]
            table[l, B_OFF] = self.bias_offsets[l]
            table[l, ACT] = self.act_codes[l]
            table[l, WS_OFF] = ws
            if l > 0:  # the first layer has no backward product
                table[l, BACKWARD] = backward_product(rows, self.sizes[l], self.sizes[l + 1], small_matrix_blas)
            ws += rows * self.sizes[l + 1]
        return table

    def transposed_width(self):
        """Elements of the drivers' transposed-weights workspace: ``theta`` from the second layer's weights on.

        (See :func:`fastbp.kernels.driver.transpose_weights`; a network of
        one layer needs none.)
        """
        return self.n_params - self.weight_offsets[1] if len(self.weight_offsets) > 1 else 0

    def workspace_width(self, rows):
        """Elements of one chunk's Z/A/D workspace row for ``rows`` samples."""
        return rows * int(sum(self.sizes[1:]))

    def unflatten(self, vector):
        """Per-layer ``(Ws, bs)`` views of a flat vector (parameters, gradients or state)."""
        Ws = [vector[w:w + i * o].reshape(i, o)
              for w, i, o in zip(self.weight_offsets, self.sizes[:-1], self.sizes[1:])]
        bs = [vector[b:b + o] for b, o in zip(self.bias_offsets, self.sizes[1:])]
        return Ws, bs

    def initial_params(self, init, rng):
        """A freshly initialised flat parameter vector; biases start at zero.

        ``init="auto"`` uses He-uniform, ``U(-sqrt(6/fan_in), sqrt(6/fan_in))``, for
        layers followed by an activation of the ReLU family (relu, leaky_relu, elu,
        softplus, gelu) and Glorot-uniform, ``U(-sqrt(6/(fan_in+fan_out)), ...)``,
        for the rest (tanh, sigmoid, and the linear output layer).

        Parameters
        ----------
        init : {"auto", "glorot_uniform", "he_uniform"}
        rng : numpy.random.Generator

        Returns
        -------
        ndarray, shape (n_params,)
        """
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; expected one of {list(INITS)}")
        theta = np.zeros(self.n_params, dtype=self.dtype)
        Ws, _ = self.unflatten(theta)
        for W, code in zip(Ws, self.act_codes):
            fan_in, fan_out = W.shape
            scheme = init
            if scheme == "auto":
                scheme = "he_uniform" if code in _RELU_FAMILY else "glorot_uniform"
            if scheme == "he_uniform":
                limit = np.sqrt(6.0 / fan_in)
            else:
                limit = np.sqrt(6.0 / (fan_in + fan_out))
            W[...] = rng.uniform(-limit, limit, size=W.shape)
        return theta

    def check_features(self, X, what=""):
        """Inputs as a C-contiguous, finite ``(n, n_inputs)`` array of the network's dtype, or a clear error.

        A SciPy sparse matrix (CSR, or another format, converted) becomes a
        :class:`~fastbp.sparse_input.CSRInput`, which the first layer reads
        without densifying it.
        """
        if isinstance(X, CSRInput) and X.dtype == self.dtype and X.shape[1] == self.n_inputs:
            return X
        if is_sparse(X):
            return CSRInput.from_scipy(X, self.n_inputs, self.dtype, what)
        return as_features(X, self.n_inputs, self.dtype, what)

    def check_data(self, X, y, what=""):
        """Inputs and targets as the trainers take them: ``(X, T)`` with ``T`` as ``(n, n_outputs)`` rows.

        Parameters
        ----------
        X : array_like, shape (n, n_inputs)
        y : array_like
            Targets in any form :meth:`fastbp.MLP.fit` accepts.
        what : str, default ""
            A prefix for error messages (``"validation "``).

        Returns
        -------
        X : ndarray, shape (n, n_inputs)
        T : ndarray, shape (n, n_outputs)
        """
        X = self.check_features(X, what)
        T = as_targets(y, X.shape[0], self.n_outputs, self.loss, self.dtype, what)
        return X, T

    def __repr__(self):
        return (f"Network({self.sizes}, activation={self.activations!r}, loss={self.loss!r}, "
                f"dtype=np.{self.dtype.name})")


def check_sizes(layers):
    """``layers`` as a list of positive ints (at least two), or a clear error."""
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


def per_hidden_layer(value, n_hidden, is_one, type_message, count_message):
    """``value`` as a list of one entry per hidden layer: repeated when ``is_one(value)``, else listed as given.

    ``type_message`` is the ``TypeError`` for a value that is neither;
    ``count_message`` (formatted with ``n_hidden`` and ``got``) the
    ``ValueError`` for a list of the wrong length.
    """
    if is_one(value):
        return [value] * n_hidden
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        values = list(value)
    except TypeError:
        raise TypeError(type_message) from None
    if len(values) != n_hidden:
        raise ValueError(count_message.format(n_hidden=n_hidden, got=len(values)))
    return values


def _check_activations(activation, n_hidden):
    names = per_hidden_layer(activation, n_hidden, lambda v: isinstance(v, str),
                             f"activation must be a name or a list of names, got {activation!r}",
                             "expected {n_hidden} hidden-layer activations, got {got}")
    for a in names:
        if not isinstance(a, str) or a not in ACTIVATIONS:
            raise ValueError(f"unknown activation {a!r}; expected one of {sorted(ACTIVATIONS)}")
    if isinstance(activation, str) and n_hidden == 0 and activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    return names


def check_dtype(dtype):
    """``dtype`` as ``numpy.dtype('float32')`` or ``numpy.dtype('float64')``, or a ``TypeError``.

    ``None`` is refused too, although ``numpy.dtype(None)`` is float64: a
    missing dtype is more likely a mistake than a request for float64.
    """
    if dtype is None:
        raise TypeError("dtype must be numpy.float32 or numpy.float64, got None")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dt}")
    return dt
