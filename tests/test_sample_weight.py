"""Sample weights and the l2 weight penalty: kernels and backends against the reference."""

import numpy as np
import pytest
from conftest import LOSSES

import fastbp
from fastbp import reference


def _data(loss, n=23, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if loss == "mse":
        y = rng.standard_normal((n, k))
    elif loss == "binary_cross_entropy":
        y = (rng.random((n, k)) > 0.5).astype(float)
    else:
        y = rng.integers(0, k, n)
    sw = rng.random(n) * 2
    sw[1] = 0.0
    return X, y, sw


def _model(loss, dtype=np.float64, seed=1):
    return fastbp.MLP([4, 6, 3], activation="tanh", loss=loss, dtype=dtype, seed=seed)


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_and_grad_matches_reference(loss):
    X, y, sw = _data(loss)
    model = _model(loss)
    value, gWs, gbs = model.loss_and_grad(X, y, sample_weight=sw, l2=0.7)
    Ws, bs = model.get_weights()
    T = model.network.check_data(X, y)[1]
    ref_value, rWs, rbs = reference.loss_and_grad(X, T, Ws, bs, ["tanh"], loss, sw, 0.7)
    assert value == pytest.approx(ref_value, rel=1e-12)
    for got, want in zip(gWs + gbs, rWs + rbs):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_of_weighted_penalised_loss_matches_central_differences(loss):
    X, y, sw = _data(loss, n=7)
    assert fastbp.gradcheck(_model(loss), X, y, sample_weight=sw, l2=0.4) < 1e-6


@pytest.mark.parametrize("loss", LOSSES)
def test_integer_weights_equal_repeated_samples(loss):
    X, y, _ = _data(loss, n=9)
    counts = np.array([1, 2, 0, 3, 1, 1, 2, 1, 1])
    model = _model(loss)
    weighted = model.loss_and_grad(X, y, sample_weight=counts, l2=0.2)
    repeated = model.loss_and_grad(np.repeat(X, counts, axis=0), np.repeat(y, counts, axis=0), l2=0.2)
    assert weighted[0] == pytest.approx(repeated[0], rel=1e-12)
    for got, want in zip(weighted[1] + weighted[2], repeated[1] + repeated[2]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_penalty_leaves_bias_gradients_alone():
    X, y, _ = _data("mse")
    model = _model("mse")
    _, gW0, gb0 = model.loss_and_grad(X, y)
    value1, gW1, gb1 = model.loss_and_grad(X, y, l2=2.0)
    Ws, _ = model.get_weights()
    for a, b in zip(gb0, gb1):
        np.testing.assert_array_equal(a, b)
    for a, b, W in zip(gW0, gW1, Ws):
        np.testing.assert_allclose(b - a, 2.0 * W / X.shape[0], rtol=1e-9, atol=1e-15)
    assert value1 > model.loss_and_grad(X, y)[0]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("loss", LOSSES)
def test_backends_follow_the_reference_with_weights_and_penalty(loss, shuffle, dtype, rtol):
    """Compiled serial and parallel epochs (views when in order, gathered rows when shuffled) match numpy."""
    X, y, sw = _data(loss, n=41)
    results = {}
    for backend in ["numpy", "cpu", "parallel"]:
        model = _model(loss, dtype=dtype, seed=3)
        history = model.fit(X, y, epochs=3, batch_size=8, shuffle=shuffle, backend=backend, sample_weight=sw,
                            l2=0.05, optimizer=fastbp.SGD(lr=0.05, momentum=0.9))
        results[backend] = (np.array(history["loss"]), model.theta.astype(np.float64))
    for backend in ["cpu", "parallel"]:
        np.testing.assert_allclose(results[backend][0], results["numpy"][0], rtol=rtol)
        np.testing.assert_allclose(results[backend][1], results["numpy"][1], rtol=rtol, atol=rtol)


@pytest.mark.parametrize("backend", ["cpu", "parallel", "numpy"])
def test_unit_weights_change_nothing(backend):
    X, y, _ = _data("softmax_cross_entropy")
    a, b = _model("softmax_cross_entropy", np.float32), _model("softmax_cross_entropy", np.float32)
    ha = a.fit(X, y, epochs=2, batch_size=5, backend=backend)
    hb = b.fit(X, y, epochs=2, batch_size=5, backend=backend, sample_weight=np.ones(len(X)))
    np.testing.assert_array_equal(a.theta, b.theta)
    assert ha["loss"] == hb["loss"]


@pytest.mark.parametrize("backend", ["cpu", "parallel", "numpy"])
def test_a_minibatch_of_zero_weights_takes_no_step(backend):
    """With the first minibatch weighted zero, training equals training on the rest alone."""
    X, y, _ = _data("mse", n=20)
    sw = np.ones(20)
    sw[:5] = 0
    a, b = _model("mse"), _model("mse")
    opt_a, opt_b = fastbp.Adam(lr=0.01), fastbp.Adam(lr=0.01)
    ha = a.fit(X, y, epochs=2, batch_size=5, shuffle=False, backend=backend, sample_weight=sw, optimizer=opt_a)
    hb = b.fit(X[5:], y[5:], epochs=2, batch_size=5, shuffle=False, backend=backend, optimizer=opt_b)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-12)
    assert opt_a.step[0] == opt_b.step[0] == 6


@pytest.mark.parametrize("sample_weight, l2, error, words", [
    (np.ones(5), 0.0, ValueError, "shape (23,)"),
    (np.ones((23, 1)), 0.0, ValueError, "shape (23,)"),
    (-np.ones(23), 0.0, ValueError, "non-negative"),
    (np.full(23, np.nan), 0.0, ValueError, "NaN"),
    (np.zeros(23), 0.0, ValueError, "zero for every sample"),
    (["a"] * 23, 0.0, TypeError, "sample_weight"),
    (None, -1.0, ValueError, "l2 must be"),
    (None, float("nan"), ValueError, "l2 must be"),
    (None, True, ValueError, "l2 must be"),
    (None, "0.1", ValueError, "l2 must be"),
])
def test_bad_weights_and_penalties_are_rejected_and_leave_the_model_unchanged(sample_weight, l2, error, words):
    X, y, _ = _data("mse")
    model = _model("mse")
    before = model.theta.copy()
    rng_state = model._rng.bit_generator.state
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        model.fit(X, y, sample_weight=sample_weight, l2=l2)
    with pytest.raises(error):
        model.loss_and_grad(X, y, sample_weight=sample_weight, l2=l2)
    np.testing.assert_array_equal(model.theta, before)
    assert model._rng.bit_generator.state == rng_state
