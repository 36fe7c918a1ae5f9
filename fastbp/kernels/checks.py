"""Argument checks of the public kernels: clear errors for misuse, kept out of the training loop.

The public ``dense_forward``, ``backprop_delta`` and ``weight_gradient`` (and
their ``*_parallel`` twins) call :func:`check_dense_forward` and its
siblings before the kernel itself. Each check has two halves:

- at typing time (when Numba compiles the call, for a call from Python or
  from a user's jitted code alike) every array must be C-contiguous, of the
  kernel's number of dimensions, float32 or float64, all of one dtype, and
  the outputs writable; ``act`` must be an integer. Anything else raises a
  ``TypeError`` whose message names the argument and says what was expected.
  It is a plain ``TypeError``, not a Numba ``TypingError``, so that Numba
  passes it on as it is instead of burying it in its resolution report;
- at run time, ``act`` must be one of the activation codes of
  :mod:`.layout`, and no output may share memory with an input or with
  another output (only ``dense_forward``'s ``A`` may be ``Z`` itself). Each
  raises a one-line ``ValueError`` before anything is written.

Shapes are checked by the kernels themselves. The compiled training driver
calls the unchecked kernels of :mod:`.dense` directly: its arrays are views
it builds itself, and a check per call would cost time in every minibatch.
"""

from numba import types
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array

from .compile import jit
from .layout import ACTIVATION_NAMES

_N_ACTIVATIONS = len(ACTIVATION_NAMES)
if sorted(ACTIVATION_NAMES) != list(range(_N_ACTIVATIONS)):
    raise ImportError("fastbp.kernels.checks expects the activation codes to be 0, 1, ..., n - 1")

_FLOATS = (types.float32, types.float64)

# Each kernel's arguments, in order: (name, number of dimensions, role); role "in", "out" or "act".
DENSE_FORWARD_ARGS = (("X", 2, "in"), ("W", 2, "in"), ("b", 1, "in"), ("act", 0, "act"), ("Z", 2, "out"),
                      ("A", 2, "out"))
BACKPROP_DELTA_ARGS = (("D_next", 2, "in"), ("W_next", 2, "in"), ("Z", 2, "in"), ("A", 2, "in"), ("act", 0, "act"),
                       ("D", 2, "out"))
WEIGHT_GRADIENT_ARGS = (("A_prev", 2, "in"), ("D", 2, "in"), ("gW", 2, "out"), ("gb", 1, "out"))


def type_problem(kernel, spec, argtypes):
    """What is wrong with the Numba types ``argtypes`` of a call to ``kernel``, as a one-line message, or None."""
    dtype = first = None
    for (name, ndim, role), ty in zip(spec, argtypes):
        if role == "act":
            if not isinstance(ty, types.Integer):
                return f"{kernel}: expected act to be an integer activation code (e.g. fastbp.kernels.RELU), got {ty}"
            continue
        expected = f"{kernel}: expected {name} to be a {ndim}-d C-contiguous float32 or float64 array"
        if not isinstance(ty, types.Array):
            return f"{expected}, got {ty}"
        if ty.dtype not in _FLOATS:
            return f"{expected}, got an array of {ty.dtype} ({ty})"
        if ty.ndim != ndim:
            return f"{expected}, got a {ty.ndim}-d array ({ty})"
        if ty.layout != "C":
            return (f"{expected}, got one that may not be C-contiguous ({ty}); "
                    f"pass np.ascontiguousarray({name})")
        if role == "out" and not ty.mutable:
            return f"{expected} that can be written (it is an output), got a read-only one ({ty})"
        if dtype is None:
            dtype, first = ty.dtype, name
        elif ty.dtype != dtype:
            return f"{kernel}: expected every array to have one dtype, got {first} of {dtype} and {name} of {ty.dtype}"
    return None


def _python_types(values):
    from numba import typeof

    found = []
    for value in values:
        try:
            found.append(typeof(value))
        except ValueError:
            found.append(type(value).__name__)
    return found


