"""``fastbp.gradcheck`` (fastbp/gradcheck.py): central differences certify the gradients of every
activation and loss, float32 models included, and catch a wrong gradient."""

import numpy as np
import pytest
from conftest import LOSSES, OUT, set_biases

import fastbp
from fastbp.kernels import ACTIVATIONS

GC_ACTIVATIONS = sorted(ACTIVATIONS)


def _gradcheck_model(activation, loss, dtype=np.float64, seed=0):
    k = OUT[loss]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, 4))
    if loss == "mse":
        y = rng.standard_normal((6, k))
    elif loss == "binary_cross_entropy":
        y = (rng.random((6, k)) > 0.5).astype(np.float64)
    else:
        y = np.arange(6) % k
    model = fastbp.MLP([4, 6, 5, k], activation=activation, loss=loss, dtype=dtype, seed=seed)
    # positive biases keep every pre-activation off the relu-family kinks (and no hidden layer all dead)
    set_biases(model, 0.1)
    return model, X, y


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", GC_ACTIVATIONS)
def test_gradcheck_every_activation_and_loss(activation, loss):
    model, X, y = _gradcheck_model(activation, loss)
    theta0 = model.theta.copy()
    error = fastbp.gradcheck(model, X, y, eps=1e-5)
    assert error < 1e-6, f"{activation} x {loss}: {error:.2e}"
    np.testing.assert_array_equal(model.theta, theta0)  # the check works on a copy


def test_gradcheck_default_eps_certifies_correct_gradients():
    """``gradcheck(model, X, y)`` with its defaults stays below 1e-6 for correct gradients.

    Round-off of the difference quotient (~1e-16 / eps absolute) must not be reported as an error on
    gradient components much smaller than the largest one.
    """
    failures = {}
    for activation in GC_ACTIVATIONS:
        for loss in LOSSES:
            model, X, y = _gradcheck_model(activation, loss)
            error = fastbp.gradcheck(model, X, y)
            if not error < 1e-6:
                failures[f"{activation} x {loss}"] = f"{error:.1e}"
    assert not failures, f"default gradcheck above 1e-6 for correct gradients: {failures}"


def test_gradcheck_promotes_float32_models():
    model32, X, y = _gradcheck_model("tanh", "mse", dtype=np.float32)
    theta0 = model32.theta.copy()
    assert fastbp.gradcheck(model32, X, y, eps=1e-5) < 1e-6
    np.testing.assert_array_equal(model32.theta, theta0)
    assert model32.theta.dtype == np.float32


def test_gradcheck_subset_of_parameters():
    model, X, y = _gradcheck_model("gelu", "binary_cross_entropy")
    assert fastbp.gradcheck(model, X, y, eps=1e-5, max_params=10, seed=3) < 1e-6


@pytest.mark.parametrize("loss", LOSSES)
def test_gradcheck_detects_a_wrong_gradient(monkeypatch, loss):
    model, X, y = _gradcheck_model("tanh", loss)
    assert fastbp.gradcheck(model, X, y, eps=1e-5) < 1e-6
    original = fastbp.model.MLP.loss_and_grad

    def scaled(self, X, y, **kwargs):
        value, gWs, gbs = original(self, X, y, **kwargs)
        return value, [1.5 * g for g in gWs], [1.5 * g for g in gbs]

    monkeypatch.setattr(fastbp.model.MLP, "loss_and_grad", scaled)
    error = fastbp.gradcheck(model, X, y, eps=1e-5)
    assert error > 0.1
    assert error == pytest.approx(0.5 / 1.5, rel=1e-3)  # |1.5g - g| / |1.5g|
