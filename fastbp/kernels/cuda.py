"""CUDA twins of the kernels, and the device-resident training loop.

This is the only module of fastbp that imports ``numba.cuda`` (the
``numba-cuda`` package, installed by ``pip install fastbp[cuda]``), and it does
so only when a CUDA kernel or the CUDA backend is first asked for: importing
this module, or :mod:`fastbp`, needs neither numba-cuda nor a GPU.

Kernels
-------
The names below are CUDA kernels (``numba.cuda`` dispatchers), launched as
``kernel[grid, block](...)``. The first three have the names, argument order
and semantics of the CPU kernels in :mod:`fastbp.kernels`; arrays are
C-contiguous device arrays of one float dtype (float32 or float64).

``dense_forward(X, W, b, act, Z, A)``
    ``Z = X @ W + b``, ``A = act(Z)``. A tiled product: each block of
    ``CUDA_TILE x CUDA_TILE`` threads owns one ``CUDA_TILE x CUDA_TILE`` tile of
    ``Z``; it walks the shared dimension a tile at a time, staging a tile of
    ``X`` and one of ``W`` in shared memory, so that each element read from
    global memory is used ``CUDA_TILE`` times. Consecutive threads of a warp
    (``threadIdx.x``) take consecutive columns, so the loads of both tiles and
    the stores of ``Z`` and ``A`` are coalesced. The bias and the activation
    are applied in the epilogue, while the sum is still in a register: ``Z``
    is written once and never read back.
``backprop_delta(D_next, W_next, Z, A, act, D)``
    ``D = (D_next @ W_next.T) * act'(Z)``. The same tiling; ``W_next`` is read
    along its rows (coalesced) and used transposed from shared memory, whose
    tile is padded by one column so that the transposed reads of a warp fall in
    distinct banks. The derivative is fused into the epilogue.
``weight_gradient(A_prev, D, gW, gb)``
    ``gW = A_prev.T @ D``, ``gb = D.sum(0)``. Each block owns one tile of
    ``gW`` and sums over all ``n`` rows of the minibatch itself, so every
    element of ``gW`` has exactly one writer: no atomics, no second reduction
    pass, and a result that does not depend on scheduling. The bias gradient
    rides along: the blocks of the first tile row (``blockIdx.y == 0``) also
    add up the ``D`` tiles they have staged anyway. A minibatch has few rows
    (tens to a few thousand), which is why one block per tile that walks them
    all is enough; a split over rows would need atomics or a second pass.
``output_delta(Z, T, w, weighted, loss, scale, D, row_loss, row_correct)``
    The loss of each output row and its delta ``dJ/dZ`` (every loss: softmax
    and binary cross-entropy, mean squared error), one thread per row. The
    rows are short (the output width), so a row per thread keeps each
    softmax's max, sum and normalisation in one thread without
    synchronisation. Row ``i`` is scaled by ``scale * w[i]`` when
    ``weighted``; its loss (times ``w[i]``) and its correct count go to
    ``row_loss[i]`` and ``row_correct[i]``.
``optimizer_update(code, theta, g, m, v, hyper, step, stats)``
    One SGD/Adam/AdamW step over the flat vectors, one thread per element;
    it does nothing once ``stats`` records a diverged minibatch.

The host wrappers :func:`launch_dense_forward`, :func:`launch_backprop_delta`
and :func:`launch_weight_gradient` check shapes and choose the launch
configuration from ``fastbp._config`` (``CUDA_TILE``, ``CUDA_THREADS``, read
from ``FASTBP_CUDA_TILE`` and ``FASTBP_CUDA_THREADS``).

Shared math
-----------
The activation, loss and optimizer math is not rewritten for the GPU: the
Python bodies of :func:`~fastbp.kernels.activations.activation_value`,
:func:`~fastbp.kernels.activations.activation_derivative`,
:func:`~fastbp.kernels.losses.loss_row` (with the
:func:`~fastbp.kernels.losses.softmax_row_parts` it calls),
:func:`~fastbp.kernels.losses.count_correct_row` and
:func:`~fastbp.kernels.updates.update` are compiled a second time as CUDA
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

Training on the device
----------------------
:class:`DeviceEpochs` keeps the data, the parameters, the gradient and the
optimizer state in device memory for a whole ``fit``. Each minibatch is one
host loop iteration that launches a fixed sequence of kernels: a gather of
the minibatch's rows by the epoch's order (a view when samples come in
order), ``dense_forward`` per layer, ``output_delta``, a one-block reduction
of the row losses, ``weight_gradient`` and ``backprop_delta`` per layer, the
optional L2 penalty, and ``optimizer_update``. The per-epoch statistics (loss
sum, correct count, samples, weight sum, divergence) accumulate on the device
and are copied back once per epoch; the parameters only when asked for
(:meth:`DeviceEpochs.fetch`).

Under ``NUMBA_ENABLE_CUDASIM=1`` (set before numba is imported) everything
here runs on Numba's CUDA simulator, on the CPU, which is how the tests run it.
"""

