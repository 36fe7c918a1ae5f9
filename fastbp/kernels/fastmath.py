"""Vectorisable ``exp`` and ``tanh`` for float32 kernels.

Inside njit code ``math.exp`` and ``math.tanh`` are calls into the C library,
one element at a time, and they stop LLVM from vectorising the loop around
them. The float32 versions below are branch-free
arithmetic that LLVM turns into SIMD code. float64 arguments keep the C
library's functions, so float64 results stay exact to the last ulp or two.

float32 ``exp(x)``
    Range reduction ``x = k ln2 + r`` with ``|r| <= ln2/2`` (``ln2`` split in
    a high and a low part), a degree-7 Taylor polynomial for ``exp(r)``
    (truncation below 1e-8 relative), and ``2**k`` built from its exponent
    bits. Arguments are clamped to ``[-87.3, 88.7]``; below that the result is
    about ``1e-38`` (not a denormal), above it about ``3.4e38`` (not Inf). NaN
    gives NaN.
float32 ``tanh(x)``
    For ``|x| < 0.5`` the odd Taylor series to ``x**13`` (truncation below
    1e-8 relative); otherwise ``1 - 2 / (exp(2|x|) + 1)`` with the sign of
    ``x``, which is 1 beyond ``|x| = 9``.

``tests/test_fastmath.py`` holds them to 5 ulps (``exp`` on ``[-87, 88]``)
and 2 ulps (``tanh`` on ``[-10, 10]``) of float64 NumPy; the measured errors
and costs are on the performance page.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from .compile import jit


@intrinsic
def _bits_as_float32(typingctx, bits):
    """Reinterpret the bits of an int32 as a float32 (no conversion)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        value = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        if bits.bitwidth < 32:
            value = builder.sext(value, ir.IntType(32))
        return builder.bitcast(value, ir.FloatType())

    return types.float32(bits), codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 0.693359375          # exact in float32, so k * _LN2_HI is exact for |k| < 2**14
_LN2_LO = -2.1219444005469057e-4


@jit
def _exp_float32(x):
    f = types.float32
    x = f(-87.3) if x < f(-87.3) else x  # written so that NaN passes through
    x = f(88.7) if x > f(88.7) else x
    k = np.floor(x * f(_LOG2E) + f(0.5))
    r = x - k * f(_LN2_HI) - k * f(_LN2_LO)
    p = f(1.0 / 5040.0)
    p = p * r + f(1.0 / 720.0)
    p = p * r + f(1.0 / 120.0)
    p = p * r + f(1.0 / 24.0)
    p = p * r + f(1.0 / 6.0)
    p = p * r + f(0.5)
    p = p * r + f(1.0)
    p = p * r + f(1.0)
    scale = _bits_as_float32((types.int32(k) + types.int32(127)) << types.int32(23))
    return p * scale


@jit
def _tanh_float32(x):
    f = types.float32
    a = abs(x)
    # |x| < 0.5: odd Taylor series, Horner in x**2.
    s = x * x
    p = f(-929569.0 / 638512875.0)
    p = p * s + f(21844.0 / 6081075.0)
    p = p * s + f(-1382.0 / 155925.0)
    p = p * s + f(62.0 / 2835.0)
    p = p * s + f(-17.0 / 315.0)
    p = p * s + f(2.0 / 15.0)
    p = p * s + f(-1.0 / 3.0)
    small = x + x * s * p
    # |x| >= 0.5: from exp, no cancellation worth mentioning there.
    twice = f(2.0) * a
    twice = f(88.0) if twice > f(88.0) else twice  # NaN passes through
    large = f(1.0) - f(2.0) / (_exp_float32(twice) + f(1.0))
    large = -large if x < f(0.0) else large
    return small if a < f(0.5) else large


def fast_exp(x):
    """``exp(x)``: vectorisable arithmetic for float32, the C library's ``exp`` for float64."""
    return math.exp(x)


def fast_tanh(x):
    """``tanh(x)``: vectorisable arithmetic for float32, the C library's ``tanh`` for float64."""
    return math.tanh(x)


@overload(fast_exp, inline="always")
def _fast_exp_overload(x):
    if x == types.float32:
        return lambda x: _exp_float32(x)
    return lambda x: math.exp(x)


@overload(fast_tanh, inline="always")
def _fast_tanh_overload(x):
    if x == types.float32:
        return lambda x: _tanh_float32(x)
    return lambda x: math.tanh(x)
