"""The MLP end to end (fastbp/model.py): training semantics, predict/evaluate, gradients, divergence,
callbacks, weight decay, partial_fit and the optimizer state, digits.

``fastbp.reference`` (plain NumPy) is the oracle throughout. The backends, the fit loop's history and
early stopping, gradient checks, initialisation and save/load have files of their own
(``test_training.py``, ``test_fitting.py``, ``test_gradcheck.py``, ``test_network.py``,
``test_persistence.py``).
"""

import math

import numpy as np
import pytest
from conftest import LOSSES, OUT, as_rows, flat, make_data, ref_weights, set_biases, twin

import fastbp
from fastbp import reference
from fastbp.datasets import load_digits, train_test_split


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
