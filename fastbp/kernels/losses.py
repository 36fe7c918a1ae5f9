"""Losses: the loss value of an output row and its delta ``dJ/dZ``.

The output layer is linear; the loss applies the sigmoid or softmax itself.
Values follow PyTorch with mean reduction (the loss codes are in :mod:`.layout`):

- ``MSE``: ``torch.nn.MSELoss()``, ``J = sum((z - t)**2) / (n * k)``.
- ``BINARY_CROSS_ENTROPY``: ``torch.nn.BCEWithLogitsLoss()``, mean over all
  ``n * k`` elements of ``max(z, 0) - z t + log1p(exp(-|z|))``.
- ``SOFTMAX_CROSS_ENTROPY``: ``torch.nn.CrossEntropyLoss()`` with probability
  (or one-hot) targets, ``J = sum_i (logsumexp(z_i) sum_c t_ic - sum_c t_ic z_ic) / n``.
- ``POISSON``: ``torch.nn.PoissonNLLLoss(log_input=True, full=False)``, the
  output is the log of the mean: ``J = sum(exp(z) - t z) / (n k)``.

The deltas: for mean squared error ``2 (z - t) / (n k)``; for poisson
``(exp(z) - t) / (n k)`` (exp is the canonical link of the Poisson deviance). For the two
cross-entropies the sigmoid/softmax and the log cancel, which is why the delta
is simply ``output - target`` (scaled by ``1/(n k)`` or ``1/n``): this holds
because each loss is paired with its canonical link, sigmoid with binary
cross-entropy and softmax with categorical cross-entropy. For softmax targets
whose row does not sum to one, the exact delta ``softmax(z) sum_c t_c - t`` is used.

:func:`loss_row` and :func:`count_correct_row` work on one row (the CUDA
kernels call them per thread); :func:`softmax_rows` does both for a block of
softmax rows at once, with one logarithm for many rows (the CPU driver's path).
"""

import math

from numba.extending import overload

from .activations import like
from .compile import jit
from .fastmath import fast_exp
from .layout import BINARY_CROSS_ENTROPY, MSE, POISSON, SOFTMAX_CROSS_ENTROPY
from .variants import ALL_LOSSES, code_value, served_codes
from .views import flat_view


@jit
def loss_row(z, t, code, scale, d):
    """Loss of one output row and its delta.

    Parameters
    ----------
    z : ndarray, shape (k,)
        The output layer's pre-activation (logits for the cross-entropies).
    t : ndarray, shape (k,)
        Targets: values (mse), 0/1 or probabilities (binary cross-entropy),
        one-hot or probability rows (softmax cross-entropy).
    code : int
        ``MSE``, ``BINARY_CROSS_ENTROPY`` or ``SOFTMAX_CROSS_ENTROPY``.
    scale : float
        The mean-reduction factor, ``1/(n k)`` or ``1/n`` for the whole minibatch.
    d : ndarray, shape (k,)
        Output: ``scale * dJ_row/dz``.

    Returns
    -------
    float
        The row's unscaled loss sum, in float64.
    """
    k = z.shape[0]
    total = 0.0
    if code == MSE:
        two_scale = like(z, 2.0) * scale
        for j in range(k):
            r = z[j] - t[j]
            total += float(r * r)
            d[j] = two_scale * r
    elif code == BINARY_CROSS_ENTROPY:
        one = like(z, 1.0)
        zero = like(z, 0.0)
        for j in range(k):
            zj = z[j]
            total += float((zj if zj > zero else zero) - zj * t[j] + math.log1p(math.exp(-abs(zj))))
            d[j] = scale * (one / (one + fast_exp(-zj)) - t[j])
    elif code == POISSON:
        for j in range(k):
            ez = math.exp(z[j])
            total += float(ez) - float(t[j]) * float(z[j])
            d[j] = scale * (ez - t[j])
    else:
        part, s, tsum, _ = softmax_row_parts(z, t, scale, d)
        total = part + float(tsum) * math.log(float(s))
    return total


@jit(inline="always")
def softmax_row_parts(z, t, scale, d):
    """Softmax cross-entropy of one row, all but its logarithm.

    Writes the delta ``d = scale * (softmax(z) sum(t) - t)`` and returns
    ``(part, s, tsum, best)``: with ``m = max(z)``, ``s = sum(exp(z - m))`` and
    ``tsum = sum(t)``, the row's loss is ``part + tsum * log(s)``, where
    ``part = m * tsum - t . z`` (float64); ``best`` is the first index of ``max(z)``.
    """
    k = z.shape[0]
    m = z[0]
    best = 0
    for j in range(1, k):
        if z[j] > m:
            m = z[j]
            best = j
    s = like(z, 0.0)
    tsum = like(z, 0.0)
    tz = 0.0
    for j in range(k):
        e = fast_exp(z[j] - m)
        d[j] = e
        s += e
        tsum += t[j]
        tz += float(t[j]) * float(z[j])
    inv = like(z, 1.0) / s
    for j in range(k):
        d[j] = scale * (d[j] * inv * tsum - t[j])
    return float(m) * float(tsum) - tz, s, tsum, best


# A running product of softmax sums is folded into the loss by one log once it passes this; each
# factor is at most k (< 3.5e38 in float32), so the product stays finite in float64.
_PRODUCT_LIMIT = 1e250


