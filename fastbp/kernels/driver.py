"""The compiled training drivers: a whole epoch, one batch's gradient, a forward pass.

A network is described by a flat parameter vector ``theta`` and an int64
layer table ``layers`` of shape ``(L, N_COLS)`` (its columns are defined in
:mod:`.layout`): row ``l`` holds the layer's widths, the offsets of its
weights (row-major ``(d_in, d_out)``) and bias in ``theta``, its activation
code and the offset of its block in the per-chunk workspaces.

Workspaces are flat 2-D arrays with one row per chunk (thread): ``zbuf``,
``abuf`` and ``dbuf`` of width ``rows_max * sum(d_out)`` hold the
pre-activations, activations and deltas of every layer; ``xbuf`` and ``tbuf``
hold the gathered input and target rows, ``swbuf`` their sample weights;
``gbuf`` of shape ``(chunks, P)`` holds each chunk's gradient. Nothing is
allocated per minibatch.

Sample weights ``sw`` (one per sample, or an empty array for none) make a
minibatch's loss the weighted mean ``sum_i w_i J_i / sum_i w_i``: each row's
output delta is multiplied by its weight and the mean divides by the
minibatch's weight sum instead of its row count. An ``l2`` penalty adds
``l2 / 2 * sum(W**2) / sum_i w_i`` to each minibatch's loss (weights only,
not biases; scikit-learn's ``alpha``), so ``l2 * W / sum_i w_i`` to the
weight gradients.

``train_epoch`` splits every minibatch into ``chunks`` contiguous row ranges.
Each chunk runs forward, loss, deltas and gradients on its own workspaces;
the chunk gradients are then summed in chunk order (so the result does not
depend on thread timing) and the optimizer step is applied, both split over
the parameter vector and done tile by tile, so that each tile is summed and
stepped while it is in cache. ``train_epoch`` is serial with one chunk;
``train_epoch_parallel``, compiled from the same body, runs the chunks and
the parameter spans on threads.

The trainers of :mod:`fastbp.training` are the only host code that calls
these drivers.
"""

import numpy as np
from numba import prange

from .compile import jit, serial_and_parallel
from .dense import _span, backprop_delta, dense_forward, weight_gradient
from .layout import (
    ACT,
    B_OFF,
    D_IN,
    D_OUT,
    N_STATS,
    S_CORRECT,
    S_DIVERGED,
    S_LOSS,
    S_SEEN,
    S_WEIGHT,
    SOFTMAX_CROSS_ENTROPY,
    W_OFF,
    WS_OFF,
    row_divisor,
)
from .losses import count_correct_row, loss_row, softmax_rows
from .updates import update
from .views import matrix_view

# Parameters per tile of the gradient sum and optimizer step: the chunk gradients of a tile are
# summed and the step applied while the tile is still in cache (8192 float32 = 32 KiB a vector).
_UPDATE_TILE = 8192


@jit(inline="always")
def weights_view(theta, layers, l):
    """``W`` of layer ``l``, a ``(d_in, d_out)`` view of ``theta``."""
    d_in = layers[l, D_IN]
    d_out = layers[l, D_OUT]
    off = layers[l, W_OFF]
    return matrix_view(theta[off:off + d_in * d_out], d_in, d_out)


@jit(inline="always")
def bias_view(theta, layers, l):
    """``b`` of layer ``l``, a ``(d_out,)`` view of ``theta``."""
    off = layers[l, B_OFF]
    return theta[off:off + layers[l, D_OUT]]


@jit(inline="always")
def workspace_view(buf, layers, l, rows):
    """Layer ``l``'s ``(rows, d_out)`` block of one chunk's workspace row ``buf``."""
    d_out = layers[l, D_OUT]
    off = layers[l, WS_OFF]
    return matrix_view(buf[off:off + rows * d_out], rows, d_out)


@jit(inline="always")
def forward_chunk(xv, theta, layers, z, a):
    """Forward pass of rows ``xv`` through every layer; returns the output ``Z`` view."""
    rows = xv.shape[0]
    n_layers = layers.shape[0]
    inp = xv
    for l in range(n_layers):
        zl = workspace_view(z, layers, l, rows)
        al = workspace_view(a, layers, l, rows)
        dense_forward(inp, weights_view(theta, layers, l), bias_view(theta, layers, l), layers[l, ACT], zl, al)
        inp = al
    return workspace_view(z, layers, n_layers - 1, rows)


