"""The compiled CUDA kernels and their host-side launch wrappers.

The wrappers check shapes and dtypes and choose the launch configuration from
:mod:`fastbp._settings` (``CUDA_TILE``, ``CUDA_THREADS``).
"""

import numpy as np

from ... import _settings
from .bodies import BODIES
from .device import import_cuda, jit_options

_kernels = None  # name -> compiled kernel, once built


def compiled_kernels():
    """Every CUDA kernel, compiled-on-first-launch (``numba.cuda`` dispatchers), by name.

    Returns
    -------
    dict of str to dispatcher
    """
    global _kernels
    if _kernels is None:
        cuda = import_cuda()
        _kernels = {name: cuda.jit(**jit_options())(body) for name, body in BODIES.items()}
    return _kernels


def kernel_bodies():
    """The Python bodies of the CUDA kernels by name, for compiling them elsewhere (e.g. ``compile_ptx``).

    Returns
    -------
    dict of str to function
    """
    return dict(BODIES)


def _ceil_div(count, size):
    """Blocks of ``size`` threads that cover ``count`` items (at least one)."""
    return max(1, -(-count // size))


def _launch_tiled(name, grid_x, grid_y, stream, *args):
    """Launch kernel ``name`` on ``CUDA_TILE x CUDA_TILE`` blocks covering ``grid_x x grid_y`` elements."""
    if grid_x == 0 or grid_y == 0:
        return
    tile = _settings.CUDA_TILE
    compiled_kernels()[name][(_ceil_div(grid_x, tile), _ceil_div(grid_y, tile)), (tile, tile), stream](*args)


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
    _launch_tiled("dense_forward", n, d_out, stream, X, W, b, act, Z, A)


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
    _launch_tiled("backprop_delta", n, d, stream, D_next, W_next, Z, A, act, D)


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
    _launch_tiled("weight_gradient", d_out, d_in, stream, A_prev, D, gW, gb)


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
    threads = _settings.CUDA_THREADS
    compiled_kernels()["output_delta"][_ceil_div(n, threads), threads, stream](
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
    threads = _settings.CUDA_THREADS
    compiled_kernels()["optimizer_update"][_ceil_div(n, threads), threads, stream](code, theta, g, m, v, hyper, step,
                                                                                 stats)