import math
import types as _pytypes

import numpy as np

from .. import _config
from . import activations, losses, updates
from .epoch import ACT, B_OFF, D_IN, D_OUT, N_STATS, S_CORRECT, S_DIVERGED, S_LOSS, S_SEEN, S_WEIGHT, W_OFF
from .losses import row_divisor

#: The message of a CUDA request that cannot be served, and how to fix it.
INSTALL_HINT = ("Install the CUDA extra with `pip install fastbp[cuda]` (it brings numba-cuda and the CUDA "
                "libraries) on a machine with an NVIDIA GPU and its driver, or train with backend='cpu'.")

_KERNEL_NAMES = ("dense_forward", "backprop_delta", "weight_gradient", "output_delta", "optimizer_update",
                 "gather_rows", "batch_stats", "add_l2", "check_finite")

_cuda = None  # the numba.cuda module, once loaded
_kernels = None  # name -> compiled kernel, once built

# Bound by _build() before the first compilation; the kernel bodies read them as compile-time constants.
cuda = None
_TILE = _PAD = _THREADS = None
_activation_value = _activation_derivative = _loss_row = _count_correct_row = _update = None


class CudaUnavailableError(RuntimeError):
    """The CUDA backend was asked for, but numba-cuda or a usable GPU is missing."""


def _import_cuda():
    """``numba.cuda``, imported on first use; a clear :class:`CudaUnavailableError` without numba-cuda."""
    global _cuda
    if _cuda is None:
        try:
            import numba_cuda  # noqa: F401  (the maintained CUDA target; Numba's built-in one is deprecated)
            from numba import cuda
        except ImportError:
            raise CudaUnavailableError("the CUDA backend needs the numba-cuda package, which is not installed. "
                                       + INSTALL_HINT) from None
        _cuda = cuda
    return _cuda


def simulator_enabled():
    """Whether Numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1``): kernels then run on the CPU."""
    import numba

    return bool(getattr(numba.config, "ENABLE_CUDASIM", 0))


def device_problem():
    """Why the CUDA backend cannot run here, or ``None`` when it can.

    Returns
    -------
    str or None
        A one-line reason (no numba-cuda, no driver, no GPU), or ``None`` when
        a GPU is usable or the CUDA simulator is enabled.
    """
    try:
        cuda = _import_cuda()
    except CudaUnavailableError as exc:
        return str(exc)
    if simulator_enabled():
        return None
    try:
        if len(cuda.gpus) > 0 and cuda.is_available():
            return None
        reason = "no CUDA GPU was found"
    except Exception as exc:  # the driver's own error, on one line and without its traceback
        reason = " ".join(str(exc).split()).rstrip(" :")[:300] or type(exc).__name__
    return f"no usable CUDA GPU ({reason}). " + INSTALL_HINT


def real_device_available():
    """Whether a real CUDA GPU is usable (the simulator does not count); never raises."""
    try:
        return not simulator_enabled() and device_problem() is None
    except Exception:
        return False


def require_device():
    """Raise :class:`CudaUnavailableError` with the reason when the CUDA backend cannot run here."""
    problem = device_problem()
    if problem is not None:
        raise CudaUnavailableError(f"backend='cuda' cannot run: {problem}")


# --------------------------------------------------------------------------- shared math, retargeted
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
    func = dispatcher.py_func
    namespace = dict(func.__globals__)
    namespace.update(replacements)
    copy = _pytypes.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__, func.__closure__)
    copy.__qualname__ = func.__qualname__ + "_cuda"
    copy.__doc__ = func.__doc__
    return _cuda.jit(**_config.cuda_jit_options(device=True))(copy)


# --------------------------------------------------------------------------- kernel bodies
# The names these bodies use (_TILE, _PAD, _THREADS, the device functions) are module globals set by
# _build() before the first compilation; Numba reads globals as compile-time constants.

