"""loss="poisson": torch.nn.PoissonNLLLoss(log_input=True, full=False) for the model."""

import importlib.util

import numpy as np
import pytest

import fastbp

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    Y = rng.poisson(np.exp(0.4 * X[:, :2]))
    return X, Y.astype(np.float64)


def _model(**kwargs):
    return fastbp.MLP([3, 6, 2], activation="tanh", loss="poisson", dtype=np.float64, seed=0, **kwargs)


def test_loss_is_the_mean_of_exp_z_minus_y_z_and_predict_is_exp_z():
    X, Y = _data()
    model = _model()
    Z = model.decision_function(X)
    assert model.evaluate(X, Y) == {"loss": pytest.approx(float(np.mean(np.exp(Z) - Y * Z)), rel=1e-12)}
    np.testing.assert_allclose(model.predict(X), np.exp(Z), rtol=1e-15)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (a test-only peer)")
def test_loss_and_gradient_equal_torch():
    import torch

    X, Y = _data()
    model = _model()
    loss, gWs, gbs = model.loss_and_grad(X, Y)
    Ws, bs = model.get_weights()
    params = [torch.tensor(a, requires_grad=True) for a in Ws + bs]
    h = torch.tanh(torch.from_numpy(X) @ params[0] + params[2])
    z = h @ params[1] + params[3]
    expected = torch.nn.PoissonNLLLoss(log_input=True, full=False)(z, torch.from_numpy(Y))
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    for ours, theirs in zip(gWs + gbs, params[:2] + params[2:]):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("backend", ["numpy", "cpu", "parallel"])
def test_training_agrees_on_every_backend_and_reports_no_accuracy(backend):
    X, Y = _data(200)
    model, reference = _model(), _model()
    history = model.fit(X, Y, epochs=5, batch_size=16, optimizer=fastbp.Adam(lr=0.02), backend=backend)
    reference.fit(X, Y, epochs=5, batch_size=16, optimizer=fastbp.Adam(lr=0.02), backend="numpy")
    assert "accuracy" not in history and history["loss"][-1] < history["loss"][0]
    np.testing.assert_allclose(model.theta, reference.theta, rtol=1e-9, atol=1e-12)


def test_gradient_checks_against_central_differences():
    X, Y = _data(16)
    assert fastbp.gradcheck(_model(), X, Y) < 1e-6


def test_negative_targets_are_refused():
    X, Y = _data()
    Y[3, 1] = -1.0
    with pytest.raises(ValueError, match="poisson needs non-negative targets"):
        _model().fit(X, Y)
