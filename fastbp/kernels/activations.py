"""Activation functions and their derivatives, as njit helpers (their codes are in :mod:`.layout`).

Each activation follows the ``torch.nn`` module of the same name with default
settings: ``LeakyReLU(0.01)``, ``ELU(alpha=1)``, ``Softplus(beta=1,
threshold=20)`` and ``GELU(approximate="tanh")``. Derivatives match PyTorch's
backward at the kinks too: ReLU has slope 0 at 0, LeakyReLU slope 0.01.

A derivative reads the pre-activation ``z`` or the output ``a``, whichever is
cheaper without losing precision: sigmoid, tanh and relu use ``a``; GELU,
softplus, leaky relu and ELU use ``z`` (ELU's ``a + 1`` would cancel to 0 for
very negative ``z``, where PyTorch's ``exp(z)`` does not).

``exp`` and ``tanh`` come from :mod:`fastbp.kernels.fastmath`: vectorisable
arithmetic for float32, the C library's for float64.
``expm1`` (ELU) and ``log1p`` (softplus) are the C library's.
"""

import math

from numba import types
from numba.extending import overload

from .compile import jit
from .fastmath import fast_exp, fast_tanh
from .layout import ELU, GELU, IDENTITY, LEAKY_RELU, RELU, SIGMOID, SOFTPLUS, TANH
from .views import flat_view

LEAKY_SLOPE = 0.01
SOFTPLUS_THRESHOLD = 20.0
GELU_K = math.sqrt(2.0 / math.pi)
GELU_C = 0.044715


def like(x, value):
    """Return ``value`` cast to the float type of ``x`` (a scalar or an array).

    Inside njit code a bare float literal is float64 and silently promotes
    float32 arithmetic; ``like(z, 0.5)`` keeps it float32 for float32 ``z``.
    """
    return value


@overload(like, inline="always")
def _like_overload(x, value):
    target = x.dtype if isinstance(x, types.Array) else x

    def impl(x, value):
        return target(value)

    return impl


# One small function per activation and per derivative holds the math. They are inlined at Numba IR
# level wherever they are called, so the loops below, which call them with the activation fixed, cost
# no separate compilation (dispatching through activation_value with a constant code would compile one
# specialised copy per code, which lengthens the cold start).
@jit(inline="always")
def sigmoid_value(z):
    """``1 / (1 + exp(-z))``."""
    one = like(z, 1.0)
    return one / (one + fast_exp(-z))


@jit(inline="always")
def tanh_value(z):
    """``tanh(z)``."""
    return fast_tanh(z)


@jit(inline="always")
def relu_value(z):
    """``max(z, 0)``; NaN stays NaN, as in torch."""
    zero = like(z, 0.0)
    return zero if z <= zero else z


@jit(inline="always")
def leaky_relu_value(z):
    """``z`` for ``z > 0``, else ``0.01 z``."""
    return z if z > like(z, 0.0) else like(z, LEAKY_SLOPE) * z


@jit(inline="always")
def elu_value(z):
    """``z`` for ``z > 0``, else ``exp(z) - 1``."""
    return z if z > like(z, 0.0) else math.expm1(z)


@jit(inline="always")
def softplus_value(z):
    """``log(1 + exp(z))``, and ``z`` itself above the threshold 20."""
    return z if z > like(z, SOFTPLUS_THRESHOLD) else math.log1p(math.exp(z))


@jit(inline="always")
def gelu_value(z):
    """``z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z**3)))``."""
    inner = like(z, GELU_K) * (z + like(z, GELU_C) * z * z * z)
    return like(z, 0.5) * z * (like(z, 1.0) + fast_tanh(inner))


@jit(inline="always")
def sigmoid_derivative(z, a):
    """``a (1 - a)``."""
    return a * (like(z, 1.0) - a)


@jit(inline="always")
def tanh_derivative(z, a):
    """``1 - a**2``."""
    return like(z, 1.0) - a * a


@jit(inline="always")
def relu_derivative(z, a):
    """1 where ``a > 0``, else 0 (0 at the kink, as in torch)."""
    return like(z, 1.0) if a > like(z, 0.0) else like(z, 0.0)


@jit(inline="always")
def leaky_relu_derivative(z, a):
    """1 for ``z > 0``, else 0.01."""
    return like(z, 1.0) if z > like(z, 0.0) else like(z, LEAKY_SLOPE)


@jit(inline="always")
def elu_derivative(z, a):
    """1 for ``z > 0``, else ``exp(z)`` (not ``a + 1``: that cancels for ``z << 0``)."""
    return like(z, 1.0) if z > like(z, 0.0) else fast_exp(z)


@jit(inline="always")
def softplus_derivative(z, a):
    """``sigmoid(z)``, and 1 above the threshold 20."""
    one = like(z, 1.0)
    return one if z > like(z, SOFTPLUS_THRESHOLD) else one / (one + fast_exp(-z))


