"""fastbp's compiled kernels: the public, embeddable API.

The three hot loops of back-propagation are plain ``@njit`` functions that a
user's own ``@njit`` code can call (inputs first, preallocated outputs
last, nothing returned, nothing allocated):

- :func:`dense_forward` ``(X, W, b, act, Z, A)``: ``Z = X @ W + b``, ``A = act(Z)``
- :func:`backprop_delta` ``(D_next, W_next, Z, A, act, D)``: ``D = (D_next @ W_next.T) * act'(Z)``
- :func:`weight_gradient` ``(A_prev, D, gW, gb)``: ``gW = A_prev.T @ D``, ``gb = D.sum(0)``

Each has a ``*_parallel`` twin compiled from the same body. Activations are
the integer codes below; :data:`ACTIVATIONS` maps names to codes. Nothing
here knows about the model classes.
"""

from .._config import configure_threading
from .activations import (
    ACTIVATIONS,
    ELU,
    GELU,
    IDENTITY,
    LEAKY_RELU,
    RELU,
    SIGMOID,
    SOFTPLUS,
    TANH,
    activation_derivative,
    activation_value,
)
from .cpu import (
    backprop_delta,
    backprop_delta_parallel,
    dense_forward,
    dense_forward_parallel,
    weight_gradient,
    weight_gradient_parallel,
)
from .losses import BINARY_CROSS_ENTROPY, LOSSES, MSE, SOFTMAX_CROSS_ENTROPY

__all__ = [
    "ACTIVATIONS",
    "BINARY_CROSS_ENTROPY",
    "ELU",
    "GELU",
    "IDENTITY",
    "LEAKY_RELU",
    "LOSSES",
    "MSE",
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
    "weight_gradient",
    "weight_gradient_parallel",
]