@jit(inline="always")
def chunk_loss_and_grad(xv, tv, wv, theta, layers, loss, scale, z, a, d, grad, out):
    """Forward and backward pass of one chunk of rows.

    Writes the chunk's gradient (already scaled by ``scale``, the minibatch's
    mean-reduction factor) into ``grad`` and ``[loss_sum, correct]`` into
    ``out``. ``wv`` holds the rows' sample weights, or is empty for none; the
    loss sum is then weighted too.
    """
    rows = xv.shape[0]
    n_layers = layers.shape[0]
    last = n_layers - 1
    zo = forward_chunk(xv, theta, layers, z, a)
    out_delta = workspace_view(d, layers, last, rows)
    if loss == SOFTMAX_CROSS_ENTROPY:
        total, correct = softmax_rows(zo, tv, wv, scale, out_delta)
    else:
        total = 0.0
        correct = 0
        weighted = wv.shape[0] > 0
        w = theta.dtype.type(1.0)
        for i in range(rows):
            if weighted:
                w = wv[i]
            total += float(w) * loss_row(zo[i], tv[i], loss, scale * w, out_delta[i])
            correct += count_correct_row(zo[i], tv[i], loss)
    out[0] = total
    out[1] = correct
    for l in range(last, -1, -1):
        dl = workspace_view(d, layers, l, rows)
        a_prev = xv if l == 0 else workspace_view(a, layers, l - 1, rows)
        weight_gradient(a_prev, dl, weights_view(grad, layers, l), bias_view(grad, layers, l))
        if l > 0:
            backprop_delta(dl, weights_view(theta, layers, l), workspace_view(z, layers, l - 1, rows),
                           a_prev, layers[l - 1, ACT], workspace_view(d, layers, l - 1, rows))


@jit(inline="always")
def gather_rows(src, order, lo, hi, buf):
    """Copy rows ``src[order[lo:hi]]`` into the front of the flat buffer ``buf``; return that view."""
    rows = hi - lo
    width = src.shape[1]
    view = matrix_view(buf, rows, width)
    for r in range(rows):
        s = src[order[lo + r]]
        v = view[r]
        for j in range(width):
            v[j] = s[j]
    return view


@jit(inline="always")
def gather_values(src, order, lo, hi, buf):
    """Copy ``src[order[lo:hi]]`` into the front of ``buf`` and return that view; empty ``src`` stays empty."""
    if src.shape[0] == 0:
        return src
    view = buf[:hi - lo]
    for r in range(hi - lo):
        view[r] = src[order[lo + r]]
    return view


@jit
def add_l2(theta, layers, l2_scaled, grad):
    """``grad += l2_scaled * W`` for every layer's weights (not biases); returns ``sum(W**2)`` in float64."""
    squares = 0.0
    for l in range(layers.shape[0]):
        off = layers[l, W_OFF]
        size = layers[l, D_IN] * layers[l, D_OUT]
        w = theta[off:off + size]
        g = grad[off:off + size]
        for p in range(size):
            g[p] += l2_scaled * w[p]
            squares += float(w[p]) * float(w[p])
    return squares


