"""Loss rows (``fastbp/kernels/losses.py``): ``loss_row``, ``count_correct_row`` and ``softmax_rows``.

Checked against ``fastbp.reference`` on random data and against values worked
out by hand from the PyTorch definitions.
"""

import math

import numba
import numpy as np
import pytest
from conftest import DTYPES, tol

from fastbp import kernels, reference
from fastbp.kernels import losses

LOSS_NAMES = list(kernels.LOSSES)


# --------------------------------------------------------------------------- loss_row
@numba.njit
def _loss_rows(Z, T, code, scale, D):
    """Sum of ``loss_row`` over the rows of a batch, deltas into ``D`` (as the epoch driver calls it)."""
    total = 0.0
    for i in range(Z.shape[0]):
        total += losses.loss_row(Z[i], T[i], code, scale, D[i])
    return total


@numba.njit
def _count_correct(Z, T, code):
    c = 0
    for i in range(Z.shape[0]):
        c += losses.count_correct_row(Z[i], T[i], code)
    return c


def mean_divisor(loss, n, k):
    """PyTorch's mean reduction: over all n*k elements, except CrossEntropyLoss which averages over the n rows."""
    return n if loss == "softmax_cross_entropy" else n * k


def run_loss_rows(loss, Z, T):
    """Returns (mean loss, deltas) from the kernel, with ``scale`` in the array dtype as the epoch driver passes it."""
    n, k = Z.shape
    dtype = Z.dtype.type
    div = mean_divisor(loss, n, k)
    D = np.full_like(Z, np.nan)
    total = _loss_rows(Z, T, kernels.LOSSES[loss], dtype(1.0 / div), D)
    assert isinstance(total, float)
    return total / div, D


def make_targets(kind, rng, n, k, dtype):
    if kind == "onehot":
        return np.eye(k, dtype=dtype)[rng.integers(0, k, size=n)]
    if kind == "prob":  # rows on the simplex
        return rng.dirichlet(np.ones(k), size=n).astype(dtype)
    if kind == "unnormalized":  # non-negative rows that do not sum to 1: delta is softmax * sum(t) - t
        return rng.uniform(0, 1, size=(n, k)).astype(dtype)
    if kind == "binary":
        return rng.integers(0, 2, size=(n, k)).astype(dtype)
    if kind == "values":
        return rng.standard_normal((n, k)).astype(dtype)
    raise AssertionError(kind)


LOSS_CASES = [
    ("mse", "values"),
    ("binary_cross_entropy", "binary"),
    ("binary_cross_entropy", "prob"),
    ("softmax_cross_entropy", "onehot"),
    ("softmax_cross_entropy", "prob"),
    ("softmax_cross_entropy", "unnormalized"),
]


@pytest.mark.parametrize("n,k", [(1, 1), (1, 4), (13, 1), (13, 5)])
@pytest.mark.parametrize("loss,targets", LOSS_CASES, ids=["-".join(c) for c in LOSS_CASES])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_loss_row_matches_reference(dtype, loss, targets, n, k):
    rng = np.random.default_rng(n * 100 + k)
    Z = (3.0 * rng.standard_normal((n, k))).astype(dtype)
    T = make_targets(targets, rng, n, k, dtype)
    value, D = run_loss_rows(loss, Z, T)

    assert D.dtype == dtype
    np.testing.assert_allclose(value, reference.loss_value(loss, Z, T), **tol(dtype))
    # Deltas are scaled by 1/divisor: compare relative to that scale.
    div = mean_divisor(loss, n, k)
    np.testing.assert_allclose(D * div, reference.output_delta(loss, Z.astype(np.float64), T.astype(np.float64)) * div,
                               **tol(dtype))


EXTREME = {
    "mse": (np.array([[100.0, -100.0, 0.0], [-100.0, 100.0, 3.0]]), np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.5]])),
    "binary_cross_entropy": (np.array([[100.0, -100.0, 100.0], [-100.0, 100.0, 0.0]]),
                             np.array([[0.0, 1.0, 1.0], [0.0, 0.3, 1.0]])),
    "softmax_cross_entropy": (np.array([[100.0, -100.0, 0.0], [-100.0, 100.0, 100.0]]),
                              np.array([[0.0, 1.0, 0.0], [0.2, 0.5, 0.3]])),
    # exp(z) itself is the mean: the largest logits that float32 still holds (exp(88.7) is its maximum)
    "poisson": (np.array([[80.0, -100.0, 0.0], [-80.0, 60.0, 3.0]]), np.array([[0.0, 5.0, 1.0], [2.0, 0.0, 7.0]])),
}


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_loss_row_extreme_logits_stay_finite(dtype, loss):
    Z, T = (a.astype(dtype) for a in EXTREME[loss])
    value, D = run_loss_rows(loss, Z, T)
    assert np.isfinite(value), value
    assert np.all(np.isfinite(D)), D
    # The exact answers, computed in float64 by the stable reference formulas.
    with np.errstate(over="ignore"):
        expected_delta = reference.output_delta(loss, Z.astype(np.float64), T.astype(np.float64))
    np.testing.assert_allclose(value, reference.loss_value(loss, Z, T), rtol=1e-6)
    div = mean_divisor(loss, *Z.shape)
    np.testing.assert_allclose(D * div, expected_delta * div, rtol=1e-6, atol=1e-7)