def _dense_forward(X, W, b, act, Z, A):
    xs = cuda.shared.array((_TILE, _TILE), X.dtype)  # xs[r, k] = X[row0 + r, k0 + k]
    ws = cuda.shared.array((_TILE, _TILE), X.dtype)  # ws[k, c] = W[k0 + k, col0 + c]
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.x * _TILE + ty
    col = cuda.blockIdx.y * _TILE + tx
    n = X.shape[0]
    d_in = X.shape[1]
    d_out = W.shape[1]
    zero = X.dtype.type(0)
    acc = zero
    for k0 in range(0, d_in, _TILE):
        k = k0 + tx
        xs[ty, tx] = X[row, k] if row < n and k < d_in else zero
        k = k0 + ty
        ws[ty, tx] = W[k, col] if k < d_in and col < d_out else zero
        cuda.syncthreads()
        for kk in range(_TILE):
            acc += xs[ty, kk] * ws[kk, tx]
        cuda.syncthreads()
    if row < n and col < d_out:
        z = acc + b[col]
        Z[row, col] = z
        A[row, col] = _activation_value(act, z)


def _backprop_delta(D_next, W_next, Z, A, act, D):
    ds = cuda.shared.array((_TILE, _TILE), D.dtype)  # ds[r, k] = D_next[row0 + r, k0 + k]
    ws = cuda.shared.array((_TILE, _PAD), D.dtype)  # ws[c, k] = W_next[col0 + c, k0 + k]; padded: see docstring
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.x * _TILE + ty
    col0 = cuda.blockIdx.y * _TILE
    col = col0 + tx
    n = D.shape[0]
    d = D.shape[1]
    d_next = W_next.shape[1]
    zero = D.dtype.type(0)
    acc = zero
    for k0 in range(0, d_next, _TILE):
        k = k0 + tx
        ds[ty, tx] = D_next[row, k] if row < n and k < d_next else zero
        c = col0 + ty
        ws[ty, tx] = W_next[c, k] if c < d and k < d_next else zero
        cuda.syncthreads()
        for kk in range(_TILE):
            acc += ds[ty, kk] * ws[tx, kk]
        cuda.syncthreads()
    if row < n and col < d:
        D[row, col] = acc * _activation_derivative(act, Z[row, col], A[row, col])


def _weight_gradient(A_prev, D, gW, gb):
    as_ = cuda.shared.array((_TILE, _TILE), D.dtype)  # as_[r, i] = A_prev[r0 + r, in0 + i]
    ds = cuda.shared.array((_TILE, _TILE), D.dtype)  # ds[r, j] = D[r0 + r, col0 + j]
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    in0 = cuda.blockIdx.y * _TILE
    i = in0 + ty
    j = cuda.blockIdx.x * _TILE + tx
    n = A_prev.shape[0]
    d_in = A_prev.shape[1]
    d_out = D.shape[1]
    zero = D.dtype.type(0)
    acc = zero
    bias = zero
    sums_bias = cuda.blockIdx.y == 0 and ty == 0
    for r0 in range(0, n, _TILE):
        r = r0 + ty
        ii = in0 + tx
        as_[ty, tx] = A_prev[r, ii] if r < n and ii < d_in else zero
        ds[ty, tx] = D[r, j] if r < n and j < d_out else zero
        cuda.syncthreads()
        for kk in range(_TILE):
            acc += as_[kk, ty] * ds[kk, tx]
        if sums_bias:
            for kk in range(_TILE):
                bias += ds[kk, tx]
        cuda.syncthreads()
    if i < d_in and j < d_out:
        gW[i, j] = acc
    if sums_bias and j < d_out:
        gb[j] = bias


def _output_delta(Z, T, w, weighted, loss, scale, D, row_loss, row_correct):
    i = cuda.grid(1)
    if i < Z.shape[0]:
        wi = w[i] if weighted else Z.dtype.type(1)
        row_loss[i] = float(wi) * _loss_row(Z[i], T[i], loss, scale * wi, D[i])
        row_correct[i] = _count_correct_row(Z[i], T[i], loss)


