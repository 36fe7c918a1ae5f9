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
``gbuf`` of shape ``(chunks, P)`` holds each chunk's gradient. ``wtbuf`` holds
the transposed weights of the narrow layers, written
at the start of every minibatch (:func:`transpose_weights`), which the
backward products read. Nothing is allocated per minibatch.

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

Every driver takes a last argument ``variant``, the activation, loss and
optimizer codes it is compiled to serve (:mod:`.variants`): the general
variant serves every network; a network's own compiles only its codes.

The trainers of :mod:`fastbp.training` are the only host code that calls
these drivers.
"""

import numpy as np
from numba import prange

from . import sparse
from .compile import jit, serial_and_parallel, specialised
from .dense import _backprop_delta, _dense_forward, _span, _weight_gradient
from .dropout import apply_mask
from .layout import (
    ACT,
    B_OFF,
    BACKWARD,
    BACKWARD_COPY_DELTAS,
    BACKWARD_COPY_WEIGHTS,
    D_IN,
    D_OUT,
    H_LR,
    S_CORRECT,
    S_DIVERGED,
    S_LOSS,
    S_SEEN,
    S_WEIGHT,
    W_OFF,
    WS_OFF,
    row_divisor,
)
from .losses import output_delta
from .updates import optimizer_step
from .variants import activation_code, activations_only, loss_code, optimizer_code, without_optimizers
from .views import borrowed, matrix_view

# Parameters per tile of the gradient sum and optimizer step: the chunk gradients of a tile are
# summed and the step applied while the tile is still in cache (8192 float32 = 32 KiB a vector).
_UPDATE_TILE = 8192
# The optional features of an epoch (per-step rates, clipping, dropout) are arguments that are either set or None.
# Numba compiles a specialisation for each combination and prunes the branches of an argument that is None, so an
# epoch without them compiles none of their code (which would lengthen every cold start).


@jit(inline="always")
def weights_view(theta, layers, l):
    """``W`` of layer ``l``, a ``(d_in, d_out)`` view of ``theta``."""
    d_in = layers[l, D_IN]
    d_out = layers[l, D_OUT]
    off = layers[l, W_OFF]
    return matrix_view(theta[off:off + d_in * d_out], d_in, d_out)


@jit(inline="always")
def transposed_weights(wt, layers, l):
    """Layer ``l``'s ``W.T``, flat, as kept in ``wt`` by :func:`transpose_weights`; empty for a layer whose
    backward product runs otherwise (see ``layout.BACKWARD``)."""
    off = layers[l, W_OFF] - layers[1, W_OFF]
    copied = layers[l, BACKWARD] == BACKWARD_COPY_WEIGHTS
    return wt[off:off + layers[l, D_IN] * layers[l, D_OUT] if copied else off]


@jit(inline="always")
def transposed_deltas(z, layers, l, rows):
    """Room for layer ``l``'s ``D.T`` when its backward product runs on that copy, else an empty vector.

    The room is the layer's own block of the ``Z`` workspace, ``rows * d_out``
    elements: once the backward pass reaches layer ``l``, its ``Z`` has served
    (the output delta, or the derivative in the layer above) and is not read
    again.
    """
    off = layers[l, WS_OFF]
    copied = layers[l, BACKWARD] == BACKWARD_COPY_DELTAS
    return z[off:off + rows * layers[l, D_OUT] if copied else off]


@jit
def transpose_weights(theta, layers, wt):
    """Write ``W.T`` of every layer but the first whose backward product runs on that copy into ``wt``.

    ``wt`` covers ``theta`` from the second layer's weights on
    (:meth:`fastbp.network.Network.transposed_width`); layer ``l``'s copy,
    ``(d_out, d_in)`` row-major, sits at the offset of its weights from
    there (a wide first layer takes no room). The backward pass
    multiplies by these copies (see :func:`.dense._backprop_delta`); the
    first layer's weights are never multiplied backwards. (Plain loops over
    the flat vectors: views here compiled for a fifth of a second.)
    """
    for l in range(1, layers.shape[0]):
        WT = transposed_weights(wt, layers, l)
        if WT.shape[0] > 0:
            d_in = layers[l, D_IN]
            d_out = layers[l, D_OUT]
            off = layers[l, W_OFF]
            W = theta[off:off + d_in * d_out]
            for j in range(d_out):
                for i in range(d_in):
                    WT[j * d_in + i] = W[i * d_out + j]


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


# ----------------------------------------------------------------------------- the input, dense
# The driver reads its first layer's input through these names. A dense X is a C-contiguous 2-D array; the
# driver's sparse variant (at the end of this module) is the same code with the names bound to the CSR helpers
# of .sparse. Two compiled variants, not one with a type switch: the dense one compiles no sparse code.
@jit(inline="always")
def n_samples(X):
    """Rows of ``X``."""
    return X.shape[0]


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


@jit(inline="always")
def take_rows(X, order, lo, hi, in_order, buf):
    """A chunk of the epoch's rows ``order[lo:hi]``: a view when they are consecutive, else gathered into ``buf``."""
    if in_order:
        return X[lo:hi]
    return gather_rows(X, order, lo, hi, buf)