@jit(inline="always")
def gelu_derivative(z, a):
    """The derivative of :func:`gelu_value`."""
    one = like(z, 1.0)
    k = like(z, GELU_K)
    c = like(z, GELU_C)
    half = like(z, 0.5)
    t = fast_tanh(k * (z + c * z * z * z))
    return half * (one + t) + half * z * (one - t * t) * k * (one + like(z, 3.0) * c * z * z)


#: The per-activation functions above, by name: what another target (CUDA) recompiles to share the math.
ELEMENTWISE = ("sigmoid_value", "tanh_value", "relu_value", "leaky_relu_value", "elu_value", "softplus_value",
               "gelu_value", "sigmoid_derivative", "tanh_derivative", "relu_derivative", "leaky_relu_derivative",
               "elu_derivative", "softplus_derivative", "gelu_derivative")


@jit
def activation_value(code, z):
    """Return ``f(z)`` for activation ``code`` at the scalar ``z``."""
    if code == SIGMOID:
        return sigmoid_value(z)
    if code == TANH:
        return tanh_value(z)
    if code == RELU:
        return relu_value(z)
    if code == LEAKY_RELU:
        return leaky_relu_value(z)
    if code == ELU:
        return elu_value(z)
    if code == SOFTPLUS:
        return softplus_value(z)
    if code == GELU:
        return gelu_value(z)
    return z


@jit
def activation_derivative(code, z, a):
    """Return ``f'(z)`` for activation ``code``, given ``z`` and ``a = f(z)``."""
    if code == SIGMOID:
        return sigmoid_derivative(z, a)
    if code == TANH:
        return tanh_derivative(z, a)
    if code == RELU:
        return relu_derivative(z, a)
    if code == LEAKY_RELU:
        return leaky_relu_derivative(z, a)
    if code == ELU:
        return elu_derivative(z, a)
    if code == SOFTPLUS:
        return softplus_derivative(z, a)
    if code == GELU:
        return gelu_derivative(z, a)
    return like(z, 1.0)


@jit
def bias_activate(Z, b, A, code, lo, hi):
    """Rows ``lo:hi`` of ``Z += b`` and ``A = f(Z)``; ``A`` may be ``Z`` itself.

    The bias is added row by row; the activation then runs over the block as
    one flat, contiguous range, so its loop is long even when the layer is
    narrow (a per-row loop over a narrow layer leaves most elements to LLVM's
    scalar remainder). The branch on ``code`` sits outside the loops, so
    each loop is straight arithmetic that LLVM vectorises.
    """
    d = Z.shape[1]
    for i in range(lo, hi):
        zi = Z[i]
        for j in range(d):
            zi[j] += b[j]
    size = (hi - lo) * d
    z = flat_view(Z)[lo * d:hi * d]
    a = flat_view(A)[lo * d:hi * d]
    if code == IDENTITY:
        for k in range(size):
            a[k] = z[k]
    elif code == RELU:
        for k in range(size):
            a[k] = relu_value(z[k])
    elif code == TANH:
        for k in range(size):
            a[k] = tanh_value(z[k])
    elif code == SIGMOID:
        for k in range(size):
            a[k] = sigmoid_value(z[k])
    elif code == LEAKY_RELU:
        for k in range(size):
            a[k] = leaky_relu_value(z[k])
    elif code == ELU:
        for k in range(size):
            a[k] = elu_value(z[k])
    elif code == SOFTPLUS:
        for k in range(size):
            a[k] = softplus_value(z[k])
    else:
        for k in range(size):
            a[k] = gelu_value(z[k])


@jit
def scale_by_derivative(d, z, a, code):
    """For 1-D arrays: ``d[k] *= f'(z[k])``, given ``a = f(z)``.

    Loops run from 0 so that Numba can drop its negative-index handling and
    LLVM vectorises them (a loop over ``range(lo, hi)`` stayed scalar).
    """
    n = d.shape[0]
    if code == IDENTITY:
        return
    if code == RELU:
        for k in range(n):
            d[k] *= relu_derivative(z[k], a[k])
    elif code == TANH:
        for k in range(n):
            d[k] *= tanh_derivative(z[k], a[k])
    elif code == SIGMOID:
        for k in range(n):
            d[k] *= sigmoid_derivative(z[k], a[k])
    elif code == LEAKY_RELU:
        for k in range(n):
            d[k] *= leaky_relu_derivative(z[k], a[k])
    elif code == ELU:
        for k in range(n):
            d[k] *= elu_derivative(z[k], a[k])
    elif code == SOFTPLUS:
        for k in range(n):
            d[k] *= softplus_derivative(z[k], a[k])
    else:
        for k in range(n):
            d[k] *= gelu_derivative(z[k], a[k])