def _batch_stats(row_loss, row_correct, rows, skipped, wsum, penalty, sq, stats, step):
    """One block: the minibatch's loss and correct count, summed in a fixed order, into ``stats``.

    ``penalty`` multiplies the weights' sum of squares ``sq[0]`` (left there
    by ``add_l2``) into the loss. A non-finite loss marks the epoch diverged;
    after that nothing more is counted and no step is taken. ``skipped > 0``
    records a minibatch of that many rows whose weights sum to zero: seen,
    no step (``rows`` is then 0).
    """
    loss_part = cuda.shared.array(_THREADS, np.float64)
    correct_part = cuda.shared.array(_THREADS, np.float64)
    t = cuda.threadIdx.x
    a = 0.0
    c = 0.0
    for i in range(t, rows, _THREADS):
        a += row_loss[i]
        c += row_correct[i]
    loss_part[t] = a
    correct_part[t] = c
    cuda.syncthreads()
    half = _THREADS // 2
    while half > 0:
        if t < half:
            loss_part[t] += loss_part[t + half]
            correct_part[t] += correct_part[t + half]
        cuda.syncthreads()
        half //= 2
    if t == 0:
        if stats[S_DIVERGED] == 0.0:
            if skipped > 0:
                stats[S_SEEN] += skipped
            else:
                total = loss_part[0] + penalty * sq[0]
                if not math.isfinite(total):
                    stats[S_DIVERGED] = 1.0
                else:
                    stats[S_LOSS] += total
                    stats[S_CORRECT] += correct_part[0]
                    stats[S_SEEN] += rows
                    stats[S_WEIGHT] += wsum
                    step[0] += 1
        sq[0] = 0.0


def _add_l2(W, gW, coef, sq):
    """One block: ``gW += coef * W`` over a flat weight span, and ``sq[0] += sum(W**2)`` in float64."""
    part = cuda.shared.array(_THREADS, np.float64)
    t = cuda.threadIdx.x
    s = 0.0
    for p in range(t, W.shape[0], _THREADS):
        wp = W[p]
        gW[p] += coef * wp
        s += float(wp) * float(wp)
    part[t] = s
    cuda.syncthreads()
    half = _THREADS // 2
    while half > 0:
        if t < half:
            part[t] += part[t + half]
        cuda.syncthreads()
        half //= 2
    if t == 0:
        sq[0] += part[0]


def _optimizer_update(code, theta, g, m, v, hyper, step, stats):
    i = cuda.grid(1)
    if i < theta.shape[0] and stats[S_DIVERGED] == 0.0:
        j = i + 1
        _update(code, theta[i:j], g[i:j], m[i:j], v[i:j], hyper, step[0])


def _check_finite(theta, stats):
    """Mark the epoch diverged when an element of ``theta`` is not finite (any thread may write the flag)."""
    i = cuda.grid(1)
    if i < theta.shape[0] and not math.isfinite(theta[i]):
        stats[S_DIVERGED] = 1.0


def _gather_rows(src, order, start, rows, dst):
    """``dst[r] = src[order[start + r]]`` for ``r < rows``, one thread per element."""
    e = cuda.grid(1)
    width = src.shape[1]
    if e < rows * width:
        r = e // width
        j = e - r * width
        dst[r, j] = src[order[start + r], j]


# --------------------------------------------------------------------------- building
def _build():
    """Import numba.cuda, retarget the shared math and compile-wrap every kernel (once)."""
    global _kernels, cuda, _TILE, _PAD, _THREADS
    global _activation_value, _activation_derivative, _loss_row, _count_correct_row, _update
    if _kernels is not None:
        return _kernels
    cuda = _import_cuda()
    _TILE = _config.CUDA_TILE
    _PAD = _TILE + 1
    _THREADS = _config.CUDA_THREADS
    if simulator_enabled():
        math_globals = {"like": _like_python, "fast_exp": math.exp, "fast_tanh": math.tanh}
    else:
        math_globals = {"like": _make_like_intrinsic(), "fast_exp": math.exp, "fast_tanh": math.tanh}
    # The per-activation functions first: activation_value/derivative call them by these names.
    math_globals.update({name: _retarget(getattr(activations, name), math_globals)
                         for name in activations.ELEMENTWISE})
    _activation_value = _retarget(activations.activation_value, math_globals)
    _activation_derivative = _retarget(activations.activation_derivative, math_globals)
    math_globals["softmax_row_parts"] = _retarget(losses.softmax_row_parts, math_globals)  # loss_row calls it
    _loss_row = _retarget(losses.loss_row, math_globals)
    _count_correct_row = _retarget(losses.count_correct_row, math_globals)
    _update = _retarget(updates.update, math_globals)
    bodies = {"dense_forward": _dense_forward, "backprop_delta": _backprop_delta,
              "weight_gradient": _weight_gradient, "output_delta": _output_delta,
              "optimizer_update": _optimizer_update, "gather_rows": _gather_rows, "batch_stats": _batch_stats,
              "add_l2": _add_l2, "check_finite": _check_finite}
    _kernels = {name: cuda.jit(**_config.cuda_jit_options())(body) for name, body in bodies.items()}
    return _kernels


