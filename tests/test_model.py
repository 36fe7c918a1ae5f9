"""The MLP end to end: training semantics, backends, gradients, early stopping, save/load, init, digits.

``fastbp.reference`` (plain NumPy) is the oracle throughout.
"""

import json
import math
import os

import numba
import numpy as np
import pytest

import fastbp
from fastbp import reference
from fastbp.datasets import load_digits, train_test_split
from fastbp.kernels import ACTIVATIONS

LOSSES = ("mse", "binary_cross_entropy", "softmax_cross_entropy")
OUT = {"mse": 2, "binary_cross_entropy": 3, "softmax_cross_entropy": 3}
TIGHT = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-4, atol=2e-5)}


# ----------------------------------------------------------------------------------- helpers
def make_data(loss, n=100, d=5, k=None, seed=0, form="labels"):
    """Inputs and targets for ``loss``; ``form="onehot"`` gives one-hot rows for softmax."""
    k = OUT[loss] if k is None else k
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if loss == "mse":
        y = np.tanh(X[:, :k] * 1.5) + 0.1 * rng.standard_normal((n, k))
    elif loss == "binary_cross_entropy":
        y = (X[:, :k] + 0.3 * rng.standard_normal((n, k)) > 0).astype(np.float64)  # multi-label
    else:
        y = (np.argmax(X[:, :k] + 0.3 * rng.standard_normal((n, k)), axis=1)).astype(np.int64)
        if form == "onehot":
            y = np.eye(k)[y]
    return X, y


def as_rows(loss, y, k):
    """Targets as ``(n, k)`` float64 rows, as the reference takes them."""
    y = np.asarray(y)
    if loss == "softmax_cross_entropy" and y.ndim == 1:
        return np.eye(k)[y]
    return y.astype(np.float64).reshape(len(y), k)


def ref_weights(model):
    """The model's weights as float64 lists for the reference."""
    Ws, bs = model.get_weights()
    return [W.astype(np.float64) for W in Ws], [b.astype(np.float64) for b in bs]


def flat(Ws, bs):
    """Per-layer arrays in the flat layout of ``MLP.theta`` (W row-major, then b, per layer)."""
    return np.concatenate([np.concatenate([W.ravel(), b.ravel()]) for W, b in zip(Ws, bs)])


def set_biases(model, value):
    Ws, bs = model.get_weights()
    model.set_weights(Ws, [np.full_like(b, value) for b in bs])


def twin(model_kwargs):
    return fastbp.MLP(**model_kwargs), fastbp.MLP(**model_kwargs)


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


# ------------------------------------------------------------------- continuing from weights
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_two_fits_equal_one_longer_fit(momentum):
    X, y = make_data("softmax_cross_entropy", n=50)
    kw = dict(layers=[5, 8, 3], activation="tanh", loss="softmax_cross_entropy", dtype=np.float64, seed=3)
    a, b = twin(kw)
    theta0 = a.theta.copy()
    opt_a = fastbp.SGD(lr=0.1, momentum=momentum)
    h1 = a.fit(X, y, epochs=1, batch_size=16, optimizer=opt_a, shuffle=False)
    assert not np.array_equal(a.theta, theta0)  # it moved
    h2 = a.fit(X, y, epochs=1, batch_size=16, optimizer=opt_a, shuffle=False)
    hb = b.fit(X, y, epochs=2, batch_size=16, optimizer=fastbp.SGD(lr=0.1, momentum=momentum), shuffle=False)
    np.testing.assert_allclose(a.theta, b.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h1["loss"] + h2["loss"], hb["loss"], rtol=1e-12)


def test_fit_starts_from_set_weights_and_never_reinitialises():
    X, y = make_data("mse", n=40)
    model = fastbp.MLP([5, 6, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    rng = np.random.default_rng(42)
    Ws = [rng.standard_normal(W.shape) * 0.3 for W in model.get_weights()[0]]
    bs = [rng.standard_normal(b.shape) * 0.3 for b in model.get_weights()[1]]
    model.set_weights(Ws, bs)
    lr = 0.05
    model.fit(X, y, epochs=1, batch_size=40, optimizer=fastbp.SGD(lr=lr), shuffle=False)  # one full-batch step
    _, gWs, gbs = reference.loss_and_grad(X, y, Ws, bs, ["tanh"], "mse")
    expected = flat(Ws, bs) - lr * flat(gWs, gbs)
    np.testing.assert_allclose(model.theta, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)],
                         ids=["plain", "momentum", "nesterov"])
