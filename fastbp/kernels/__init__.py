"""fastbp's compiled kernels: the public, embeddable API.

The three hot loops of back-propagation are plain ``@njit`` functions that a
user's own ``@njit`` code can call (inputs first, preallocated outputs
last, nothing returned, nothing allocated):

- :func:`dense_forward` ``(X, W, b, act, Z, A)``: ``Z = X @ W + b``, ``A = act(Z)``
- :func:`backprop_delta` ``(D_next, W_next, Z, A, act, D)``: ``D = (D_next @ W_next.T) * act'(Z)``
- :func:`weight_gradient` ``(A_prev, D, gW, gb)``: ``gW = A_prev.T @ D``, ``gb = D.sum(0)``

For sparse input, :func:`sparse_dense_forward` and :func:`sparse_weight_gradient`
are the first layer's two kernels on a CSR matrix (``indptr, indices, data``
and the rows to use).

Each has a ``*_parallel`` variant compiled from the same body (but the
sparse weight gradient, which scatters). Activations
are the integer codes below; :data:`ACTIVATIONS` maps names to codes. Nothing
here knows about the model classes.

Modules: :mod:`.layout` (the codes and indices shared with host code),
:mod:`.dense` (the three kernels), :mod:`.checks` (their argument checks:
misuse raises a one-line ``TypeError`` or ``ValueError``), :mod:`.driver` (whole epochs),
:mod:`.activations`, :mod:`.losses`, :mod:`.updates` (the math they fuse),
:mod:`.fastmath` and :mod:`.views` (helpers), :mod:`.compile` and
:mod:`.threads` (how they are compiled and threaded), and the CUDA package
:mod:`.cuda`, imported only when asked for.
"""

from .activations import activation_derivative, activation_value
from .dense import (
    backprop_delta,
    backprop_delta_parallel,
    dense_forward,
    dense_forward_parallel,
    weight_gradient,
    weight_gradient_parallel,
)
from .layout import (
    ACTIVATIONS,
    BINARY_CROSS_ENTROPY,
    ELU,
    GELU,
    IDENTITY,
    LEAKY_RELU,
    LOSSES,
    MSE,
    POISSON,
    RELU,
    SIGMOID,
    SOFTMAX_CROSS_ENTROPY,
    SOFTPLUS,
    TANH,
)
from .sparse import sparse_dense_forward, sparse_dense_forward_parallel, sparse_weight_gradient
from .threads import configure_threading

__all__ = [
    "ACTIVATIONS",
    "BINARY_CROSS_ENTROPY",
    "ELU",
    "GELU",
    "IDENTITY",
    "LEAKY_RELU",
    "LOSSES",
    "MSE",
    "POISSON",
    "RELU",
    "SIGMOID",
    "SOFTMAX_CROSS_ENTROPY",
    "SOFTPLUS",
    "TANH",
    "activation_derivative",
    "activation_value",
    "backprop_delta",
    "backprop_delta_parallel",
    "configure_threading",
    "dense_forward",
    "dense_forward_parallel",
    "sparse_dense_forward",
    "sparse_dense_forward_parallel",
    "sparse_weight_gradient",
    "weight_gradient",
    "weight_gradient_parallel",
]
