"""Activation functions and their derivatives, as integer codes and njit helpers.

Each activation follows the ``torch.nn`` module of the same name with default
settings: ``LeakyReLU(0.01)``, ``ELU(alpha=1)``, ``Softplus(beta=1,
threshold=20)`` and ``GELU(approximate="tanh")``. Derivatives match PyTorch's
backward at the kinks too: ReLU has slope 0 at 0, LeakyReLU slope 0.01.

A derivative reads the pre-activation ``z`` or the output ``a``, whichever is
cheaper without losing precision: sigmoid, tanh and relu use ``a``; GELU,
softplus, leaky relu and ELU use ``z`` (ELU's ``a + 1`` would cancel to 0 for
very negative ``z``, where PyTorch's ``exp(z)`` does not).

``exp`` and ``tanh`` come from :mod:`fastbp.kernels.fastmath`: vectorisable
arithmetic for float32 (within 5 ulps of NumPy), the C library's for float64.
``expm1`` (ELU) and ``log1p`` (softplus) are the C library's.
"""

import math

from numba import types
from numba.extending import overload

from .._config import jit
from .fastmath import fast_exp, fast_tanh

IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
ELU = 5
SOFTPLUS = 6
GELU = 7

#: Activation names accepted by the model, mapped to their kernel codes.
ACTIVATIONS = {
    "identity": IDENTITY,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
    "softplus": SOFTPLUS,
    "gelu": GELU,
}

#: Activation names by code.
ACTIVATION_NAMES = {code: name for name, code in ACTIVATIONS.items()}

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


@jit
def activation_value(code, z):
    """Return ``f(z)`` for activation ``code`` at the scalar ``z``."""
    one = like(z, 1.0)
    zero = like(z, 0.0)
    if code == SIGMOID:
        return one / (one + fast_exp(-z))
    if code == TANH:
        return fast_tanh(z)
    if code == RELU:
        return zero if z <= zero else z  # NaN stays NaN, as in torch
    if code == LEAKY_RELU:
        return z if z > zero else like(z, LEAKY_SLOPE) * z
    if code == ELU:
        return z if z > zero else math.expm1(z)
    if code == SOFTPLUS:
        return z if z > like(z, SOFTPLUS_THRESHOLD) else math.log1p(math.exp(z))
    if code == GELU:
        inner = like(z, GELU_K) * (z + like(z, GELU_C) * z * z * z)
        return like(z, 0.5) * z * (one + fast_tanh(inner))
    return z


@jit
def activation_derivative(code, z, a):
    """Return ``f'(z)`` for activation ``code``, given ``z`` and ``a = f(z)``."""
    one = like(z, 1.0)
    zero = like(z, 0.0)
    if code == SIGMOID:
        return a * (one - a)
    if code == TANH:
        return one - a * a
    if code == RELU:
        return one if a > zero else zero
    if code == LEAKY_RELU:
        return one if z > zero else like(z, LEAKY_SLOPE)
    if code == ELU:
        return one if z > zero else fast_exp(z)  # not a + 1: that cancels for z << 0
    if code == SOFTPLUS:
        return one if z > like(z, SOFTPLUS_THRESHOLD) else one / (one + fast_exp(-z))
    if code == GELU:
        k = like(z, GELU_K)
        c = like(z, GELU_C)
        half = like(z, 0.5)
        t = fast_tanh(k * (z + c * z * z * z))
        return half * (one + t) + half * z * (one - t * t) * k * (one + like(z, 3.0) * c * z * z)
    return one


@jit
def bias_activate(Z, b, A, code, lo, hi):
    """Rows ``lo:hi`` of ``Z += b`` and ``A = f(Z)``; ``A`` may be ``Z`` itself.

    The bias is added row by row; the activation then runs over the block as
    one flat, contiguous range, so its loop is long even when the layer is
    narrow (at width 10 a per-row loop left most elements to LLVM's scalar
    remainder: 3x slower). The branch on ``code`` sits outside the loops, so
    each loop is straight arithmetic that LLVM vectorises.
    """
    d = Z.shape[1]
    for i in range(lo, hi):
        zi = Z[i]
        for j in range(d):
            zi[j] += b[j]
    size = (hi - lo) * d
    z = Z.reshape(Z.shape[0] * d)[lo * d:hi * d]
    a = A.reshape(A.shape[0] * d)[lo * d:hi * d]
    if code == IDENTITY:
        for k in range(size):
            a[k] = z[k]
    elif code == RELU:
        for k in range(size):
            a[k] = activation_value(RELU, z[k])
    elif code == TANH:
        for k in range(size):
            a[k] = activation_value(TANH, z[k])
    elif code == SIGMOID:
        for k in range(size):
            a[k] = activation_value(SIGMOID, z[k])
    elif code == LEAKY_RELU:
        for k in range(size):
            a[k] = activation_value(LEAKY_RELU, z[k])
    elif code == ELU:
        for k in range(size):
            a[k] = activation_value(ELU, z[k])
    elif code == SOFTPLUS:
        for k in range(size):
            a[k] = activation_value(SOFTPLUS, z[k])
    else:
        for k in range(size):
            a[k] = activation_value(GELU, z[k])


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
            d[k] *= activation_derivative(RELU, z[k], a[k])
    elif code == TANH:
        for k in range(n):
            d[k] *= activation_derivative(TANH, z[k], a[k])
    elif code == SIGMOID:
        for k in range(n):
            d[k] *= activation_derivative(SIGMOID, z[k], a[k])
    elif code == LEAKY_RELU:
        for k in range(n):
            d[k] *= activation_derivative(LEAKY_RELU, z[k], a[k])
    elif code == ELU:
        for k in range(n):
            d[k] *= activation_derivative(ELU, z[k], a[k])
    elif code == SOFTPLUS:
        for k in range(n):
            d[k] *= activation_derivative(SOFTPLUS, z[k], a[k])
    else:
        for k in range(n):
            d[k] *= activation_derivative(GELU, z[k], a[k])
