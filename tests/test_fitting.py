"""The pieces of ``MLP.fit``'s loop in fastbp/fitting.py: the history it returns, and early stopping
(``patience``, ``min_delta``, ``restore_best_weights``, on the validation or the training loss)."""

import numpy as np
import pytest
from conftest import LOSSES, OUT, make_data

import fastbp


# ------------------------------------------------------------------------------ fit history
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("with_val", [False, True], ids=["no_val", "val"])
def test_fit_history(loss, with_val):
    X, y = make_data(loss, n=60)
    Xv, yv = make_data(loss, n=30, seed=1)
    model = fastbp.MLP([5, 8, OUT[loss]], activation="tanh", loss=loss, dtype=np.float64, seed=0)
    h = model.fit(X, y, epochs=3, batch_size=16, optimizer=fastbp.Adam(lr=1e-2),
                  validation_data=(Xv, yv) if with_val else None, backend="cpu")
    classify = loss != "mse"
    expected = {"loss", "samples_per_second", "backend"}
    if classify:
        expected.add("accuracy")
    if with_val:
        expected.add("val_loss")
        if classify:
            expected.add("val_accuracy")
    assert set(h) == expected
    assert h["backend"] == "cpu"
    for key in expected - {"backend"}:
        assert len(h[key]) == 3, key
        if key.endswith("accuracy"):
            assert all(0.0 <= a <= 1.0 for a in h[key]), key
        else:
            assert all(np.isfinite(v) and v > 0 for v in h[key]), key
    assert h["loss"][-1] < h["loss"][0]  # it learns
    if with_val:  # the last val figures are those of the final weights
        final = model.evaluate(Xv, yv)
        assert h["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-12)
        if classify:
            assert h["val_accuracy"][-1] == pytest.approx(final["accuracy"], abs=1e-12)


# ---------------------------------------------------------------------------- early stopping
def _early_stopping_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5))
    Xv = rng.standard_normal((40, 5))
    w = rng.standard_normal((5, 2))
    # the validation targets run against the training targets: learning makes val_loss worse
    return X, X @ w, Xv, -(Xv @ w)


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping(restore):
    X, y, Xv, yv = _early_stopping_data()
    model = fastbp.MLP([5, 8, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    h = model.fit(X, y, epochs=50, batch_size=8, optimizer=fastbp.Adam(lr=0.05), validation_data=(Xv, yv),
                  patience=2, restore_best_weights=restore)
    n_epochs = len(h["val_loss"])
    assert n_epochs < 50
    assert len(h["loss"]) == n_epochs
    best = int(np.argmin(h["val_loss"]))
    assert n_epochs == best + 1 + 2  # stopped exactly `patience` epochs after the best one
    final = model.evaluate(Xv, yv)["loss"]
    if restore:
        assert final == pytest.approx(min(h["val_loss"]), abs=1e-6, rel=1e-12)
    else:
        assert final == pytest.approx(h["val_loss"][-1], rel=1e-12)
        assert final > min(h["val_loss"]) + 1e-6


def test_early_stopping_with_large_learning_rate():
    """Validation on the training distribution; a too-large lr makes the loss stop improving."""
    X, y = make_data("softmax_cross_entropy", n=80)
    Xv, yv = make_data("softmax_cross_entropy", n=40, seed=1)
    model = fastbp.MLP([5, 16, 3], activation="relu", loss="softmax_cross_entropy", dtype=np.float64, seed=0)
    h = model.fit(X, y, epochs=200, batch_size=8, optimizer=fastbp.SGD(lr=3.0, momentum=0.9),
                  validation_data=(Xv, yv), patience=2, shuffle=True)
    assert len(h["val_loss"]) < 200
    assert np.all(np.isfinite(model.theta))
    assert model.evaluate(Xv, yv)["loss"] == pytest.approx(min(h["val_loss"]), abs=1e-6, rel=1e-12)


def test_early_stopping_monitors_training_loss_and_min_delta():
    X, y = make_data("mse", n=40)
    model = fastbp.MLP([5, 6, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    # no epoch improves on the first by more than min_delta: stop after 1 + patience epochs
    h = model.fit(X, y, epochs=20, batch_size=8, optimizer=fastbp.SGD(lr=0.05), patience=3, min_delta=1e6)
    assert len(h["loss"]) == 4
    assert h["loss"][-1] < h["loss"][0]
    # restore_best_weights puts back the first epoch's weights: evaluate gives (about) that epoch's end state
    twin_model = fastbp.MLP([5, 6, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    twin_model.fit(X, y, epochs=1, batch_size=8, optimizer=fastbp.SGD(lr=0.05))
    np.testing.assert_array_equal(model.theta, twin_model.theta)
