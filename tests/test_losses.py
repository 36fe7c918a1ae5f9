"""Loss rows (``fastbp.kernels.losses``) and optimizer updates (``fastbp.kernels.updates``).

Checked against ``fastbp.reference`` on random data and against values worked
out by hand from the PyTorch definitions.
"""

import math

import numba
import numpy as np
import pytest

from fastbp import kernels, reference
from fastbp.kernels import layout, losses, updates

DTYPES = [np.float32, np.float64]
LOSS_NAMES = list(kernels.LOSSES)


def tol(dtype):
    if dtype == np.float64:
        return dict(rtol=1e-10, atol=1e-12)
    return dict(rtol=1e-5, atol=1e-6)


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


# --------------------------------------------------------------------------- update
def make_hyper(lr, momentum=0.0, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8, nesterov=False):
    h = np.zeros(layout.N_HYPER, dtype=np.float64)
    h[layout.H_LR] = lr
    h[layout.H_MOMENTUM] = momentum
    h[layout.H_WEIGHT_DECAY] = weight_decay
    h[layout.H_BETA1], h[layout.H_BETA2] = betas
    h[layout.H_EPS] = eps
    h[layout.H_NESTEROV] = 1.0 if nesterov else 0.0
    return h


def run_steps(code, theta0, grads, hyper, lo=0, hi=None):
    """Apply ``len(grads)`` steps (numbered from 1) to a copy of ``theta0``; returns (theta, m, v)."""
    theta = theta0.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    hi = theta.shape[0] if hi is None else hi
    for step, g in enumerate(grads, start=1):
        updates.update(code, theta[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], hyper, step)
    assert theta.dtype == m.dtype == v.dtype == theta0.dtype
    return theta, m, v


THETA0 = [1.0, -2.0]
G = [0.5, -1.0]
EPS = 1e-8


def adam_move(g, lr=0.1, eps=EPS):
    """Adam's step with m_hat = g and v_hat = g^2 (true for a constant gradient): lr * g / (|g| + eps)."""
    return lr * g / (abs(g) + eps)


# name -> (code, hyper, expected theta after 2 steps with g = G both times, expected m or None)
HAND_CASES = {
    # theta -= lr g:  1 - 0.1*0.5 = 0.95 -> 0.90;  -2 + 0.1*1 = -1.9 -> -1.8.
    "sgd": (layout.SGD, make_hyper(0.1), [0.9, -1.8], None),
    # buf1 = g = [0.5, -1];        theta1 = [1 - 0.05, -2 + 0.1]        = [0.95, -1.9]
    # buf2 = 0.9 buf1 + g = [0.95, -1.9];  theta2 = [0.95 - 0.095, -1.9 + 0.19] = [0.855, -1.71]
    "sgd_momentum": (layout.SGD, make_hyper(0.1, momentum=0.9), [0.855, -1.71], [0.95, -1.9]),
    # buf1 = [0.5, -1];  d1 = g + 0.9 buf1 = [0.95, -1.9];   theta1 = [1 - 0.095, -2 + 0.19]      = [0.905, -1.81]
    # buf2 = [0.95, -1.9]; d2 = g + 0.9 buf2 = [1.355, -2.71]; theta2 = [0.905 - 0.1355, -1.81 + 0.271] = [0.7695, -1.539]
    "sgd_nesterov": (layout.SGD, make_hyper(0.1, momentum=0.9, nesterov=True), [0.7695, -1.539], [0.95, -1.9]),
    # d1 = g + 0.1 theta0 = [0.6, -1.2];     theta1 = [0.94, -1.88]
    # d2 = g + 0.1 theta1 = [0.594, -1.188]; theta2 = [0.94 - 0.0594, -1.88 + 0.1188] = [0.8806, -1.7612]
    "sgd_weight_decay": (layout.SGD, make_hyper(0.1, weight_decay=0.1), [0.8806, -1.7612], None),
    # Adam, constant g: step 1 m = 0.1 g, m_hat = 0.1 g / (1 - 0.9) = g; v = 0.001 g^2, v_hat = g^2.
    # step 2 m = 0.9*0.1 g + 0.1 g = 0.19 g, m_hat = 0.19 g / (1 - 0.81) = g; v = (0.999*0.001 + 0.001) g^2
    # = 0.001999 g^2, v_hat = 0.001999 g^2 / (1 - 0.998001) = g^2.  So each step moves lr g/(|g| + eps), about
    # lr sign(g) = 0.1: theta2 = [1 - 0.2, -2 + 0.2] = [0.8, -1.8] (less 2 lr eps/|g|).
    "adam": (layout.ADAM, make_hyper(0.1), [1.0 - 2 * adam_move(0.5), -2.0 - 2 * adam_move(-1.0)],
             [0.19 * 0.5, 0.19 * -1.0]),
    # AdamW, wd = 0.1: theta *= 1 - lr wd = 0.99 first, then the same Adam move as above:
    # theta1 = [0.99 - 0.1, -1.98 + 0.1] = [0.89, -1.88];  theta2 = [0.99*0.89 - 0.1, -0.99*1.88 + 0.1] = [0.7811, -1.7612]
    "adamw": (layout.ADAMW, make_hyper(0.1, weight_decay=0.1),
              [0.99 * (0.99 * 1.0 - adam_move(0.5)) - adam_move(0.5),
               0.99 * (0.99 * -2.0 - adam_move(-1.0)) - adam_move(-1.0)],
              [0.19 * 0.5, 0.19 * -1.0]),
}