def train_epoch(X, T, sw, order, batch_size, theta, layers, loss, l2, xbuf, tbuf, swbuf, zbuf, abuf, dbuf, gbuf,
                chunk_out, optimizer, hyper, m, v, step, stats):
    """Run one epoch of minibatch training in place.

    Parameters
    ----------
    X : ndarray, shape (n, d_in)
    T : ndarray, shape (n, k)
        Targets as rows (one-hot for softmax cross-entropy with labels).
    sw : ndarray, shape (n,) or (0,)
        Non-negative sample weights, or an empty array for unweighted
        training. A minibatch whose weights sum to zero is skipped.
    order : ndarray of int64, shape (n,)
        The order in which samples are visited; minibatches are consecutive
        slices of it and the last one may be partial.
    batch_size : int
    theta : ndarray, shape (P,)
        Parameters, updated in place.
    layers : ndarray of int64, shape (L, N_COLS)
    loss : int
        Loss code.
    l2 : float
        L2 penalty on the weights (see the module docstring); 0 for none.
    xbuf, tbuf, swbuf, zbuf, abuf, dbuf : ndarray, shape (chunks, ...)
        Workspaces (see the module docstring).
    gbuf : ndarray, shape (chunks, P)
        Per-chunk gradients; ``gbuf[0]`` ends up holding the minibatch
        gradient, the chunk gradients summed in chunk order.
    chunk_out : ndarray of float64, shape (chunks, 2)
        Per-chunk loss sum and correct count.
    optimizer : int
        Optimizer code (``layout.SGD``, ``ADAM`` or ``ADAMW``).
    hyper : ndarray of float64
        Optimizer hyperparameters.
    m, v : ndarray, shape (P,)
        Optimizer state, updated in place.
    step : ndarray of int64, shape (1,)
        Optimizer step counter, incremented per minibatch.
    stats : ndarray of float64, shape (N_STATS,)
        Output: weighted loss sum (with the penalty), correct count, samples
        seen, divergence flag, weight sum.
    """
    n = X.shape[0]
    k = T.shape[1]
    chunks = gbuf.shape[0]
    n_params = theta.shape[0]
    for j in range(N_STATS):
        stats[j] = 0.0
    in_order = True
    for i in range(n):
        if order[i] != i:
            in_order = False
            break
    weighted = sw.shape[0] > 0
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        wsum = float(nb)
        if weighted:
            wsum = 0.0
            for i in range(start, start + nb):
                wsum += float(sw[order[i]])
            if wsum == 0.0:  # nothing to learn from: no step
                stats[S_SEEN] += nb
                continue
        scale = theta.dtype.type(1.0 / (wsum * row_divisor(loss, k)))
        for c in prange(chunks):
            lo, hi = _span(c, chunks, nb)
            if hi > lo:
                if in_order:  # rows are already consecutive: use views, copy nothing
                    xv = X[start + lo:start + hi]
                    tv = T[start + lo:start + hi]
                    wv = sw[start + lo:start + hi] if weighted else sw
                else:
                    xv = gather_rows(X, order, start + lo, start + hi, xbuf[c])
                    tv = gather_rows(T, order, start + lo, start + hi, tbuf[c])
                    wv = gather_values(sw, order, start + lo, start + hi, swbuf[c])
                chunk_loss_and_grad(xv, tv, wv, theta, layers, loss, scale, zbuf[c], abuf[c], dbuf[c], gbuf[c],
                                    chunk_out[c])
            else:
                gbuf[c, :] = 0
                chunk_out[c, 0] = 0.0
                chunk_out[c, 1] = 0.0
        batch_loss = 0.0
        batch_correct = 0.0
        for c in range(chunks):
            batch_loss += chunk_out[c, 0]
            batch_correct += chunk_out[c, 1]
        if l2 != 0.0:
            squares = add_l2(theta, layers, theta.dtype.type(l2 / wsum), gbuf[0])
            batch_loss += 0.5 * l2 * squares * row_divisor(loss, k)
        if not np.isfinite(batch_loss):
            stats[S_DIVERGED] = 1.0
            return
        stats[S_LOSS] += batch_loss
        stats[S_CORRECT] += batch_correct
        stats[S_SEEN] += nb
        stats[S_WEIGHT] += wsum
        step[0] += 1
        t = step[0]
        for s in prange(chunks):
            lo, hi = _span(s, chunks, n_params)
            for tlo in range(lo, hi, _UPDATE_TILE):  # sum then step each tile while it is in cache
                thi = min(tlo + _UPDATE_TILE, hi)
                total = gbuf[0, tlo:thi]
                for c in range(1, chunks):
                    part = gbuf[c, tlo:thi]
                    for p in range(thi - tlo):
                        total[p] += part[p]
                update(optimizer, theta[tlo:thi], total, m[tlo:thi], v[tlo:thi], hyper, t)


train_epoch, train_epoch_parallel = serial_and_parallel(train_epoch)


@jit
def loss_and_grad(X, T, sw, theta, layers, loss, l2, zbuf, abuf, dbuf, grad):
    """Mean loss of the whole batch ``X, T`` and its gradient, written into ``grad``.

    ``sw`` holds sample weights (or is empty) and ``l2`` the weight penalty,
    as in :func:`train_epoch`. The workspaces are single rows of width
    ``n * sum(d_out)``. Returns the mean loss (float64, with the penalty) and
    the number of correct predictions.
    """
    wsum = float(X.shape[0])
    if sw.shape[0] > 0:
        wsum = 0.0
        for i in range(sw.shape[0]):
            wsum += float(sw[i])
    divisor = wsum * row_divisor(loss, T.shape[1])
    out = np.zeros(2)
    chunk_loss_and_grad(X, T, sw, theta, layers, loss, theta.dtype.type(1.0 / divisor), zbuf, abuf, dbuf, grad, out)
    total = out[0] / divisor
    if l2 != 0.0:
        total += 0.5 * l2 * add_l2(theta, layers, theta.dtype.type(l2 / wsum), grad) / wsum
    return total, out[1]


@jit
def predict_raw(X, theta, layers, block, zbuf, abuf, out):
    """Output-layer pre-activations of ``X``, computed ``block`` rows at a time into ``out``.

    ``zbuf`` and ``abuf`` are workspaces of ``block * sum(d_out)`` elements.
    """
    n = X.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        zo = forward_chunk(X[start:stop], theta, layers, zbuf, abuf)
        # Copied element by element: a slice assignment ``out[start:stop] = zo`` compiles Numba's shape-mismatch
        # message, string formatting included, which lengthens the cold start of every process that predicts.
        for r in range(stop - start):
            src = zo[r]
            dst = out[start + r]
            for j in range(src.shape[0]):
                dst[j] = src[j]