@jit
def softmax_rows(Z, T, sw, scale, D):
    """Softmax cross-entropy of a block of output rows: deltas, loss and correct predictions.

    Row by row the same as :func:`loss_row` and :func:`count_correct_row` with
    ``SOFTMAX_CROSS_ENTROPY``, each row's delta scaled by ``scale * sw[i]`` and
    its loss weighted by ``sw[i]`` (``sw`` empty: weights of 1), to the last
    bit. The rows whose loss carries the factor 1 on ``log(s)`` (one-hot or
    normalised targets, unweighted) share one logarithm, ``sum_i log(s_i) =
    log(prod_i s_i)``: on narrow outputs a ``log`` per row is a large part of
    the step.

    The exponentials are taken in a pass of their own, one flat loop over the
    whole block (``D`` holds ``z - max(z)`` before it, ``exp(z - max(z))``
    after), which LLVM vectorises; taken row by row, as :func:`softmax_row_parts`
    does, a row of 2 or 10 outputs leaves them scalar. ``D`` must not be ``Z``.

    Returns
    -------
    total : float
        The weighted sum of the rows' unscaled losses, in float64.
    correct : int
    """
    n = Z.shape[0]
    k = Z.shape[1]
    for i in range(n):
        z = Z[i]
        d = D[i]
        m = z[0]
        for j in range(1, k):
            if z[j] > m:
                m = z[j]
        for j in range(k):
            d[j] = z[j] - m
    flat = flat_view(D)
    for p in range(n * k):
        flat[p] = fast_exp(flat[p])
    weighted = sw.shape[0] > 0
    w = like(Z, 1.0)
    total = 0.0
    correct = 0
    product = 1.0
    for i in range(n):
        if weighted:
            w = sw[i]
        z = Z[i]
        t = T[i]
        d = D[i]
        best = 0
        target = 0
        for j in range(1, k):
            if z[j] > z[best]:
                best = j
            if t[j] > t[target]:
                target = j
        if best == target:
            correct += 1
        s = like(Z, 0.0)
        tsum = like(Z, 0.0)
        tz = 0.0
        for j in range(k):
            s += d[j]
            tsum += t[j]
            tz += float(t[j]) * float(z[j])
        inv = like(Z, 1.0) / s
        row_scale = scale * w
        for j in range(k):
            d[j] = row_scale * (d[j] * inv * tsum - t[j])
        total += float(w) * (float(z[best]) * float(tsum) - tz)
        factor = float(w) * float(tsum)
        if factor == 1.0:
            product *= float(s)
            if product > _PRODUCT_LIMIT:
                total += math.log(product)
                product = 1.0
        else:
            total += factor * math.log(float(s))
    return total + math.log(product), correct


@jit
def count_correct_row(z, t, code):
    """Number of correct predictions in one output row.

    Softmax cross-entropy: 1 when ``argmax(z) == argmax(t)``. Binary
    cross-entropy: the number of elements where ``(z > 0) == (t > 0.5)``.
    Mean squared error: 0 (no accuracy).
    """
    k = z.shape[0]
    if code == SOFTMAX_CROSS_ENTROPY:
        bz = 0
        bt = 0
        for j in range(1, k):
            if z[j] > z[bz]:
                bz = j
            if t[j] > t[bt]:
                bt = j
        return 1 if bz == bt else 0
    if code == BINARY_CROSS_ENTROPY:
        c = 0
        for j in range(k):
            if (z[j] > like(z, 0.0)) == (t[j] > like(t, 0.5)):
                c += 1
        return c
    return 0


@jit
def row_losses(Z, T, sw, code, scale, D):
    """:func:`loss_row` and :func:`count_correct_row` over a block of output rows, as :func:`softmax_rows` does.

    Each row's delta is scaled by ``scale * sw[i]`` and its loss weighted by
    ``sw[i]`` (``sw`` empty: weights of 1). Returns the weighted loss sum
    (float64) and the correct count.
    """
    total = 0.0
    correct = 0
    weighted = sw.shape[0] > 0
    w = like(Z, 1.0)
    for i in range(Z.shape[0]):
        if weighted:
            w = sw[i]
        total += float(w) * loss_row(Z[i], T[i], code, scale * w, D[i])
        correct += count_correct_row(Z[i], T[i], code)
    return total, correct


def output_delta(Z, T, sw, code, scale, D):
    """The output rows' deltas into ``D``; returns their weighted loss sum and correct count (compiled code only).

    Softmax cross-entropy goes to :func:`softmax_rows`, the other losses to
    :func:`row_losses`. A loss code tagged by :func:`.variants.loss_code`
    compiles only the paths of its variant's losses.
    """
    raise TypeError("output_delta runs in compiled code only")


@overload(output_delta)
def _output_delta_overload(Z, T, sw, code, scale, D):
    codes = served_codes(code, "loss", ALL_LOSSES)
    if codes == (SOFTMAX_CROSS_ENTROPY,):
        return lambda Z, T, sw, code, scale, D: softmax_rows(Z, T, sw, scale, D)
    if SOFTMAX_CROSS_ENTROPY not in codes:
        return lambda Z, T, sw, code, scale, D: row_losses(Z, T, sw, code_value(code), scale, D)

    def impl(Z, T, sw, code, scale, D):
        k = code_value(code)
        if k == SOFTMAX_CROSS_ENTROPY:
            return softmax_rows(Z, T, sw, scale, D)
        return row_losses(Z, T, sw, k, scale, D)

    return impl
