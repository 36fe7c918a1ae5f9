"""The Python bodies of the CUDA kernels (see :mod:`fastbp.kernels.cuda` for what each computes).

Importing this module imports ``numba.cuda``. The block sizes are read from
:mod:`fastbp._settings` at import; Numba reads them, and the shared device
functions, as compile-time constants.
"""

import math

import numpy as np

from ... import _settings
from ..layout import S_CORRECT, S_DIVERGED, S_LOSS, S_SEEN, S_WEIGHT
from .device import import_cuda
from .shared_math import activation_derivative as _activation_derivative
from .shared_math import activation_value as _activation_value
from .shared_math import count_correct_row as _count_correct_row
from .shared_math import loss_row as _loss_row
from .shared_math import update as _update

cuda = import_cuda()
_TILE = _settings.CUDA_TILE
_PAD = _TILE + 1  # the transposed tile of backprop_delta is padded by a column: no shared-memory bank conflicts
_THREADS = _settings.CUDA_THREADS


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


#: The kernel bodies by kernel name.
BODIES = {"dense_forward": _dense_forward, "backprop_delta": _backprop_delta, "weight_gradient": _weight_gradient,
          "output_delta": _output_delta, "optimizer_update": _optimizer_update, "gather_rows": _gather_rows,
          "batch_stats": _batch_stats, "add_l2": _add_l2, "check_finite": _check_finite}