def _adam_l2_by_hand():
    """Adam with L2 weight decay 0.1 (torch.optim.Adam(weight_decay=0.1)), lr 0.1, written out per element."""
    expected = []
    for p, g in zip(THETA0, G):
        # step 1: g1 = g + 0.1 p;  m1 = 0.1 g1;  v1 = 0.001 g1^2;  m_hat = g1, v_hat = g1^2: p1 = p - 0.1 g1/(|g1| + eps)
        g1 = g + 0.1 * p                       # [0.6, -1.2]
        m1, v1 = 0.1 * g1, 0.001 * g1 * g1
        p1 = p - 0.1 * (m1 / 0.1) / (math.sqrt(v1 / 0.001) + EPS)   # [0.9, -1.9] (to 2e-9)
        # step 2: g2 = g + 0.1 p1 = [0.59, -1.19];  m2 = 0.9 m1 + 0.1 g2 = [0.113, -0.227]
        # v2 = 0.999 v1 + 0.001 g2^2 = [0.00070774, 0.00285466]; bias corrections 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999
        g2 = g + 0.1 * p1
        m2 = 0.9 * m1 + 0.1 * g2
        v2 = 0.999 * v1 + 0.001 * g2 * g2
        p2 = p1 - (0.1 / 0.19) * m2 / (math.sqrt(v2) / math.sqrt(0.001999) + EPS)  # [0.80005, -1.80002]
        expected.append(p2)
    return expected


HAND_CASES["adam_weight_decay"] = (layout.ADAM, make_hyper(0.1, weight_decay=0.1), _adam_l2_by_hand(),
                                   None)