def test_loss_row_extreme_logits_hand_values():
    """Saturated logits give the large, exact losses a naive formula would turn into inf or NaN."""
    for dtype in DTYPES:
        # BCEWithLogits, z = -100, t = 1: max(z,0) - z t + log1p(exp(-|z|)) = 0 + 100 + log1p(e^-100) = 100.
        value, D = run_loss_rows("binary_cross_entropy", np.array([[-100.0]], dtype), np.array([[1.0]], dtype))
        assert value == pytest.approx(100.0, rel=1e-7)
        # delta = sigmoid(-100) - 1 = -1 (to 3.7e-44).
        assert D[0, 0] == pytest.approx(-1.0, rel=1e-7)
        # CrossEntropy, logits [100, -100], label 1: logsumexp = 100 + log1p(e^-200) = 100, loss = 100 - (-100) = 200.
        value, D = run_loss_rows("softmax_cross_entropy", np.array([[100.0, -100.0]], dtype),
                                 np.array([[0.0, 1.0]], dtype))
        assert value == pytest.approx(200.0, rel=1e-7)
        # delta = softmax - onehot = [1, e^-200] - [0, 1] = [1, -1].
        np.testing.assert_allclose(D, [[1.0, -1.0]], rtol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_loss_hand_values_pytorch_definitions(dtype):
    # MSELoss: z = [1, 2], t = [0, 0]: ((1-0)^2 + (2-0)^2) / 2 = (1 + 4) / 2 = 2.5.
    # dJ/dz = 2 (z - t) / (n k) = 2 * [1, 2] / 2 = [1, 2].
    value, D = run_loss_rows("mse", np.array([[1.0, 2.0]], dtype), np.array([[0.0, 0.0]], dtype))
    assert value == pytest.approx(2.5, rel=1e-7)
    np.testing.assert_allclose(D, [[1.0, 2.0]], rtol=1e-7)

    # BCEWithLogitsLoss: z = 0, t = 1: -[t log sigmoid(0) + (1-t) log(1 - sigmoid(0))] = -log(1/2) = log 2.
    # dJ/dz = sigmoid(0) - t = 0.5 - 1 = -0.5.
    value, D = run_loss_rows("binary_cross_entropy", np.array([[0.0]], dtype), np.array([[1.0]], dtype))
    assert value == pytest.approx(math.log(2.0), rel=1e-7)
    np.testing.assert_allclose(D, [[-0.5]], rtol=1e-7)

    # CrossEntropyLoss: logits [0, 0], label 0: -log(e^0 / (e^0 + e^0)) = -log(1/2) = log 2.
    # dJ/dz = softmax - onehot = [1/2, 1/2] - [1, 0] = [-0.5, 0.5].
    value, D = run_loss_rows("softmax_cross_entropy", np.array([[0.0, 0.0]], dtype), np.array([[1.0, 0.0]], dtype))
    assert value == pytest.approx(math.log(2.0), rel=1e-7)
    np.testing.assert_allclose(D, [[-0.5, 0.5]], rtol=1e-7)

    # A batch of two rows halves each row's share: CrossEntropy mean over n = 2 rows of
    # [log 2 (logits [0, 0], label 0), log(1 + e^-2) (logits [2, 0], label 0)] = (0.693147 + 0.126928) / 2.
    value, D = run_loss_rows("softmax_cross_entropy", np.array([[0.0, 0.0], [2.0, 0.0]], dtype),
                             np.array([[1.0, 0.0], [1.0, 0.0]], dtype))
    assert value == pytest.approx((math.log(2.0) + math.log1p(math.exp(-2.0))) / 2, rel=1e-6)
    # Row 0 delta: [-0.5, 0.5] / 2 = [-0.25, 0.25].
    np.testing.assert_allclose(D[0], [-0.25, 0.25], rtol=1e-6)


# --------------------------------------------------------------------------- count_correct_row
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_count_correct_row_hand_cases(dtype):
    sce, bce, mse = kernels.SOFTMAX_CROSS_ENTROPY, kernels.BINARY_CROSS_ENTROPY, kernels.MSE
    row = lambda *v: np.array(v, dtype=dtype)  # noqa: E731
    # Softmax: correct iff argmax(z) == argmax(t).
    assert losses.count_correct_row(row(0.1, 2.0, -1.0), row(0, 1, 0), sce) == 1
    assert losses.count_correct_row(row(0.1, 2.0, -1.0), row(1, 0, 0), sce) == 0
    assert losses.count_correct_row(row(-5.0, -4.0, -6.0), row(0.2, 0.5, 0.3), sce) == 1  # probability target
    assert losses.count_correct_row(row(3.0, 1.0, 2.0), row(0.1, 0.3, 0.6), sce) == 0
    assert losses.count_correct_row(row(1.0, 1.0), row(1, 0), sce) == 1  # tie: the first index wins, as np.argmax
    assert losses.count_correct_row(row(1.0, 1.0), row(0, 1), sce) == 0
    assert losses.count_correct_row(row(7.0), row(1.0), sce) == 1
    # BCE: elementwise (z > 0) == (t > 0.5).
    # z > 0: [T, F, T, F];  t > 0.5: [T, F, F, T]  ->  2 agree.
    assert losses.count_correct_row(row(0.5, -0.5, 2.0, -3.0), row(1, 0, 0, 1), bce) == 2
    # Boundaries: z = 0 predicts 0; t = 0.5 is class 0; t = 0.6 is class 1.
    assert losses.count_correct_row(row(0.0, 0.0, 0.0), row(0.5, 0.6, 0.0), bce) == 2
    assert losses.count_correct_row(row(1e-30, -1e-30), row(0.51, 0.49), bce) == 2
    # MSE: no accuracy.
    assert losses.count_correct_row(row(1.0, 2.0), row(1.0, 2.0), mse) == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_count_correct_row_matches_numpy_on_a_batch(dtype):
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((200, 4)).astype(dtype)
    T = rng.dirichlet(np.ones(4), size=200).astype(dtype)
    expected = int(np.sum(Z.argmax(1) == T.argmax(1)))
    assert 0 < expected < 200
    assert _count_correct(Z, T, kernels.SOFTMAX_CROSS_ENTROPY) == expected
    Tb = rng.uniform(0, 1, size=(200, 4)).astype(dtype)
    expected = int(np.sum((Z > 0) == (Tb > 0.5)))
    assert 0 < expected < 800
    assert _count_correct(Z, Tb, kernels.BINARY_CROSS_ENTROPY) == expected


# --------------------------------------------------------------------------- softmax_rows
SOFTMAX_TARGETS = ["onehot", "prob", "unnormalized"]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("n,k", [(1, 1), (1, 4), (33, 2), (33, 10)])
@pytest.mark.parametrize("targets", SOFTMAX_TARGETS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_softmax_rows_is_loss_row_and_count_correct_row_over_the_rows(dtype, targets, n, k, weighted):
    """The block form the epoch driver calls for softmax: the per-row loss (weighted), deltas and accuracy."""
    rng = np.random.default_rng(n * 1000 + k)
    Z = (3.0 * rng.standard_normal((n, k))).astype(dtype)
    T = make_targets(targets, rng, n, k, dtype)
    # Weights include 0 and 1 (a row of weight 1 and one-hot target shares the product's log).
    sw = rng.choice(np.array([0.0, 0.5, 1.0, 2.5], dtype=dtype), size=n) if weighted else np.zeros(0, dtype)
    code = kernels.SOFTMAX_CROSS_ENTROPY
    scale = dtype(1.0 / n)
    D = np.full_like(Z, np.nan)
    total, correct = losses.softmax_rows(Z, T, sw, scale, D)

    w = sw if weighted else np.ones(n, dtype)
    D_row = np.full_like(Z, np.nan)
    expected = 0.0
    for i in range(n):
        expected += float(w[i]) * losses.loss_row(Z[i], T[i], code, scale * w[i], D_row[i])
    assert isinstance(total, float)
    # Fast math lets LLVM sum a row's exponentials in another order in each compiled context.
    close = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(total, expected, **close)
    np.testing.assert_allclose(D, D_row, **close)
    assert correct == _count_correct(Z, T, code)
    # And against the reference's weighted mean, independently of loss_row.
    if w.sum() > 0:
        value = reference.loss_value("softmax_cross_entropy", Z.astype(np.float64), T.astype(np.float64),
                                     w.astype(np.float64) if weighted else None)
        np.testing.assert_allclose(total / w.sum(), value, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_softmax_rows_shared_logarithm_survives_long_products(dtype):
    """Rows whose softmax sums multiply past 1e250 are folded in on the way, with no overflow."""
    n, k = 400, 1000
    Z = np.zeros((n, k), dtype)  # every row: s = 1000, loss = log(1000); the product would reach 1e1200
    T = np.eye(k, dtype=dtype)[np.arange(n) % k]
    D = np.empty_like(Z)
    total, correct = losses.softmax_rows(Z, T, np.zeros(0, dtype), dtype(1.0 / n), D)
    assert total == pytest.approx(n * math.log(k), rel=1e-12)
    assert correct == 1  # ties go to index 0: only the row whose target is class 0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_softmax_rows_with_a_non_finite_logit_reports_a_non_finite_loss(dtype):
    """A NaN or infinite logit must not vanish into the shared product (the driver stops on a non-finite loss)."""
    for bad in (np.nan, np.inf, -np.inf):
        Z = np.zeros((3, 4), dtype)
        Z[1, 2] = bad
        T = np.eye(4, dtype=dtype)[[0, 1, 2]]
        total, _ = losses.softmax_rows(Z, T, np.zeros(0, dtype), dtype(1.0 / 3), np.empty_like(Z))
        # As loss_row: not finite, -inf included (0 * -inf in t . z; a linear output reaches -inf only
        # by overflow, when training has diverged anyway).
        assert not np.isfinite(total)