@jit(inline="always")
def rows_in_order(X, rows, lo, hi):
    """Rows ``lo:hi`` of ``X`` (``rows`` is for the sparse variant)."""
    return X[lo:hi]


@jit(inline="always")
def chunk_rows(xv):
    """Rows of a chunk."""
    return xv.shape[0]


first_forward = _dense_forward
first_weight_gradient = _weight_gradient


# ----------------------------------------------------------------------------- the passes
@jit(inline="always")
def dropped_activations(al, d, layers, l, dropout, seed, step_no, row0):
    """Layer ``l``'s output as the next layer's input: ``al``, or its dropped copy in ``d`` when the layer drops."""
    if dropout is not None and dropout[l, 0] > 0.0:
        dropped = workspace_view(d, layers, l, al.shape[0])
        apply_mask(al, dropped, dropout[l, 0], dropout[l, 1], seed, step_no, row0, l)
        return dropped
    return al


@jit
def forward_chunk(xv, theta, layers, z, a, d, dropout, seed, step_no, row0, variant):
    """Forward pass of rows ``xv`` through every layer; the output layer's ``Z`` ends in its block of ``z``.

    ``dropout`` holds each layer's drop probability ``p`` and ``1 / (1 - p)``
    in a row, or is None for none (inference). A layer with ``p > 0`` keeps its activation ``A`` in ``a``
    (its derivative needs it) and writes the dropped activations, the next
    layer's input, into its block of ``d``, which the backward pass only
    overwrites after using them. The mask is drawn for optimizer step
    ``step_no`` and rows ``row0 + i`` (see :mod:`.dropout`).

    This pass and :func:`chunk_loss_and_grad` are compiled functions of
    their own, not inlined: an epoch, a prediction and a gradient call the
    same compiled passes, and the parallel epoch calls the serial epoch's.
    Their caller's arrays are its own or borrowed, and they borrow them again
    (see :func:`.views.borrowed`), so that their views count no references.
    """
    xv = borrowed(xv)
    theta = borrowed(theta)
    layers = borrowed(layers)
    z = borrowed(z)
    a = borrowed(a)
    d = borrowed(d)
    rows = chunk_rows(xv)
    n_layers = layers.shape[0]
    # The first layer on its own: its input may be sparse (in the sparse variant), the others' never is.
    al = workspace_view(a, layers, 0, rows)
    first_forward(xv, weights_view(theta, layers, 0), bias_view(theta, layers, 0),
                  activation_code(layers[0, ACT], variant),
                  workspace_view(z, layers, 0, rows), al)
    inp = dropped_activations(al, d, layers, 0, dropout, seed, step_no, row0)
    for l in range(1, n_layers):
        al = workspace_view(a, layers, l, rows)
        _dense_forward(inp, weights_view(theta, layers, l), bias_view(theta, layers, l),
                       activation_code(layers[l, ACT], variant),
                       workspace_view(z, layers, l, rows), al)
        inp = dropped_activations(al, d, layers, l, dropout, seed, step_no, row0)