@pytest.mark.parametrize("case", list(HAND_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_update_two_steps_by_hand(dtype, case):
    code, hyper, expected_theta, expected_m = HAND_CASES[case]
    g = np.array(G, dtype=dtype)
    theta, m, v = run_steps(code, np.array(THETA0, dtype=dtype), [g, g], hyper)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(theta, expected_theta, rtol=rtol)
    if expected_m is not None:
        np.testing.assert_allclose(m, expected_m, rtol=rtol)
    if code in (layout.ADAM, layout.ADAMW) and case != "adam_weight_decay":
        # v2 = 0.001999 g^2 (see above).
        np.testing.assert_allclose(v, [0.001999 * 0.25, 0.001999 * 1.0], rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_adam_first_step_moves_by_lr_sign_g(dtype):
    """Whatever the gradient's size, Adam's first step moves each parameter by about lr * sign(g)."""
    theta0 = np.array([0.3, -0.7, 2.0, 5.0], dtype=dtype)
    g = np.array([1e-3, -40.0, 2.5, -0.02], dtype=dtype)
    for code in (layout.ADAM, layout.ADAMW):
        theta, _, _ = run_steps(code, theta0, [g], make_hyper(0.01))
        np.testing.assert_allclose(theta0 - theta, 0.01 * np.sign(g), rtol=1e-4)


OPT_CASES = {
    "sgd": dict(kind="sgd", lr=0.05),
    "sgd_momentum": dict(kind="sgd", lr=0.05, momentum=0.9),
    "sgd_nesterov": dict(kind="sgd", lr=0.05, momentum=0.8, nesterov=True),
    "sgd_weight_decay": dict(kind="sgd", lr=0.05, weight_decay=0.01),
    "sgd_all": dict(kind="sgd", lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.02),
    "adam": dict(kind="adam", lr=1e-2),
    "adam_weight_decay": dict(kind="adam", lr=1e-2, weight_decay=0.05, betas=(0.8, 0.99), eps=1e-6),
    "adamw": dict(kind="adamw", lr=1e-2, weight_decay=0.01),
    "adamw_betas": dict(kind="adamw", lr=3e-3, weight_decay=0.1, betas=(0.5, 0.9), eps=1e-5),
}
OPT_CODES = {"sgd": layout.SGD, "adam": layout.ADAM, "adamw": layout.ADAMW}


@pytest.mark.parametrize("case", list(OPT_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_update_matches_reference_optimizer(dtype, case):
    cfg = dict(OPT_CASES[case])
    kind = cfg.pop("kind")
    rng = np.random.default_rng(11)
    P = 37
    theta0 = rng.standard_normal(P).astype(dtype)
    grads = [rng.standard_normal(P).astype(dtype) for _ in range(5)]
    hyper = make_hyper(cfg["lr"], cfg.get("momentum", 0.0), cfg.get("weight_decay", 0.0),
                       cfg.get("betas", (0.9, 0.999)), cfg.get("eps", 1e-8), cfg.get("nesterov", False))

    # Update in two spans per step, [0, 13) then [13, P), as the parallel driver splits the vector.
    theta = theta0.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    ref_theta = theta0.copy()
    state = {}
    t = tol(dtype)
    for step, g in enumerate(grads, start=1):
        updates.update(OPT_CODES[kind], theta[:13], g[:13], m[:13], v[:13], hyper, step)
        updates.update(OPT_CODES[kind], theta[13:], g[13:], m[13:], v[13:], hyper, step)
        reference.optimizer_step(kind, [ref_theta], [g], state, **cfg)
        assert state["step"] == step
        np.testing.assert_allclose(theta, ref_theta, **t, err_msg=f"step {step}")
    assert theta.dtype == dtype
    assert not np.allclose(theta, theta0)  # the parameters did move
    if kind != "sgd" or cfg.get("momentum", 0):
        np.testing.assert_allclose(m, state["m"][0], **t)
    if kind != "sgd":
        np.testing.assert_allclose(v, state["v"][0], **t)


@pytest.mark.parametrize("code", [layout.SGD, layout.ADAM, layout.ADAMW], ids=["sgd", "adam", "adamw"])
def test_update_of_a_span_touches_only_that_span(code):
    rng = np.random.default_rng(2)
    theta0 = rng.standard_normal(10)
    g = rng.standard_normal(10)
    hyper = make_hyper(0.1, momentum=0.9, weight_decay=0.1)
    theta, m, v = run_steps(code, theta0, [g, g], hyper, lo=3, hi=7)
    outside = np.r_[0:3, 7:10]
    np.testing.assert_array_equal(theta[outside], theta0[outside])
    assert np.all(m[outside] == 0) and np.all(v[outside] == 0)
    assert np.all(theta[3:7] != theta0[3:7])
    # Inside the span, the same as updating the whole vector.
    full, _, _ = run_steps(code, theta0, [g, g], hyper)
    np.testing.assert_allclose(theta[3:7], full[3:7], rtol=1e-15)
