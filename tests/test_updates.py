"""Optimizer updates (``fastbp/kernels/updates.py``): SGD (momentum, Nesterov, weight decay), Adam and AdamW.

Checked against steps worked out by hand from the PyTorch definitions and
against ``fastbp.reference.optimizer_step`` on random data.
"""

import math

import numpy as np
import pytest
from conftest import DTYPES, tol

from fastbp import reference
from fastbp.kernels import layout, updates


def make_hyper(lr, momentum=0.0, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8, nesterov=False, eps_hat=False):
    h = np.zeros(layout.N_HYPER, dtype=np.float64)
    h[layout.H_LR] = lr
    h[layout.H_MOMENTUM] = momentum
    h[layout.H_WEIGHT_DECAY] = weight_decay
    h[layout.H_BETA1], h[layout.H_BETA2] = betas
    h[layout.H_EPS] = eps
    h[layout.H_NESTEROV] = 1.0 if nesterov else 0.0
    h[layout.H_EPS_HAT] = 1.0 if eps_hat else 0.0
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
    # buf1 = [0.5, -1];    d1 = g + 0.9 buf1 = [0.95, -1.9];   theta1 = [1 - 0.095, -2 + 0.19] = [0.905, -1.81]
    # buf2 = [0.95, -1.9]; d2 = g + 0.9 buf2 = [1.355, -2.71];
    #                                          theta2 = [0.905 - 0.1355, -1.81 + 0.271] = [0.7695, -1.539]
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
    # theta1 = [0.99 - 0.1, -1.98 + 0.1] = [0.89, -1.88];
    # theta2 = [0.99*0.89 - 0.1, -0.99*1.88 + 0.1] = [0.7811, -1.7612]
    "adamw": (layout.ADAMW, make_hyper(0.1, weight_decay=0.1),
              [0.99 * (0.99 * 1.0 - adam_move(0.5)) - adam_move(0.5),
               0.99 * (0.99 * -2.0 - adam_move(-1.0)) - adam_move(-1.0)],
              [0.19 * 0.5, 0.19 * -1.0]),
}


def _adam_l2_by_hand():
    """Adam with L2 weight decay 0.1 (torch.optim.Adam(weight_decay=0.1)), lr 0.1, written out per element."""
    expected = []
    for p, g in zip(THETA0, G):
        # step 1: g1 = g + 0.1 p;  m1 = 0.1 g1;  v1 = 0.001 g1^2;  m_hat = g1, v_hat = g1^2:
        #         p1 = p - 0.1 g1/(|g1| + eps)
        g1 = g + 0.1 * p                       # [0.6, -1.2]
        m1, v1 = 0.1 * g1, 0.001 * g1 * g1
        p1 = p - 0.1 * (m1 / 0.1) / (math.sqrt(v1 / 0.001) + EPS)   # [0.9, -1.9] (to 2e-9)
        # step 2: g2 = g + 0.1 p1 = [0.59, -1.19];  m2 = 0.9 m1 + 0.1 g2 = [0.113, -0.227]
        # v2 = 0.999 v1 + 0.001 g2^2 = [0.00070774, 0.00285466];
        # bias corrections 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999
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
    "adam_eps_hat": dict(kind="adam", lr=1e-2, eps=0.3, eps_hat=True),
    "adamw_eps_hat": dict(kind="adamw", lr=1e-2, weight_decay=0.01, betas=(0.8, 0.99), eps=0.1, eps_hat=True),
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
                       cfg.get("betas", (0.9, 0.999)), cfg.get("eps", 1e-8), cfg.get("nesterov", False),
                       cfg.get("eps_hat", False))

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


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_adam_eps_hat_is_scikit_learns_adam(dtype):
    """eps_hat=True follows scikit-learn's AdamOptimizer step for step; without it, eps acts differently."""
    sk_optim = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    rng = np.random.default_rng(5)
    theta0 = rng.standard_normal(29)
    grads = [1e-3 * rng.standard_normal(29) for _ in range(6)]
    sk_theta = theta0.copy()
    sk = sk_optim.AdamOptimizer([sk_theta], learning_rate_init=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-3)
    results = {}
    for eps_hat in (True, False):
        hyper = make_hyper(0.01, betas=(0.8, 0.95), eps=1e-3, eps_hat=eps_hat)
        theta, _, _ = run_steps(layout.ADAM, theta0.astype(dtype), [g.astype(dtype) for g in grads], hyper)
        results[eps_hat] = theta
    for g in grads:
        sk.update_params([sk_theta], [g])
    np.testing.assert_allclose(results[True], sk_theta, **tol(dtype))
    assert np.abs(results[False] - sk_theta).max() > 1e-4  # the torch form is another rule here