def kernel_bodies():
    """The Python bodies of the CUDA kernels by name, for compiling them elsewhere (e.g. ``compile_ptx``).

    Builds the module first, so that the names the bodies use are bound.

    Returns
    -------
    dict of str to function
    """
    _build()
    return {name: globals()["_" + name] for name in _KERNEL_NAMES}


def __getattr__(name):
    if name in _KERNEL_NAMES:
        return _build()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_KERNEL_NAMES))


# --------------------------------------------------------------------------- host wrappers
def _blocks(count, size):
    return max(1, -(-count // size))


def _check_arrays(name, arrays):
    dtype = arrays[0].dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: arrays must be float32 or float64, got {dtype}")
    for a in arrays:
        if a.dtype != dtype:
            raise TypeError(f"{name}: every array must have one dtype, got {dtype} and {a.dtype}")


def launch_dense_forward(X, W, b, act, Z, A, stream=0):
    """Launch ``dense_forward``: ``Z = X @ W + b``, ``A = act(Z)``, on the GPU.

    Parameters
    ----------
    X : device array, shape (n, d_in)
    W : device array, shape (d_in, d_out)
    b : device array, shape (d_out,)
    act : int
        Activation code, e.g. ``fastbp.kernels.RELU``.
    Z, A : device arrays, shape (n, d_out)
        Outputs; ``A`` may be ``Z``.
    stream : numba.cuda stream, optional
        The stream to launch on (default: the default stream).

    Notes
    -----
    The grid has ``ceil(n / CUDA_TILE) x ceil(d_out / CUDA_TILE)`` blocks of
    ``CUDA_TILE x CUDA_TILE`` threads, one thread per element of ``Z``; rows
    go on the grid's x axis, whose limit (2**31 - 1 blocks) suits long
    batches. NumPy arrays are accepted too (Numba copies them to and from the
    device), which is convenient in tests but slow.

    Examples
    --------
    >>> from numba import cuda  # doctest: +SKIP
    >>> from fastbp.kernels import RELU, cuda as fcuda  # doctest: +SKIP
    >>> fcuda.launch_dense_forward(X_d, W_d, b_d, RELU, Z_d, A_d)  # doctest: +SKIP
    """
    n, d_in = X.shape
    d_out = W.shape[1]
    if W.shape[0] != d_in or b.shape[0] != d_out:
        raise ValueError("dense_forward: W must be (d_in, d_out) and b (d_out,) for X of shape (n, d_in)")
    if Z.shape != (n, d_out) or A.shape != (n, d_out):
        raise ValueError("dense_forward: Z and A must be (n, d_out)")
    _check_arrays("dense_forward", (X, W, b, Z, A))
    if n == 0 or d_out == 0:
        return
    tile = _config.CUDA_TILE
    _build()["dense_forward"][(_blocks(n, tile), _blocks(d_out, tile)), (tile, tile), stream](X, W, b, act, Z, A)


def launch_backprop_delta(D_next, W_next, Z, A, act, D, stream=0):
    """Launch ``backprop_delta``: ``D = (D_next @ W_next.T) * act'(Z)``, on the GPU.

    Parameters
    ----------
    D_next : device array, shape (n, d_next)
    W_next : device array, shape (d, d_next)
    Z, A : device arrays, shape (n, d)
        This layer's pre-activation and activation ``A = act(Z)``.
    act : int
        This layer's activation code.
    D : device array, shape (n, d)
        Output.
    stream : numba.cuda stream, optional

    Notes
    -----
    The grid has ``ceil(n / CUDA_TILE) x ceil(d / CUDA_TILE)`` blocks of
    ``CUDA_TILE x CUDA_TILE`` threads, one thread per element of ``D``.
    """
    n, d = D.shape
    d_next = W_next.shape[1]
    if W_next.shape[0] != d or D_next.shape != (n, d_next):
        raise ValueError("backprop_delta: D_next must be (n, d_next) and W_next (d, d_next) for D of shape (n, d)")
    if Z.shape != (n, d) or A.shape != (n, d):
        raise ValueError("backprop_delta: Z and A must have the shape of D, (n, d)")
    _check_arrays("backprop_delta", (D_next, W_next, Z, A, D))
    if n == 0 or d == 0:
        return
    tile = _config.CUDA_TILE
    _build()["backprop_delta"][(_blocks(n, tile), _blocks(d, tile)), (tile, tile), stream](
        D_next, W_next, Z, A, act, D)


def launch_weight_gradient(A_prev, D, gW, gb, stream=0):
    """Launch ``weight_gradient``: ``gW = A_prev.T @ D``, ``gb = D.sum(0)``, on the GPU.

    Parameters
    ----------
    A_prev : device array, shape (n, d_in)
    D : device array, shape (n, d_out)
    gW : device array, shape (d_in, d_out)
        Output (overwritten).
    gb : device array, shape (d_out,)
        Output (overwritten).
    stream : numba.cuda stream, optional

    Notes
    -----
    The grid has ``ceil(d_out / CUDA_TILE) x ceil(d_in / CUDA_TILE)`` blocks of
    ``CUDA_TILE x CUDA_TILE`` threads, one thread per element of ``gW``; each
    block sums over all ``n`` rows, and the first row of blocks also writes
    ``gb``. ``n == 0`` gives zeros.
    """
    n, d_in = A_prev.shape
    d_out = D.shape[1]
    if D.shape[0] != n or gW.shape != (d_in, d_out) or gb.shape != (d_out,):
        raise ValueError("weight_gradient: need A_prev (n, d_in), D (n, d_out), gW (d_in, d_out), gb (d_out,)")
    _check_arrays("weight_gradient", (A_prev, D, gW, gb))
    if d_in == 0 or d_out == 0:
        return
    tile = _config.CUDA_TILE
    _build()["weight_gradient"][(_blocks(d_out, tile), _blocks(d_in, tile)), (tile, tile), stream](
        A_prev, D, gW, gb)


def launch_output_delta(Z, T, w, weighted, loss, scale, D, row_loss, row_correct, stream=0):
    """Launch ``output_delta`` with one thread per row of ``Z`` (blocks of ``CUDA_THREADS``).

    Parameters
    ----------
    Z, T : device arrays, shape (n, k)
        Output pre-activations and target rows.
    w : device array, shape (n,) or longer
        Sample weights, read only when ``weighted``.
    weighted : bool
    loss : int
        Loss code (``fastbp.kernels.MSE``, ...).
    scale : float
        The mean-reduction factor, in the dtype of ``Z``.
    D : device array, shape (n, k)
        Output: the delta.
    row_loss, row_correct : device arrays of float64, shape (n,) or longer
        Output: each row's (weighted) loss and correct count.
    stream : numba.cuda stream, optional
    """
    n = Z.shape[0]
    if T.shape != Z.shape or D.shape != Z.shape:
        raise ValueError("output_delta: Z, T and D must have one shape (n, k)")
    if n == 0:
        return
    threads = _config.CUDA_THREADS
    _build()["output_delta"][_blocks(n, threads), threads, stream](
        Z, T, w, weighted, loss, Z.dtype.type(scale), D, row_loss, row_correct)


def launch_optimizer_update(code, theta, g, m, v, hyper, step, stats, stream=0):
    """Launch ``optimizer_update`` over the flat vectors, one thread per parameter.

    Parameters
    ----------
    code : int
        ``fastbp.kernels.updates.SGD``, ``ADAM`` or ``ADAMW``.
    theta, g, m, v : device arrays, shape (P,)
    hyper : device array of float64
        Hyperparameters (``Optimizer.hyperparameters()``).
    step : device array of int64, shape (1,)
        The step number (from 1) of this update.
    stats : device array of float64, shape (N_STATS,)
        No update happens when ``stats[S_DIVERGED]`` is set.
    stream : numba.cuda stream, optional
    """
    n = theta.shape[0]
    threads = _config.CUDA_THREADS
    _build()["optimizer_update"][_blocks(n, threads), threads, stream](code, theta, g, m, v, hyper, step, stats)


# --------------------------------------------------------------------------- the device-resident loop
class DeviceEpochs:
    """Minibatch training with every array resident on the GPU.

    Parameters
    ----------
    layers : ndarray of int64, shape (L, N_COLS)
        The layer table (``fastbp.kernels.epoch``); only the ``D_IN``,
        ``D_OUT``, ``W_OFF``, ``B_OFF`` and ``ACT`` columns are read.
    loss : int
        Loss code.
    theta, m, v : ndarray, shape (P,)
        Host parameters and optimizer state; copied to the device here, and
        back by :meth:`fetch`.
    step : ndarray of int64, shape (1,)
        Host optimizer step counter (copied likewise).
    optimizer : int
        Optimizer code (``updates.SGD``, ``ADAM``, ``ADAMW``).
    hyper : ndarray of float64
        Optimizer hyperparameters.
    batch_size : int
    l2 : float, default 0
        L2 penalty on the weights, as in ``fastbp.kernels.epoch``.

    Notes
    -----
    Minibatch semantics follow ``fastbp.kernels.epoch.train_epoch``: the
    weighted mean loss per minibatch, a minibatch whose weights sum to zero
    skipped (counted as seen, no step), and an epoch that stops counting and
    stepping at the first minibatch whose loss is not finite; an epoch that
    leaves a parameter non-finite counts as diverged too. On a divergence the
    device state goes back to where the epoch began.
    """

    def __init__(self, layers, loss, theta, m, v, step, optimizer, hyper, batch_size, l2=0.0):
        require_device()
        cuda = _import_cuda()
        self._k = _build()
        self.layers = np.asarray(layers)
        self.loss = int(loss)
        self.optimizer = int(optimizer)
        self.batch_size = int(batch_size)
        self.l2 = float(l2)
        self.dtype = theta.dtype
        self.host = (theta, m, v, step)
        self.theta = cuda.to_device(theta)
        self.m = cuda.to_device(m)
        self.v = cuda.to_device(v)
        self.step = cuda.to_device(step)
        self.hyper = cuda.to_device(np.asarray(hyper, dtype=np.float64))
        self.grad = cuda.device_array_like(theta)
        self.saved = [cuda.device_array_like(a) for a in (theta, m, v, step)]
        n_layers = self.layers.shape[0]
        self.k = int(self.layers[n_layers - 1, D_OUT])
        self.W, self.b, self.gW, self.gb, self.Z, self.A, self.D, self.act = [], [], [], [], [], [], [], []
        for l in range(n_layers):
            d_in, d_out = int(self.layers[l, D_IN]), int(self.layers[l, D_OUT])
            w_off, b_off = int(self.layers[l, W_OFF]), int(self.layers[l, B_OFF])
            self.W.append(self.theta[w_off:w_off + d_in * d_out].reshape(d_in, d_out))
            self.b.append(self.theta[b_off:b_off + d_out])
            self.gW.append(self.grad[w_off:w_off + d_in * d_out].reshape(d_in, d_out))
            self.gb.append(self.grad[b_off:b_off + d_out])
            self.Z.append(cuda.device_array((self.batch_size, d_out), dtype=self.dtype))
            self.A.append(self.Z[-1] if l == n_layers - 1 else cuda.device_array((self.batch_size, d_out),
                                                                                  dtype=self.dtype))
            self.D.append(cuda.device_array((self.batch_size, d_out), dtype=self.dtype))
            self.act.append(int(self.layers[l, ACT]))
        d0 = int(self.layers[0, D_IN])
        self.xbuf = cuda.device_array((self.batch_size, d0), dtype=self.dtype)
        self.tbuf = cuda.device_array((self.batch_size, self.k), dtype=self.dtype)
        self.swbuf = cuda.device_array(self.batch_size, dtype=self.dtype)
        self.row_loss = cuda.device_array(self.batch_size, dtype=np.float64)
        self.row_correct = cuda.device_array(self.batch_size, dtype=np.float64)
        self.sq = cuda.to_device(np.zeros(1))
        self.stats = cuda.device_array(N_STATS, dtype=np.float64)
        self._data = None  # (host X, host T, host sw, device X, device T, device sw), kept between epochs

    def _device_data(self, X, T, sw):
        """Device copies of ``X, T, sw``, made once and reused while the same host arrays come back."""
        cached = self._data
        if cached is not None and cached[0] is X and cached[1] is T and cached[2] is sw:
            return cached[3:]
        cuda = _cuda
        sw_d = None if sw is None else cuda.to_device(np.ascontiguousarray(sw))
        self._data = (X, T, sw, cuda.to_device(X), cuda.to_device(T), sw_d)
        return self._data[3:]

    def run_epoch(self, X, T, order, sw=None):
        """One epoch over ``X[order]`` on the device.

        Parameters
        ----------
        X : ndarray, shape (n, d_in)
        T : ndarray, shape (n, k)
        order : ndarray of int64, shape (n,)
        sw : ndarray, shape (n,), optional
            Sample weights.

        Returns
        -------
        ndarray of float64, shape (N_STATS,)
            The epoch's statistics (``fastbp.kernels.epoch.S_*``): the only
            data copied back from the device.
        """
        cuda = _cuda
        k = self._k
        n = X.shape[0]
        bs = self.batch_size
        threads = _config.CUDA_THREADS
        X_d, T_d, sw_d = self._device_data(X, T, sw)
        order = np.ascontiguousarray(order, dtype=np.int64)
        in_order = bool(np.array_equal(order, np.arange(n)))
        order_d = None if in_order else cuda.to_device(order)
        if sw is not None:  # minibatch weight sums, in float64 and in order, as the CPU driver adds them
            weights = np.asarray(sw, dtype=np.float64)[order]
            wsums = [float(np.cumsum(weights[s:s + bs])[-1]) for s in range(0, n, bs)]
        for saved, live in zip(self.saved, (self.theta, self.m, self.v, self.step)):
            saved.copy_to_device(live)
        self.stats.copy_to_device(np.zeros(N_STATS))
        per_row = row_divisor(self.loss, self.k)  # the mean runs over rows * k elements for mse and BCE
        for batch, start in enumerate(range(0, n, bs)):
            nb = min(bs, n - start)
            wsum = float(nb) if sw is None else wsums[batch]
            if wsum == 0.0:  # nothing to learn from: counted as seen, no step
                k["batch_stats"][1, threads](self.row_loss, self.row_correct, 0, nb, 0.0, 0.0, self.sq, self.stats,
                                             self.step)
                continue
            if in_order:
                xb, tb = X_d[start:start + nb], T_d[start:start + nb]
                wb = None if sw_d is None else sw_d[start:start + nb]
            else:
                xb, tb = self.xbuf[:nb], self.tbuf[:nb]
                k["gather_rows"][_blocks(nb * xb.shape[1], threads), threads](X_d, order_d, start, nb, xb)
                k["gather_rows"][_blocks(nb * self.k, threads), threads](T_d, order_d, start, nb, tb)
                wb = None
                if sw_d is not None:
                    wb = self.swbuf[:nb]
                    k["gather_rows"][_blocks(nb, threads), threads](sw_d.reshape(n, 1), order_d, start, nb,
                                                                    wb.reshape(nb, 1))
            inp = xb
            for l in range(len(self.W)):
                launch_dense_forward(inp, self.W[l], self.b[l], self.act[l], self.Z[l][:nb], self.A[l][:nb])
                inp = self.A[l][:nb]
            divisor = wsum * per_row
            last = len(self.W) - 1
            launch_output_delta(self.Z[last][:nb], tb, self.swbuf if wb is None else wb, wb is not None, self.loss,
                                1.0 / divisor, self.D[last][:nb], self.row_loss, self.row_correct)
            for l in range(last, -1, -1):
                a_prev = xb if l == 0 else self.A[l - 1][:nb]
                launch_weight_gradient(a_prev, self.D[l][:nb], self.gW[l], self.gb[l])
                if l > 0:
                    launch_backprop_delta(self.D[l][:nb], self.W[l], self.Z[l - 1][:nb], a_prev, self.act[l - 1],
                                          self.D[l - 1][:nb])
            penalty = 0.0
            if self.l2 != 0.0:
                coef = self.dtype.type(self.l2 / wsum)
                for l in range(len(self.W)):
                    k["add_l2"][1, threads](self.W[l].reshape(self.W[l].size), self.gW[l].reshape(self.gW[l].size),
                                            coef, self.sq)
                penalty = 0.5 * self.l2 * per_row
            k["batch_stats"][1, threads](self.row_loss, self.row_correct, nb, 0, wsum, penalty, self.sq, self.stats,
                                         self.step)
            launch_optimizer_update(self.optimizer, self.theta, self.grad, self.m, self.v, self.hyper, self.step,
                                    self.stats)
        k["check_finite"][_blocks(self.theta.shape[0], threads), threads](self.theta, self.stats)
        stats = self.stats.copy_to_host()
        if stats[S_DIVERGED]:
            for saved, live in zip(self.saved, (self.theta, self.m, self.v, self.step)):
                live.copy_to_device(saved)
        return stats

    def fetch(self):
        """Copy the device parameters and optimizer state into the host arrays given at construction."""
        theta, m, v, step = self.host
        self.theta.copy_to_host(theta)
        self.m.copy_to_host(m)
        self.v.copy_to_host(v)
        self.step.copy_to_host(step)

    def push(self):
        """Copy the host arrays given at construction to the device (after they were changed on the host)."""
        for live, host in zip((self.theta, self.m, self.v, self.step), self.host):
            live.copy_to_device(host)