@intrinsic
def _byte_span_of(typingctx, arr):
    """``(first, end)``: the addresses of an array's first data byte and one past its last (C-contiguous)."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        ary = make_array(sig.args[0])(context, builder, args[0])
        first = builder.ptrtoint(ary.data, context.get_value_type(types.intp))
        end = builder.add(first, builder.mul(ary.nitems, ary.itemsize))
        return context.make_tuple(builder, sig.return_type, [first, end])

    return types.UniTuple(types.intp, 2)(arr), codegen


def _byte_span(arr):
    """``(first, end)`` byte addresses of a C-contiguous array (compiled code reads them with an intrinsic)."""
    return arr.ctypes.data, arr.ctypes.data + arr.nbytes


@overload(_byte_span, inline="always")
def _byte_span_typed(arr):
    return lambda arr: _byte_span_of(arr)


@jit(inline="always")
def _meet(s, t):
    """Whether two byte spans of non-empty arrays intersect."""
    return s[0] < s[1] and t[0] < t[1] and s[0] < t[1] and t[0] < s[1]


_ACT_MESSAGE = (": act must be an activation code of fastbp.kernels (0 to " + str(_N_ACTIVATIONS - 1)
                + ", e.g. fastbp.kernels.RELU), got ")
_DENSE_FORWARD_ACT = "dense_forward" + _ACT_MESSAGE
_BACKPROP_DELTA_ACT = "backprop_delta" + _ACT_MESSAGE
_OWN = "; an output must be an array of its own"


# ----------------------------------------------------------------------------- run-time halves
# Each array's byte span is read once, straight from the array structure, and compared as integers: a few
# nanoseconds a call (going through ``.ctypes`` or ``.size`` per comparison cost ten times more). Messages are
# built only on the error path.
def _dense_forward_values(X, W, b, act, Z, A):
    if act < 0 or act >= _N_ACTIVATIONS:
        raise ValueError(_DENSE_FORWARD_ACT + str(act))
    x, w, bias, z, a = _byte_span(X), _byte_span(W), _byte_span(b), _byte_span(Z), _byte_span(A)
    if _meet(z, x):
        raise ValueError("dense_forward: Z shares memory with X" + _OWN)
    if _meet(z, w):
        raise ValueError("dense_forward: Z shares memory with W" + _OWN)
    if _meet(z, bias):
        raise ValueError("dense_forward: Z shares memory with b" + _OWN)
    if _meet(a, x):
        raise ValueError("dense_forward: A shares memory with X" + _OWN)
    if _meet(a, w):
        raise ValueError("dense_forward: A shares memory with W" + _OWN)
    if _meet(a, bias):
        raise ValueError("dense_forward: A shares memory with b" + _OWN)
    if _meet(a, z) and not (a[0] == z[0] and a[1] == z[1]):  # the same span: A is Z (their shapes are checked next)
        raise ValueError("dense_forward: A overlaps Z without being Z itself; pass A=Z or an array of its own")


def _backprop_delta_values(D_next, W_next, Z, A, act, D):
    if act < 0 or act >= _N_ACTIVATIONS:
        raise ValueError(_BACKPROP_DELTA_ACT + str(act))
    d = _byte_span(D)
    if _meet(d, _byte_span(D_next)):
        raise ValueError("backprop_delta: D shares memory with D_next" + _OWN)
    if _meet(d, _byte_span(W_next)):
        raise ValueError("backprop_delta: D shares memory with W_next" + _OWN)
    if _meet(d, _byte_span(Z)):
        raise ValueError("backprop_delta: D shares memory with Z" + _OWN)
    if _meet(d, _byte_span(A)):
        raise ValueError("backprop_delta: D shares memory with A" + _OWN)


def _weight_gradient_values(A_prev, D, gW, gb):
    a, d, gw, g = _byte_span(A_prev), _byte_span(D), _byte_span(gW), _byte_span(gb)
    if _meet(gw, a):
        raise ValueError("weight_gradient: gW shares memory with A_prev" + _OWN)
    if _meet(gw, d):
        raise ValueError("weight_gradient: gW shares memory with D" + _OWN)
    if _meet(g, a):
        raise ValueError("weight_gradient: gb shares memory with A_prev" + _OWN)
    if _meet(g, d):
        raise ValueError("weight_gradient: gb shares memory with D" + _OWN)
    if _meet(g, gw):
        raise ValueError("weight_gradient: gb shares memory with gW" + _OWN)


# ----------------------------------------------------------------------------- the checks
def _check_in_python(kernel, spec, values, run_time_half):
    problem = type_problem(kernel, spec, _python_types(values))
    if problem is not None:
        raise TypeError(problem)
    run_time_half(*values)


def check_dense_forward(X, W, b, act, Z, A):
    """Raise ``TypeError`` / ``ValueError`` for a misuse of ``dense_forward``'s arguments (see the module docstring).

    Callable from jitted code (where the type half runs at compile time) and,
    with ``NUMBA_DISABLE_JIT=1``, from Python.
    """
    _check_in_python("dense_forward", DENSE_FORWARD_ARGS, (X, W, b, act, Z, A), _dense_forward_values)


def check_backprop_delta(D_next, W_next, Z, A, act, D):
    """Raise ``TypeError`` / ``ValueError`` for a misuse of ``backprop_delta``'s arguments."""
    _check_in_python("backprop_delta", BACKPROP_DELTA_ARGS, (D_next, W_next, Z, A, act, D), _backprop_delta_values)


def check_weight_gradient(A_prev, D, gW, gb):
    """Raise ``TypeError`` / ``ValueError`` for a misuse of ``weight_gradient``'s arguments."""
    _check_in_python("weight_gradient", WEIGHT_GRADIENT_ARGS, (A_prev, D, gW, gb), _weight_gradient_values)


@overload(check_dense_forward)
def _check_dense_forward_typed(X, W, b, act, Z, A):
    problem = type_problem("dense_forward", DENSE_FORWARD_ARGS, (X, W, b, act, Z, A))
    if problem is not None:
        raise TypeError(problem)
    return _dense_forward_values


@overload(check_backprop_delta)
def _check_backprop_delta_typed(D_next, W_next, Z, A, act, D):
    problem = type_problem("backprop_delta", BACKPROP_DELTA_ARGS, (D_next, W_next, Z, A, act, D))
    if problem is not None:
        raise TypeError(problem)
    return _backprop_delta_values


@overload(check_weight_gradient)
def _check_weight_gradient_typed(A_prev, D, gW, gb):
    problem = type_problem("weight_gradient", WEIGHT_GRADIENT_ARGS, (A_prev, D, gW, gb))
    if problem is not None:
        raise TypeError(problem)
    return _weight_gradient_values