@pytest.mark.parametrize("loss", LOSSES)
def test_unshuffled_epoch_with_partial_batch_matches_hand_loop(loss, momentum, nesterov):
    n, bs_ = 23, 5  # 4 full minibatches and a last one of 3 samples
    k = OUT[loss]
    X, y = make_data(loss, n=n)
    acts = ["tanh", "relu"]
    model = fastbp.MLP([5, 7, 6, k], activation=acts, loss=loss, dtype=np.float64, seed=11)
    set_biases(model, 0.05)
    Ws, bs = ref_weights(model)
    T = as_rows(loss, y, k)
    lr = 0.1
    h = model.fit(X, y, epochs=1, batch_size=bs_, shuffle=False, backend="cpu",
                  optimizer=fastbp.SGD(lr=lr, momentum=momentum, nesterov=nesterov))
    state, losses, sizes = {}, [], []
    for i in range(0, n, bs_):
        batch_loss, gWs, gbs = reference.loss_and_grad(X[i:i + bs_], T[i:i + bs_], Ws, bs, acts, loss)
        reference.optimizer_step("sgd", Ws + bs, gWs + gbs, state, lr=lr, momentum=momentum, nesterov=nesterov)
        losses.append(batch_loss)
        sizes.append(len(X[i:i + bs_]))
    assert sizes[-1] == 3 and state["step"] == 5
    np.testing.assert_allclose(model.theta, flat(Ws, bs), rtol=1e-10, atol=1e-12)
    assert h["loss"][0] == pytest.approx(np.dot(losses, sizes) / n, rel=1e-10)
    assert int(model.optimizer.step[0]) == 5


# --------------------------------------------------------------------------- reproducibility
def test_same_seed_reproduces_and_different_seeds_differ():
    X, y = make_data("softmax_cross_entropy", n=80)
    kw = dict(layers=[5, 8, 3], activation="relu", loss="softmax_cross_entropy", dtype=np.float32)
    a, b, c = (fastbp.MLP(seed=s, **kw) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.theta, b.theta)
    assert not np.array_equal(a.theta, c.theta)
    for m in (a, b, c):
        m.fit(X, y, epochs=3, batch_size=16, shuffle=True, optimizer=fastbp.Adam(lr=1e-2))
    np.testing.assert_array_equal(a.theta, b.theta)
    assert not np.allclose(a.theta, c.theta)


def test_seed_drives_the_shuffle():
    """Same initial weights, different seeds: only the visiting order differs, and so do the results."""
    X, y = make_data("mse", n=64)
    kw = dict(layers=[5, 6, 2], activation="tanh", loss="mse", dtype=np.float64)
    a, b = fastbp.MLP(seed=1, **kw), fastbp.MLP(seed=2, **kw)
    b.set_weights(*a.get_weights())
    c = fastbp.MLP(seed=1, **kw)
    for m in (a, b, c):
        m.fit(X, y, epochs=2, batch_size=8, shuffle=True, optimizer=fastbp.SGD(lr=0.1))
    np.testing.assert_array_equal(a.theta, c.theta)
    assert not np.allclose(a.theta, b.theta)
    # without shuffling the seed no longer matters
    d, e = fastbp.MLP(seed=1, **kw), fastbp.MLP(seed=2, **kw)
    e.set_weights(*d.get_weights())
    for m in (d, e):
        m.fit(X, y, epochs=2, batch_size=8, shuffle=False, optimizer=fastbp.SGD(lr=0.1))
    np.testing.assert_array_equal(d.theta, e.theta)


