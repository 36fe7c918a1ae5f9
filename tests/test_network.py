"""Initial weights (``Network.initial_params`` in fastbp/network.py): ``init="auto"`` takes He-uniform
for a layer followed by a ReLU-family activation and Glorot-uniform for the rest; ``init`` can choose."""

import math

import numpy as np
import pytest

import fastbp


def test_auto_init_bounds():
    acts = ["relu", "tanh"]
    model = fastbp.MLP([300, 400, 200, 10], activation=acts, loss="mse", dtype=np.float64, seed=0)
    Ws, bs = model.get_weights()
    bounds = [math.sqrt(6 / 300),          # He: followed by relu
              math.sqrt(6 / (400 + 200)),  # Glorot: followed by tanh
              math.sqrt(6 / (200 + 10))]   # Glorot: the linear output layer
    for W, bound, closeness in zip(Ws, bounds, (0.999, 0.999, 0.98)):
        top = np.abs(W).max()
        assert top <= bound
        assert top >= closeness * bound
        assert np.std(W) == pytest.approx(bound / math.sqrt(3), rel=0.05)  # uniform, not normal
        assert abs(np.mean(W)) < 0.05 * bound
    for b in bs:
        np.testing.assert_array_equal(b, 0.0)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "softplus", "gelu", "tanh", "sigmoid",
                                        "identity"])
def test_auto_init_by_activation_family(activation):
    model = fastbp.MLP([200, 300, 5], activation=activation, dtype=np.float64, seed=1)
    W = model.get_weights()[0][0]
    he, glorot = math.sqrt(6 / 200), math.sqrt(6 / 500)
    relu_family = activation in ("relu", "leaky_relu", "elu", "softplus", "gelu")
    bound = he if relu_family else glorot
    assert bound * 0.999 <= np.abs(W).max() <= bound


def test_explicit_init_overrides_auto():
    he, glorot = math.sqrt(6 / 200), math.sqrt(6 / 500)
    g = fastbp.MLP([200, 300, 5], activation="relu", init="glorot_uniform", dtype=np.float64, seed=1)
    h = fastbp.MLP([200, 300, 5], activation="tanh", init="he_uniform", dtype=np.float64, seed=1)
    assert glorot * 0.999 <= np.abs(g.get_weights()[0][0]).max() <= glorot
    assert he * 0.999 <= np.abs(h.get_weights()[0][0]).max() <= he
    assert np.abs(h.get_weights()[0][1]).max() <= math.sqrt(6 / 300)  # He on the output layer too
    for m in (g, h):
        assert all(np.all(b == 0) for b in m.get_weights()[1])
