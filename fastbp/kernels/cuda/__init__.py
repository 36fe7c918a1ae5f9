"""CUDA twins of the kernels, and the device-resident training loop.

This package is the only part of fastbp that imports ``numba.cuda`` (the
``numba-cuda`` package, installed by ``pip install fastbp[cuda]``), and it does
so only when a CUDA kernel or the CUDA backend is first asked for: importing
this package, or :mod:`fastbp`, needs neither numba-cuda nor a GPU. The
probes below are imported eagerly; every other name is loaded on first use.

Modules: :mod:`.device` (is numba-cuda installed, is a GPU usable, compile
options), :mod:`.shared_math` (the CPU's activation, loss and optimizer math
compiled again as device functions), :mod:`.bodies` (the kernel bodies),
:mod:`.launch` (the compiled kernels and their host wrappers) and
:mod:`.loop` (:class:`DeviceEpochs`, the device-resident training loop).

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
configuration from ``fastbp._settings`` (``CUDA_TILE``, ``CUDA_THREADS``, read
from ``FASTBP_CUDA_TILE`` and ``FASTBP_CUDA_THREADS``).

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

import importlib

from .device import (
    INSTALL_HINT,
    CudaUnavailableError,
    device_problem,
    real_device_available,
    require_device,
    simulator_enabled,
)

#: The compiled CUDA kernels, by name (loaded from :mod:`.launch` on first use).
KERNEL_NAMES = ("dense_forward", "backprop_delta", "weight_gradient", "output_delta", "optimizer_update",
                "gather_rows", "batch_stats", "add_l2", "check_finite")

_LAZY = {
    "compiled_kernels": "launch",
    "kernel_bodies": "launch",
    "launch_dense_forward": "launch",
    "launch_backprop_delta": "launch",
    "launch_weight_gradient": "launch",
    "launch_output_delta": "launch",
    "launch_optimizer_update": "launch",
    "DeviceEpochs": "loop",
}

__all__ = ["INSTALL_HINT", "KERNEL_NAMES", "CudaUnavailableError", "device_problem", "real_device_available",
           "require_device", "simulator_enabled", *_LAZY, *KERNEL_NAMES]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    if name in KERNEL_NAMES:
        return importlib.import_module(f"{__name__}.launch").compiled_kernels()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY) + list(KERNEL_NAMES))