# ---------------------------------------------------------------------- backend equivalence
LOSS_CASES = {
    "mse": ("mse", 2, "labels"),
    "bce_multilabel": ("binary_cross_entropy", 3, "labels"),
    "ce_labels": ("softmax_cross_entropy", 3, "labels"),
    "ce_onehot": ("softmax_cross_entropy", 3, "onehot"),
}
OPTIMIZERS = {
    "adam": lambda: fastbp.Adam(lr=1e-2, weight_decay=1e-3),
    "sgd_momentum": lambda: fastbp.SGD(lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda: fastbp.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "adamw": lambda: fastbp.AdamW(lr=1e-2),
}


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("case", list(LOSS_CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_backends_follow_the_same_trajectory(dtype, case, opt_name):
    loss, k, form = LOSS_CASES[case]
    X, y = make_data(loss, n=100, k=k, form=form)
    results = {}
    for backend in ("numpy", "cpu", "parallel"):
        model = fastbp.MLP([5, 8, 6, k], activation=["relu", "tanh"], loss=loss, dtype=dtype, seed=21)
        opt = OPTIMIZERS[opt_name]()
        h = model.fit(X, y, epochs=3, batch_size=16, optimizer=opt, shuffle=True, backend=backend)
        assert h["backend"] == backend
        assert model.theta.dtype == dtype
        assert int(opt.step[0]) == 3 * 7  # 6 full minibatches and a last one of 4, per epoch
        results[backend] = (h, model.theta.copy(), opt.m.copy(), opt.v.copy())
    h_ref, theta_ref, m_ref, v_ref = results["numpy"]
    loss_tol = 1e-10 if dtype == np.float64 else 1e-5
    for backend in ("cpu", "parallel"):
        h, theta, m, v = results[backend]
        np.testing.assert_allclose(h["loss"], h_ref["loss"], rtol=loss_tol, err_msg=backend)
        if "accuracy" in h_ref:
            np.testing.assert_allclose(h["accuracy"], h_ref["accuracy"], atol=0 if dtype == np.float64 else 0.02)
        np.testing.assert_allclose(theta, theta_ref, **TIGHT[dtype], err_msg=backend)
        np.testing.assert_allclose(m, m_ref, **TIGHT[dtype], err_msg=backend)
        if opt_name.startswith("adam"):
            np.testing.assert_allclose(v, v_ref, rtol=TIGHT[dtype]["rtol"], atol=1e-12, err_msg=backend)


@pytest.mark.parametrize("opt_name", ["adam", "sgd_momentum"])
def test_backends_agree_when_the_step_runs_in_several_tiles(opt_name):
    """21,423 parameters: the compiled step sums and updates them in tiles of 8,192 (two per thread)."""
    X, y = make_data("softmax_cross_entropy", n=64, k=3, form="labels", d=40)
    results = {}
    for backend in ("numpy", "cpu", "parallel"):
        model = fastbp.MLP([40, 300, 30, 3], activation="tanh", loss="softmax_cross_entropy",
                           dtype=np.float64, seed=5)
        assert model.theta.size == 21423
        opt = OPTIMIZERS[opt_name]()
        model.fit(X, y, epochs=2, batch_size=16, optimizer=opt, shuffle=True, backend=backend)
        results[backend] = (model.theta.copy(), opt.m.copy(), opt.v.copy())
    for backend in ("cpu", "parallel"):
        for got, want in zip(results[backend], results["numpy"]):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=backend)


def test_auto_backend_resolves(monkeypatch):
    X, y = make_data("softmax_cross_entropy", n=100)
    kw = dict(layers=[5, 8, 6, 3], activation="relu", loss="softmax_cross_entropy", dtype=np.float64, seed=0)
    small = fastbp.MLP(**kw)
    h = small.fit(X, y, epochs=1, batch_size=16)  # "auto" is the default
    assert h["backend"] == "cpu"  # a tiny minibatch is not worth waking threads
    monkeypatch.setattr(fastbp._settings, "PARALLEL_MIN_WORK", 0)
    big = fastbp.MLP(**kw)
    h2 = big.fit(X, y, epochs=1, batch_size=16, backend="auto")
    assert h2["backend"] in ("cpu", "parallel")
    assert h2["backend"] == ("parallel" if numba.get_num_threads() > 1 else "cpu")
    np.testing.assert_allclose(big.theta, small.theta, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- predict / evaluate
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("loss", LOSSES)
def test_predict_and_evaluate(loss, dtype):
    k = OUT[loss]
    X, y = make_data(loss, n=50)
    model = fastbp.MLP([5, 8, k], activation="gelu", loss=loss, dtype=dtype, seed=4)
    model.fit(X, y, epochs=2, batch_size=16, optimizer=fastbp.Adam(lr=1e-2))
    Z = model.decision_function(X)
    P = model.predict(X)
    assert Z.shape == P.shape == (50, k) and Z.dtype == P.dtype == dtype
    Ws, bs = ref_weights(model)
    Zs, _ = reference.forward(X.astype(dtype).astype(np.float64), Ws, bs, ["gelu"])
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Z, Zs[-1], **tol)
    if loss == "softmax_cross_entropy":
        np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)
        assert np.all(P >= 0) and np.all(P <= 1)
        np.testing.assert_allclose(P, reference.softmax(Zs[-1]), **tol)
    elif loss == "binary_cross_entropy":
        assert np.all(P > 0) and np.all(P < 1)
        np.testing.assert_allclose(P, reference.sigmoid(Zs[-1]), **tol)
    else:
        np.testing.assert_array_equal(P, Z)
    T = as_rows(loss, y, k).astype(dtype)  # evaluate converts the targets to the model dtype
    result = model.evaluate(X, y)
    assert result["loss"] == pytest.approx(reference.loss_value(loss, Z, T), rel=1e-12)
    if loss == "mse":
        assert set(result) == {"loss"}
    elif loss == "softmax_cross_entropy":
        assert set(result) == {"loss", "accuracy"}
        assert result["accuracy"] == pytest.approx(np.mean(Z.argmax(axis=1) == y), abs=1e-12)
    else:
        assert set(result) == {"loss", "accuracy"}
        assert result["accuracy"] == pytest.approx(np.mean((Z > 0) == (T > 0.5)), abs=1e-12)


def test_predict_in_several_blocks_matches_reference():
    """More rows than one prediction block (1024), with a partial last block."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2500, 3))
    model = fastbp.MLP([3, 4, 2], activation="elu", loss="softmax_cross_entropy", dtype=np.float64, seed=0)
    set_biases(model, 0.2)
    Ws, bs = ref_weights(model)
    Zs, _ = reference.forward(X, Ws, bs, ["elu"])
    np.testing.assert_allclose(model.decision_function(X), Zs[-1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.predict(X[:1]), reference.softmax(Zs[-1][:1]), rtol=1e-12)


# ------------------------------------------------------------------------------ loss_and_grad
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("loss, form", [("mse", "values"), ("binary_cross_entropy", "values"),
                                        ("softmax_cross_entropy", "labels"), ("softmax_cross_entropy", "onehot")])
def test_loss_and_grad_matches_reference_and_changes_nothing(loss, form, dtype):
    k = OUT[loss]
    X, y = make_data(loss, n=33, form=form)
    acts = ["sigmoid", "softplus"]
    model = fastbp.MLP([5, 9, 4, k], activation=acts, loss=loss, dtype=dtype, seed=8)
    set_biases(model, 0.1)
    theta0 = model.theta.copy()
    value, gWs, gbs = model.loss_and_grad(X, y)
    np.testing.assert_array_equal(model.theta, theta0)
    assert model.optimizer is None
    assert isinstance(value, float)
    assert [g.shape for g in gWs] == [W.shape for W in model.get_weights()[0]]
    assert [g.shape for g in gbs] == [b.shape for b in model.get_weights()[1]]
    assert all(g.dtype == dtype for g in gWs + gbs)
    Ws, bs = ref_weights(model)
    ref_value, rWs, rbs = reference.loss_and_grad(X.astype(dtype).astype(np.float64), as_rows(loss, y, k), Ws, bs,
                                                  acts, loss)
    got, want = flat(gWs, gbs).astype(np.float64), flat(rWs, rbs)
    if dtype == np.float64:
        assert value == pytest.approx(ref_value, rel=1e-10, abs=1e-10)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    else:
        assert value == pytest.approx(ref_value, rel=1e-5)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    # twice gives the same, and still nothing moved
    value2, gWs2, _ = model.loss_and_grad(X, y)
    assert value2 == value
    np.testing.assert_array_equal(gWs2[0], gWs[0])
    np.testing.assert_array_equal(model.theta, theta0)


# ------------------------------------------------------------------------------ gradient checks
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


# -------------------------------------------------------------------------------- divergence
def _divergent_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5))
    return X, rng.standard_normal((64, 2)) * 1000.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_divergence_raises_and_keeps_finite_weights(dtype):
    X, y = _divergent_data()
    kw = dict(layers=[5, 8, 2], activation="tanh", loss="mse", dtype=dtype, seed=0)
    model = fastbp.MLP(**kw)
    theta0 = model.theta.copy()
    opt = fastbp.SGD(lr=1e6, momentum=0.5)
    with pytest.raises(fastbp.DivergedError, match="diverged") as info:
        model.fit(X, y, epochs=10, batch_size=8, optimizer=opt, shuffle=False)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert isinstance(err.history, dict)
    done = len(err.history["loss"])
    assert done < 10
    assert all(np.isfinite(v) for v in err.history["loss"])
    assert np.all(np.isfinite(model.theta))
    assert np.all(np.isfinite(opt.m))
    # the weights (and optimizer state) are those from before the diverging epoch
    ref = fastbp.MLP(**kw)
    ref_opt = fastbp.SGD(lr=1e6, momentum=0.5)
    if done:
        ref.fit(X, y, epochs=done, batch_size=8, optimizer=ref_opt, shuffle=False)
        np.testing.assert_array_equal(opt.step, ref_opt.step)
        np.testing.assert_array_equal(opt.m, ref_opt.m)
    else:
        assert int(opt.step[0]) == 0
    np.testing.assert_array_equal(model.theta, ref.theta)
    if not done:
        np.testing.assert_array_equal(model.theta, theta0)
    # and the model is still usable
    assert np.all(np.isfinite(model.predict(X)))


def test_divergence_with_patience_warns_and_returns():
    X, y = _divergent_data()
    model = fastbp.MLP([5, 8, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    with pytest.warns(RuntimeWarning, match="diverged"):
        h = model.fit(X, y, epochs=10, batch_size=8, optimizer=fastbp.SGD(lr=1e6), shuffle=False, patience=5)
    assert isinstance(h, dict)
    assert len(h["loss"]) < 10
    assert np.all(np.isfinite(model.theta))
    assert np.all(np.isfinite(model.predict(X)))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("backend", ["numpy", "cpu", "parallel"])
def test_divergence_detected_on_every_backend(backend):
    X, y = _divergent_data()
    model = fastbp.MLP([5, 8, 2], activation="tanh", loss="mse", dtype=np.float32, seed=0)
    with pytest.raises(fastbp.DivergedError):
        model.fit(X, y, epochs=10, batch_size=8, optimizer=fastbp.SGD(lr=1e6), shuffle=False, backend=backend)
    assert np.all(np.isfinite(model.theta))


# --------------------------------------------------------------------------------- callbacks
def test_callbacks_called_once_per_epoch():
    X, y = make_data("softmax_cross_entropy", n=40)
    Xv, yv = make_data("softmax_cross_entropy", n=20, seed=1)
    model = fastbp.MLP([5, 6, 3], activation="tanh", loss="softmax_cross_entropy", dtype=np.float64, seed=0)
    calls_a, calls_b = [], []
    h = model.fit(X, y, epochs=4, batch_size=16, validation_data=(Xv, yv),
                  callbacks=[lambda ep, logs: calls_a.append((ep, logs)), lambda ep, logs: calls_b.append(ep)])
    assert [ep for ep, _ in calls_a] == [0, 1, 2, 3]
    assert calls_b == [0, 1, 2, 3]
    for i, (_, logs) in enumerate(calls_a):
        assert isinstance(logs, dict)
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(logs)
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert logs[key] == h[key][i]


def test_callback_returning_true_stops_training():
    X, y = make_data("mse", n=40)
    model = fastbp.MLP([5, 6, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    seen = []
    h = model.fit(X, y, epochs=10, batch_size=16,
                  callbacks=[lambda ep, logs: ep == 1, lambda ep, logs: seen.append(ep)])
    assert len(h["loss"]) == 2
    assert seen == [0, 1]  # every callback still runs in the stopping epoch
    h2 = model.fit(X, y, epochs=3, batch_size=16, callbacks=[lambda ep, logs: None])
    assert len(h2["loss"]) == 3


# ------------------------------------------------------------------------------ weight decay
def test_sgd_weight_decay_is_l2_on_every_parameter():
    X, y = make_data("binary_cross_entropy", n=30)
    acts = ["tanh"]
    model = fastbp.MLP([5, 7, 3], activation=acts, loss="binary_cross_entropy", dtype=np.float64, seed=2)
    set_biases(model, 0.3)  # non-zero biases, so decay on them shows
    Ws, bs = ref_weights(model)
    theta0 = flat(Ws, bs)
    lr, wd = 0.1, 0.05
    model.fit(X, y, epochs=1, batch_size=30, shuffle=False, optimizer=fastbp.SGD(lr=lr, weight_decay=wd))
    # plain SGD on J + wd/2 ||theta||^2, whose gradient is g + wd * theta
    _, gWs, gbs = reference.loss_and_grad(X, y, Ws, bs, acts, "binary_cross_entropy")
    expected = theta0 - lr * (flat(gWs, gbs) + wd * theta0)
    np.testing.assert_allclose(model.theta, expected, rtol=1e-12, atol=1e-12)
    # the finite-difference gradient of the penalised objective agrees
    i = len(theta0) - 1  # the last bias
    eps = 1e-6

    def penalised(theta):
        W_, b_ = model.network.unflatten(theta)
        return reference.loss_value("binary_cross_entropy", reference.forward(X, W_, b_, acts)[0][-1], y) \
            + wd / 2 * np.dot(theta, theta)

    up, down = theta0.copy(), theta0.copy()
    up[i] += eps
    down[i] -= eps
    numeric = (penalised(up) - penalised(down)) / (2 * eps)
    assert (theta0[i] - model.theta[i]) / lr == pytest.approx(numeric, rel=1e-6)
    # and without decay the biases move differently by exactly lr * wd * b
    plain = fastbp.MLP([5, 7, 3], activation=acts, loss="binary_cross_entropy", dtype=np.float64, seed=2)
    set_biases(plain, 0.3)
    plain.fit(X, y, epochs=1, batch_size=30, shuffle=False, optimizer=fastbp.SGD(lr=lr))
    np.testing.assert_allclose(plain.theta - model.theta, lr * wd * theta0, rtol=1e-9, atol=1e-14)


# ------------------------------------------------------------------ partial_fit and state
@pytest.mark.parametrize("n, batch_size", [(50, 16), (48, 16), (5, 16), (7, 1)])
def test_partial_fit_is_one_pass(n, batch_size):
    X, y = make_data("softmax_cross_entropy", n=n)
    kw = dict(layers=[5, 6, 3], activation="tanh", loss="softmax_cross_entropy", dtype=np.float64, seed=0)
    model, other = twin(kw)
    opt = fastbp.SGD(lr=0.1, momentum=0.9)
    h = model.partial_fit(X, y, batch_size=batch_size, optimizer=opt)
    assert int(opt.step[0]) == math.ceil(n / batch_size)
    assert len(h["loss"]) == 1
    other.fit(X, y, epochs=1, batch_size=batch_size, optimizer=fastbp.SGD(lr=0.1, momentum=0.9))
    np.testing.assert_array_equal(model.theta, other.theta)
    model.partial_fit(X, y, batch_size=batch_size)  # continues with the same optimizer
    assert model.optimizer is opt
    assert int(opt.step[0]) == 2 * math.ceil(n / batch_size)


def test_optimizer_state_continues_across_fits():
    X, y = make_data("mse", n=50)
    kw = dict(layers=[5, 6, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    a, b = twin(kw)
    opt = fastbp.Adam(lr=1e-2)
    a.fit(X, y, epochs=1, batch_size=16, optimizer=opt)
    assert int(opt.step[0]) == 4
    a.fit(X, y, epochs=1, batch_size=16, optimizer=opt)
    assert int(opt.step[0]) == 8
    a.fit(X, y, epochs=1, batch_size=16)  # None: the previous optimizer goes on
    assert a.optimizer is opt and int(opt.step[0]) == 12
    opt_b = fastbp.Adam(lr=1e-2)
    b.fit(X, y, epochs=3, batch_size=16, optimizer=opt_b)
    np.testing.assert_allclose(a.theta, b.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(opt.m, opt_b.m, rtol=0, atol=1e-12)
    np.testing.assert_allclose(opt.v, opt_b.v, rtol=0, atol=1e-12)
    # a new instance starts afresh, which (for Adam) is a different trajectory
    fresh = fastbp.Adam(lr=1e-2)
    a.fit(X, y, epochs=1, batch_size=16, optimizer=fresh)
    b.fit(X, y, epochs=1, batch_size=16, optimizer=opt_b)
    assert int(fresh.step[0]) == 4 and int(opt_b.step[0]) == 16
    assert not np.allclose(a.theta, b.theta, rtol=0, atol=1e-9)


def test_first_fit_defaults_to_adam():
    X, y = make_data("mse", n=20)
    model = fastbp.MLP([5, 3, 2], loss="mse", seed=0)
    assert model.optimizer is None
    model.fit(X, y, batch_size=8)
    assert isinstance(model.optimizer, fastbp.Adam)
    assert int(model.optimizer.step[0]) == 3


# --------------------------------------------------------------------------------- save/load
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_save_load_round_trip(tmp_path, dtype):
    X, y = make_data("softmax_cross_entropy", n=40)
    model = fastbp.MLP([5, 7, 6, 3], activation=["relu", "tanh"], loss="softmax_cross_entropy", dtype=dtype,
                       seed=9, init="glorot_uniform")
    model.fit(X, y, epochs=2, batch_size=8)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastbp.MLP.load(path)
    assert loaded.theta.dtype == dtype and loaded.dtype == model.dtype
    assert loaded.theta.tobytes() == model.theta.tobytes()  # bitwise
    assert loaded.layers == model.layers
    assert loaded.activations == ["relu", "tanh"]
    assert loaded.loss == model.loss
    assert loaded.seed == 9 and loaded.init == "glorot_uniform"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.evaluate(X, y) == model.evaluate(X, y)
    loaded2 = fastbp.MLP.load(str(path))  # str paths too
    assert loaded2.theta.tobytes() == model.theta.tobytes()
    loaded.fit(X, y, epochs=1, batch_size=8)  # the loaded model trains
    assert np.all(np.isfinite(loaded.theta))


def _saved_bytes(tmp_path, dtype=np.float64):
    model = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=dtype, seed=0)
    path = tmp_path / "good.npz"
    model.save(path)
    return model, path.read_bytes()


def _header(**changes):
    header = {"format": "fastbp-mlp", "version": 1, "layers": [3, 4, 2], "activation": ["tanh"], "loss": "mse",
              "dtype": "float64", "init": "auto", "seed": 0}
    header.update(changes)
    for key in [k for k, v in changes.items() if v is _DROP]:
        del header[key]
    return np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)


_DROP = object()


class _Bomb:
    """Unpickling this creates a directory: the proof that something was unpickled."""

    target = None

    def __reduce__(self):
        return (os.mkdir, (str(_Bomb.target),))


def _write_bad(kind, tmp_path):
    model, good = _saved_bytes(tmp_path)
    theta = model.theta
    path = tmp_path / f"{kind}.npz"
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "truncated_tail":
        path.write_bytes(good[:-10])
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).bytes(2000))
    elif kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "text_file":
        path.write_text("layers: [3, 4, 2]\n")
    elif kind == "npy_not_npz":
        np.save(path, theta)
        path = tmp_path / "npy_not_npz.npz.npy"
    elif kind == "extra_arrays":
        np.savez(path, header=_header(), theta=theta, extra=np.zeros(3))
    elif kind == "missing_theta":
        np.savez(path, header=_header())
    elif kind == "theta_too_short":
        np.savez(path, header=_header(), theta=theta[:-1])
    elif kind == "theta_too_long":
        np.savez(path, header=_header(), theta=np.r_[theta, 0.0])
    elif kind == "theta_wrong_dtype":
        np.savez(path, header=_header(), theta=theta.astype(np.float32))
    elif kind == "theta_2d":
        np.savez(path, header=_header(), theta=theta.reshape(1, -1))
    elif kind == "theta_nan":
        bad = theta.copy()
        bad[0] = np.nan
        np.savez(path, header=_header(), theta=bad)
    elif kind == "header_not_json":
        np.savez(path, header=np.frombuffer(b"{not json", dtype=np.uint8), theta=theta)
    elif kind == "header_not_utf8":
        np.savez(path, header=np.frombuffer(b"\xff\xfe\x00", dtype=np.uint8), theta=theta)
    elif kind == "header_json_list":
        np.savez(path, header=np.frombuffer(b"[1, 2]", dtype=np.uint8), theta=theta)
    elif kind == "header_wrong_format":
        np.savez(path, header=_header(format="other-mlp"), theta=theta)
    elif kind == "header_wrong_version":
        np.savez(path, header=_header(version=2), theta=theta)
    elif kind == "header_bad_dtype":
        np.savez(path, header=_header(dtype="float16"), theta=theta)
    elif kind == "header_missing_layers":
        np.savez(path, header=_header(layers=_DROP), theta=theta)
    elif kind == "header_bad_layers":
        np.savez(path, header=_header(layers=[3, 0, 2]), theta=theta)
    elif kind == "header_unknown_activation":
        np.savez(path, header=_header(activation=["swish"]), theta=theta)
    elif kind == "header_unknown_loss":
        np.savez(path, header=_header(loss="hinge"), theta=theta)
    elif kind == "header_as_string_array":
        np.savez(path, header=np.array(json.dumps({"format": "fastbp-mlp"})), theta=theta)
    elif kind in ("object_theta", "object_header"):
        bomb = np.empty(1, dtype=object)
        bomb[0] = _Bomb()
        arrays = {"header": _header(), "theta": theta}
        arrays[kind.split("_")[1]] = bomb
        np.savez(path, **arrays)  # allow_pickle defaults to True here: the array is pickled
    else:
        raise AssertionError(kind)
    return path


BAD_FILES = ["truncated", "truncated_tail", "random_bytes", "empty_file", "text_file", "npy_not_npz",
             "extra_arrays", "missing_theta", "theta_too_short", "theta_too_long", "theta_wrong_dtype", "theta_2d",
             "theta_nan", "header_not_json", "header_not_utf8", "header_json_list", "header_wrong_format",
             "header_wrong_version", "header_bad_dtype", "header_missing_layers", "header_bad_layers",
             "header_unknown_activation", "header_unknown_loss", "header_as_string_array", "object_theta",
             "object_header"]


@pytest.mark.parametrize("kind", BAD_FILES)
def test_load_rejects_bad_files(tmp_path, kind):
    _Bomb.target = tmp_path / "UNPICKLED"
    path = _write_bad(kind, tmp_path)
    assert path.exists()
    with pytest.raises(ValueError, match="not a valid fastbp model file"):
        fastbp.MLP.load(path)
    assert not _Bomb.target.exists(), "MLP.load unpickled data"


def test_the_bomb_would_go_off_if_unpickled(tmp_path):
    """Guard for the test above: loading the object array with pickling allowed does unpickle it."""
    _Bomb.target = tmp_path / "UNPICKLED"
    path = _write_bad("object_theta", tmp_path)
    with np.load(path, allow_pickle=True) as data:
        data["theta"]
    assert _Bomb.target.exists()


def test_load_a_directory_is_not_a_model(tmp_path):
    with pytest.raises(ValueError, match="not a valid fastbp model file"):
        fastbp.MLP.load(tmp_path)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastbp.MLP.load(tmp_path / "does_not_exist.npz")


# ------------------------------------------------------------------------------------- init
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


# ------------------------------------------------------------------------------------ digits
def test_digits_dataset_shapes():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert sorted(set(y.tolist())) == list(range(10))
    Xr, _ = load_digits(dtype=np.float64, scale=False)
    assert Xr.dtype == np.float64 and Xr.max() == 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_fraction=0.25, seed=0)
    assert len(Xte) == round(1797 * 0.25) and len(Xtr) + len(Xte) == 1797
    assert len(ytr) == len(Xtr) and len(yte) == len(Xte)


def test_digits_reach_95_percent():
    X, y = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_fraction=0.25, seed=0)
    model = fastbp.MLP([64, 128, 64, 10], activation="relu", loss="softmax_cross_entropy", dtype=np.float32,
                       seed=0)
    h = model.fit(Xtr, ytr, epochs=30, batch_size=32, optimizer=fastbp.Adam(lr=1e-3))
    assert len(h["loss"]) == 30
    result = model.evaluate(Xte, yte)
    assert result["accuracy"] >= 0.95, result
    assert np.mean(model.predict(Xte).argmax(axis=1) == yte) == pytest.approx(result["accuracy"])
