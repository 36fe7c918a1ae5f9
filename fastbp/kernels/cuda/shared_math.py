"""The CPU's activation, loss and optimizer math, compiled again as CUDA device functions.

The activation, loss and optimizer math is not rewritten for the GPU: the
Python bodies of :func:`~fastbp.kernels.activations.activation_value`,
:func:`~fastbp.kernels.activations.activation_derivative`,
:func:`~fastbp.kernels.losses.loss_row` (with the
:func:`~fastbp.kernels.losses.softmax_row_parts` it calls),
:func:`~fastbp.kernels.losses.count_correct_row` and
:func:`~fastbp.kernels.updates.update` (with the two steps it calls) are compiled a second time as CUDA
device functions. numba-cuda can call a CPU ``@jit`` function from a kernel,
but it compiles such a callee as a separate device function, and that step
asks the driver for the GPU's compute capability, so kernels could no longer
be compiled to PTX (and type-checked) on a machine without a GPU. The CPU
helpers ``fast_exp``/``fast_tanh`` are also built from an LLVM bitcast that
exists to help the CPU's vectoriser, which a GPU does not need. So each body
is copied with three names of its globals rebound: ``fast_exp`` and
``fast_tanh`` become ``math.exp`` and ``math.tanh`` (CUDA's libdevice
functions, single precision for float32), and ``like`` (which casts a Python
float to the dtype of its argument) becomes a CUDA intrinsic. The copies are
device functions inlined at the Numba IR level (``inline="always"``), so they
compile as part of each kernel, the same way on a GPU machine and in
:func:`numba.cuda.compile_ptx` without one.

Importing this module imports ``numba.cuda`` and builds the device functions
(nothing is compiled until a kernel that calls them is).
"""

import math

from .. import activations, losses, updates
from ..compile import specialised
from .device import import_cuda, jit_options, simulator_enabled

cuda = import_cuda()


def _like_python(x, value):
    """The simulator's ``like``: ``value`` as the float type of ``x`` (a NumPy scalar or array)."""
    return x.dtype.type(value)


def _make_like_intrinsic():
    from numba.cuda import types as nbtypes
    from numba.cuda.extending import intrinsic

    @intrinsic
    def like(typingctx, x, value):
        """``value`` cast to the float type of ``x`` (a scalar or an array), as ``activations.like`` on the CPU."""
        target = x.dtype if isinstance(x, nbtypes.Array) else x
        if not isinstance(target, nbtypes.Float):
            return None

        def codegen(context, builder, signature, args):
            return context.cast(builder, args[1], signature.args[1], signature.return_type)

        return target(x, value), codegen

    return like


def _retarget(dispatcher, replacements):
    """Compile the Python body of a CPU ``@jit`` function as an inlined CUDA device function.

    The body is copied with some of its globals rebound (see the module
    docstring); the source, and so the math, stays the CPU's.
    """
    return cuda.jit(**jit_options(device=True))(specialised(dispatcher.py_func, "_cuda", **replacements))


def _build():
    """The retargeted device functions by name."""
    if simulator_enabled():
        math_globals = {"like": _like_python, "fast_exp": math.exp, "fast_tanh": math.tanh}
    else:
        math_globals = {"like": _make_like_intrinsic(), "fast_exp": math.exp, "fast_tanh": math.tanh}
    # The per-activation functions first: activation_value/derivative call them by these names.
    math_globals.update({name: _retarget(getattr(activations, name), math_globals)
                         for name in activations.ELEMENTWISE})
    built = {"activation_value": _retarget(activations.activation_value, math_globals),
             "activation_derivative": _retarget(activations.activation_derivative, math_globals)}
    math_globals["softmax_row_parts"] = _retarget(losses.softmax_row_parts, math_globals)  # loss_row calls it
    built["loss_row"] = _retarget(losses.loss_row, math_globals)
    built["count_correct_row"] = _retarget(losses.count_correct_row, math_globals)
    # update calls the two optimizers' steps by these names
    math_globals.update({name: _retarget(getattr(updates, name), math_globals) for name in ("sgd_update",
                                                                                          "adam_update")})
    built["update"] = _retarget(updates.update, math_globals)
    return built


_built = _build()
activation_value = _built["activation_value"]
activation_derivative = _built["activation_derivative"]
loss_row = _built["loss_row"]
count_correct_row = _built["count_correct_row"]
update = _built["update"]