@jit
def chunk_loss_and_grad(xv, tv, wv, theta, wt, layers, loss, scale, z, a, d, grad, out, dropout, seed, step_no,
                        row0, variant):
    """Forward and backward pass of one chunk of rows.

    Writes the chunk's gradient (already scaled by ``scale``, the minibatch's
    mean-reduction factor) into ``grad`` and ``[loss_sum, correct]`` into
    ``out``. ``wv`` holds the rows' sample weights, or is empty for none; the
    loss sum is then weighted too. ``dropout``, ``seed``, ``step_no`` and
    ``row0`` are as in :func:`forward_chunk`; a dropped layer's delta is
    masked as its activations were. ``wt`` holds the transposed weights
    written by :func:`transpose_weights` for this ``theta``.
    """
    xv = borrowed(xv)
    tv = borrowed(tv)
    wv = borrowed(wv)
    theta = borrowed(theta)
    wt = borrowed(wt)
    layers = borrowed(layers)
    z = borrowed(z)
    a = borrowed(a)
    d = borrowed(d)
    grad = borrowed(grad)
    out = borrowed(out)
    rows = chunk_rows(xv)
    n_layers = layers.shape[0]
    last = n_layers - 1
    forward_chunk(xv, theta, layers, z, a, d, dropout, seed, step_no, row0, activations_only(variant))
    zo = workspace_view(z, layers, last, rows)
    out_delta = workspace_view(d, layers, last, rows)
    total, correct = output_delta(zo, tv, wv, loss_code(loss, variant), scale, out_delta)
    out[0] = total
    out[1] = correct
    for l in range(last, 0, -1):
        dl = workspace_view(d, layers, l, rows)
        a_prev = workspace_view(a, layers, l - 1, rows)
        d_prev = workspace_view(d, layers, l - 1, rows)
        if dropout is not None and dropout[l - 1, 0] > 0.0:
            # the layer's input was the dropped activations below it, kept in d_prev until now
            _weight_gradient(d_prev, dl, weights_view(grad, layers, l), bias_view(grad, layers, l))
            _backprop_delta(dl, weights_view(theta, layers, l), workspace_view(z, layers, l - 1, rows),
                            a_prev, activation_code(layers[l - 1, ACT], variant), d_prev,
                            transposed_weights(wt, layers, l), transposed_deltas(z, layers, l, rows))
            apply_mask(d_prev, d_prev, dropout[l - 1, 0], dropout[l - 1, 1], seed, step_no, row0, l - 1)
        else:
            _weight_gradient(a_prev, dl, weights_view(grad, layers, l), bias_view(grad, layers, l))
            _backprop_delta(dl, weights_view(theta, layers, l), workspace_view(z, layers, l - 1, rows),
                            a_prev, activation_code(layers[l - 1, ACT], variant), d_prev,
                            transposed_weights(wt, layers, l), transposed_deltas(z, layers, l, rows))
    first_weight_gradient(xv, workspace_view(d, layers, 0, rows), weights_view(grad, layers, 0),
                          bias_view(grad, layers, 0))


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


