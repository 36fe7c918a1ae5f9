"""Activation functions and their derivatives (njit helpers; codes in :mod:`.layout`), and the block passes.

The block passes, :func:`bias_activate` and :func:`scale_by_derivative`, run
in compiled code only: their bodies are generated for the activations their
code argument may take (see :mod:`.variants`).

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
from .layout import ACTIVATION_NAMES, ELU, GELU, IDENTITY, LEAKY_RELU, RELU, SIGMOID, SOFTPLUS, TANH
from .variants import ALL_ACTIVATIONS, code_value, served_codes  # noqa: F401 (code_value: in the generated bodies)
from .views import flat_view  # noqa: F401 (in the generated bodies)

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


# ----------------------------------------------------------------------------- the loops over a block
# bias_activate and scale_by_derivative compile one loop per activation they serve: every activation for a
# plain integer code (the public kernels), or only a variant's (see .variants), whose driver then compiles a
# fraction of the code. Their bodies are generated for the activations served, so that an activation left
# out costs nothing to compile, not even a branch. Each loop runs from 0 over a flat, contiguous range, so
# that Numba drops its negative-index handling and LLVM vectorises it (a loop over ``range(lo, hi)`` stayed
# scalar); the branch on the code sits outside the loops.
def _branches(codes, loop):
    """Source lines running ``loop(code)``'s lines for the code ``k`` among ``codes`` (the last one is the else)."""
    if len(codes) == 1:
        return loop(codes[0])
    lines = []
    for i, code in enumerate(codes):
        lines.append("else:" if i == len(codes) - 1 else f"{'if' if i == 0 else 'elif'} k == {code}:")
        lines += ["    " + line for line in loop(code)]
    return lines


def _activation_loop(code):
    if code == IDENTITY:
        return ["for i in range(z.shape[0]):", "    a[i] = z[i]"]
    return ["for i in range(z.shape[0]):", f"    a[i] = {ACTIVATION_NAMES[code]}_value(z[i])"]


def _derivative_loop(code):
    if code == IDENTITY:
        return ["pass"]
    return ["for i in range(d.shape[0]):", f"    d[i] *= {ACTIVATION_NAMES[code]}_derivative(z[i], a[i])"]


def _generated_function(name, params, lines):
    """A Python function ``name(params)`` made from these body lines, its globals this module's (Numba compiles it)."""
    source = f"def {name}({params}):\n" + "".join(f"    {line}\n" for line in lines)
    namespace = {}
    exec(compile(source, f"<fastbp {name}>", "exec"), globals(), namespace)  # noqa: S102 (fixed templates)
    return namespace[name]


def bias_activate(Z, b, A, code, lo, hi):
    """Rows ``lo:hi`` of ``Z += b`` and ``A = f(Z)``; ``A`` may be ``Z`` itself (compiled code only).

    The bias is added row by row; the activation then runs over the block as
    one flat, contiguous range, so its loop is long even when the layer is
    narrow (a per-row loop over a narrow layer leaves most elements to LLVM's
    scalar remainder). ``code`` is a plain activation code (a loop for every
    activation is compiled) or one tagged by
    :func:`.variants.activation_code` (only the variant's are).
    """
    raise TypeError("bias_activate runs in compiled code only")


@overload(bias_activate)
def _bias_activate_overload(Z, b, A, code, lo, hi):
    lines = ["d = Z.shape[1]",
             "for i in range(lo, hi):",
             "    zi = Z[i]",
             "    for j in range(d):",
             "        zi[j] += b[j]",
             "z = flat_view(Z)[lo * d:hi * d]",
             "a = flat_view(A)[lo * d:hi * d]",
             "k = code_value(code)"]
    codes = served_codes(code, "activation", ALL_ACTIVATIONS)
    return _generated_function("bias_activate_impl", "Z, b, A, code, lo, hi",
                               lines + _branches(codes, _activation_loop))


def scale_by_derivative(d, z, a, code):
    """For 1-D arrays: ``d[k] *= f'(z[k])``, given ``a = f(z)`` (compiled code only; ``code`` as in
    :func:`bias_activate`)."""
    raise TypeError("scale_by_derivative runs in compiled code only")


@overload(scale_by_derivative)
def _scale_by_derivative_overload(d, z, a, code):
    codes = served_codes(code, "activation", ALL_ACTIVATIONS)
    return _generated_function("scale_by_derivative_impl", "d, z, a, code",
                               ["k = code_value(code)"] + _branches(codes, _derivative_loop))