def _train_epoch(X, T, sw, order, batch_size, theta, layers, loss, l2, xbuf, tbuf, swbuf, zbuf, abuf, dbuf, wtbuf,
                 gbuf, chunk_out, optimizer, hyper, m, v, step, stats, first, last, lrs, clip, dropout, seed, variant):
    """Run minibatches ``first`` to ``last - 1`` of an epoch in place (all of them: ``0, ceil(n / batch_size)``).

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
    wtbuf : ndarray, shape (Network.transposed_width(),)
        Workspace for the transposed weights of the narrow layers, written
        at the start of every minibatch (:func:`transpose_weights`).
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
        Weighted loss sum (with the penalty), correct count, samples seen,
        divergence flag, weight sum: this call's minibatches are added to
        them (the caller zeroes them when an epoch begins).
    first, last : int
        The range of minibatches to run, so that the host can run an epoch in
        several calls (and see progress, or an interrupt, between them).
    lrs : ndarray of float64, shape (last - first,), or None
        The learning rate of each minibatch of the call (a schedule stepped
        per optimizer step), or None to keep ``hyper``'s.
    clip : float or None
        ``torch.nn.utils.clip_grad_norm_``: the minibatch gradient is scaled
        by ``min(1, clip / (norm + 1e-6))``, ``norm`` its 2-norm over every
        parameter, before the step. None for no clipping.
    dropout : ndarray of float64, shape (L, 2), or None
        Each layer's dropout probability ``p`` (0 for the output layer) and
        ``1 / (1 - p)``, or None for no dropout.
    seed : int
        The dropout masks' seed (see :mod:`.dropout`).
    variant : Variant
        The activation, loss and optimizer codes this compilation serves
        (:mod:`.variants`): :data:`.variants.GENERAL` for every network, or
        the network's own, which compiles less code.
    """
    # Views of borrowed arrays count no references (see views.borrowed). lrs and dropout stay as they are: Numba
    # prunes their branches only while they are untouched arguments.
    X = borrowed(X)
    T = borrowed(T)
    sw = borrowed(sw)
    order = borrowed(order)
    theta = borrowed(theta)
    layers = borrowed(layers)
    xbuf = borrowed(xbuf)
    tbuf = borrowed(tbuf)
    swbuf = borrowed(swbuf)
    zbuf = borrowed(zbuf)
    abuf = borrowed(abuf)
    dbuf = borrowed(dbuf)
    wtbuf = borrowed(wtbuf)
    gbuf = borrowed(gbuf)
    chunk_out = borrowed(chunk_out)
    hyper = borrowed(hyper)
    m = borrowed(m)
    v = borrowed(v)
    step = borrowed(step)
    stats = borrowed(stats)
    n = n_samples(X)
    k = T.shape[1]
    chunks = gbuf.shape[0]
    n_params = theta.shape[0]
    row_lo = min(first * batch_size, n)
    row_hi = min(last * batch_size, n)
    in_order = True
    for i in range(row_lo, row_hi):
        if order[i] != i:
            in_order = False
            break
    weighted = sw.shape[0] > 0
    opt_code = optimizer_code(optimizer, variant)
    for start in range(row_lo, row_hi, batch_size):
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
        transpose_weights(theta, layers, wtbuf)
        for c in prange(chunks):
            lo, hi = _span(c, chunks, nb)
            if hi > lo:
                xv = take_rows(X, order, start + lo, start + hi, in_order, xbuf[c])
                if in_order:  # rows are already consecutive: use views, copy nothing
                    tv = T[start + lo:start + hi]
                    wv = sw[start + lo:start + hi] if weighted else sw
                else:
                    tv = gather_rows(T, order, start + lo, start + hi, tbuf[c])
                    wv = gather_values(sw, order, start + lo, start + hi, swbuf[c])
                chunk_loss_and_grad(xv, tv, wv, theta, wtbuf, layers, loss, scale, zbuf[c], abuf[c], dbuf[c], gbuf[c],
                                    chunk_out[c], dropout, seed, step[0] + 1, lo, without_optimizers(variant))
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
        if lrs is not None:
            hyper[H_LR] = lrs[(start - row_lo) // batch_size]
        if clip is not None:  # the norm needs every gradient before any step: two passes instead of one
            for s in prange(chunks):
                lo, hi = _span(s, chunks, n_params)
                total = gbuf[0, lo:hi]
                for c in range(1, chunks):
                    part = gbuf[c, lo:hi]
                    for p in range(hi - lo):
                        total[p] += part[p]
                squares = 0.0
                for p in range(hi - lo):
                    squares += float(total[p]) * float(total[p])
                chunk_out[s, 0] = squares  # the chunks' loss figures are added up already: free for the spans
            squares = 0.0
            for s in range(chunks):
                squares += chunk_out[s, 0]
            coef = clip / (np.sqrt(squares) + 1e-6)
            factor = theta.dtype.type(coef if coef < 1.0 else 1.0)  # torch: clamp(clip_coef, max=1)
            for s in prange(chunks):
                lo, hi = _span(s, chunks, n_params)
                total = gbuf[0, lo:hi]
                for p in range(hi - lo):
                    total[p] *= factor
                optimizer_step(opt_code, theta[lo:hi], total, m[lo:hi], v[lo:hi], hyper, t)
            continue
        for s in prange(chunks):
            lo, hi = _span(s, chunks, n_params)
            for tlo in range(lo, hi, _UPDATE_TILE):  # sum then step each tile while it is in cache
                thi = min(tlo + _UPDATE_TILE, hi)
                total = gbuf[0, tlo:thi]
                for c in range(1, chunks):
                    part = gbuf[c, tlo:thi]
                    for p in range(thi - tlo):
                        total[p] += part[p]
                optimizer_step(opt_code, theta[tlo:thi], total, m[tlo:thi], v[tlo:thi], hyper, t)


train_epoch, train_epoch_parallel = serial_and_parallel(_train_epoch)


@jit
def loss_and_grad(X, rows, T, sw, theta, layers, loss, l2, zbuf, abuf, dbuf, wtbuf, grad, variant):
    """Mean loss of the whole batch ``X, T`` and its gradient, written into ``grad``.

    ``X`` is dense or CSR (see :mod:`.inputs`); ``rows`` holds its row
    indices ``0..n-1`` when sparse (it is not read when dense). ``sw`` holds
    sample weights (or is empty), ``l2`` the weight penalty and ``variant``
    the codes served, as in :func:`train_epoch`. The workspaces are single
    rows of width ``n * sum(d_out)``, and ``wtbuf`` is as in
    :func:`train_epoch`. Returns the mean loss (float64, with the penalty)
    and the number of correct predictions.
    """
    X = borrowed(X)
    rows = borrowed(rows)
    T = borrowed(T)
    sw = borrowed(sw)
    theta = borrowed(theta)
    layers = borrowed(layers)
    zbuf = borrowed(zbuf)
    abuf = borrowed(abuf)
    dbuf = borrowed(dbuf)
    wtbuf = borrowed(wtbuf)
    grad = borrowed(grad)
    n = n_samples(X)
    xv = rows_in_order(X, rows, 0, n)
    wsum = float(n)
    if sw.shape[0] > 0:
        wsum = 0.0
        for i in range(sw.shape[0]):
            wsum += float(sw[i])
    divisor = wsum * row_divisor(loss, T.shape[1])
    out = np.zeros(2)
    transpose_weights(theta, layers, wtbuf)
    zero = np.int64(0)  # not the literal 0: the call then shares the compiled pass of an epoch
    chunk_loss_and_grad(xv, T, sw, theta, wtbuf, layers, loss, theta.dtype.type(1.0 / divisor), zbuf, abuf, dbuf, grad,
                        out, None, zero, zero, zero, without_optimizers(variant))
    total = out[0] / divisor
    if l2 != 0.0:
        total += 0.5 * l2 * add_l2(theta, layers, theta.dtype.type(l2 / wsum), grad) / wsum
    return total, out[1]


@jit
def predict_raw(X, rows, theta, layers, block, zbuf, abuf, out, variant):
    """Output-layer pre-activations of ``X``, computed ``block`` rows at a time into ``out``.

    ``X``, ``rows`` and ``variant`` are as in :func:`loss_and_grad` (only
    the activations of ``variant`` matter here). ``zbuf`` and ``abuf`` are
    workspaces of ``block * sum(d_out)`` elements.
    """
    X = borrowed(X)
    rows = borrowed(rows)
    theta = borrowed(theta)
    layers = borrowed(layers)
    zbuf = borrowed(zbuf)
    abuf = borrowed(abuf)
    out = borrowed(out)
    n = n_samples(X)
    zero = np.int64(0)  # not the literal 0: the call then shares the compiled forward pass of an epoch
    for start in range(0, n, block):
        stop = min(start + block, n)
        xv = rows_in_order(X, rows, start, stop)
        forward_chunk(xv, theta, layers, zbuf, abuf, abuf, None, zero, zero, zero, activations_only(variant))
        zo = workspace_view(zbuf, layers, layers.shape[0] - 1, stop - start)
        # Copied element by element: a slice assignment ``out[start:stop] = zo`` compiles Numba's shape-mismatch
        # message, string formatting included, which lengthens the cold start of every process that predicts.
        for r in range(stop - start):
            src = zo[r]
            dst = out[start + r]
            for j in range(src.shape[0]):
                dst[j] = src[j]


# ----------------------------------------------------------------------------- the sparse variant
def _with_sparse_input(func):
    """A copy of the Python function ``func`` that reads a CSR first-layer input (see .sparse)."""
    return specialised(func, "_sparse", **{name: getattr(sparse, name) for name in sparse.DRIVER_INPUTS},
                       **_SPARSE_PASSES)


_SPARSE_PASSES = {}
_SPARSE_PASSES["forward_chunk"] = jit(_with_sparse_input(forward_chunk.py_func))
_SPARSE_PASSES["chunk_loss_and_grad"] = jit(_with_sparse_input(chunk_loss_and_grad.py_func))
#: ``train_epoch`` and the rest for ``X = (indptr, indices, data)``, a CSR matrix (int64 indices).
train_epoch_sparse, train_epoch_sparse_parallel = serial_and_parallel(_with_sparse_input(_train_epoch))
loss_and_grad_sparse = jit(_with_sparse_input(loss_and_grad.py_func))
predict_raw_sparse = jit(_with_sparse_input(predict_raw.py_func))
