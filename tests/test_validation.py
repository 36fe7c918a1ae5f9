"""Bad input gets a clear ValueError/TypeError naming the problem, and leaves the model unchanged.

"Unchanged" is checked three ways after every rejected call: the parameter
vector is bitwise the same, the optimizer state is the same, and a following
``fit`` with ``shuffle=True`` gives bitwise the result of an untouched twin of
the same seed (so the shuffling generator was not advanced either).
"""

import numpy as np
import pytest
from conftest import OUT

import fastbp

N, D = 20, 4


def _data(loss, n=N, seed=0):
    """Good ``X, y`` for a ``[D, 6, OUT[loss]]`` model."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D))
    k = OUT[loss]
    if loss == "mse":
        y = rng.standard_normal((n, k))
    elif loss == "binary_cross_entropy":
        y = (rng.random((n, k)) > 0.5).astype(np.float64)
    else:
        y = np.arange(n) % k
    return X, y


def _model(loss, dtype=np.float64, seed=7):
    return fastbp.MLP([D, 6, OUT[loss]], activation="tanh", loss=loss, dtype=dtype, seed=seed)


def _trained_pair(loss, dtype=np.float64):
    """A model and its twin, both trained one shuffled epoch (so each has optimizer state)."""
    X, y = _data(loss)
    pair = []
    for _ in range(2):
        m = _model(loss, dtype)
        m.fit(X, y, epochs=1, batch_size=8, shuffle=True, optimizer=fastbp.Adam(lr=1e-2))
        pair.append(m)
    np.testing.assert_array_equal(pair[0].theta, pair[1].theta)
    return pair


def _assert_untouched(model, twin, theta_before, loss):
    """``model`` still equals ``twin``: weights, optimizer state, and the shuffling generator."""
    np.testing.assert_array_equal(model.theta, theta_before)
    np.testing.assert_array_equal(model.theta, twin.theta)
    assert (model.optimizer is None) == (twin.optimizer is None)
    if model.optimizer is not None:
        np.testing.assert_array_equal(model.optimizer.step, twin.optimizer.step)
        np.testing.assert_array_equal(model.optimizer.m, twin.optimizer.m)
        np.testing.assert_array_equal(model.optimizer.v, twin.optimizer.v)
    X, y = _data(loss, seed=1)
    h1 = model.fit(X, y, epochs=2, batch_size=8, shuffle=True)  # continues the previous optimizer
    h2 = twin.fit(X, y, epochs=2, batch_size=8, shuffle=True)
    np.testing.assert_array_equal(model.theta, twin.theta)
    assert h1["loss"] == h2["loss"]


def _check_rejected(loss, call, exc, match, dtype=np.float64):
    model, twin = _trained_pair(loss, dtype)
    theta_before = model.theta.copy()
    with pytest.raises(exc, match=match):
        call(model)
    _assert_untouched(model, twin, theta_before, loss)


# --------------------------------------------------------------------------- bad data for fit
def _with(loss, X=None, y=None):
    X0, y0 = _data(loss)
    return (X0 if X is None else X), (y0 if y is None else y)


def _x_nan():
    X, _ = _data("mse")
    X[3, 2] = np.nan
    return X


def _x_inf():
    X, _ = _data("mse")
    X[5, 0] = -np.inf
    return X


def _y_nan(loss):
    _, y = _data(loss)
    if loss == "softmax_cross_entropy":
        y = y.astype(np.float64)
    y = y.copy()
    y.flat[4] = np.nan
    return y


def _onehot(loss, width):
    _, y = _data(loss)
    return np.eye(width)[y % width]


# (id, loss, X, y, exception, message pattern)
BAD_DATA = [
    ("X_1d", "mse", np.zeros(N), None, ValueError, "2-D"),
    ("X_3d", "mse", np.zeros((N, D, 1)), None, ValueError, "2-D"),
    ("X_0d", "mse", np.float64(3.0), None, ValueError, "2-D"),
    ("X_too_few_features", "mse", np.zeros((N, D - 1)), None, ValueError, "features"),
    ("X_too_many_features", "softmax_cross_entropy", np.zeros((N, D + 2)), None, ValueError, "features"),
    ("y_too_few_rows", "mse", None, np.zeros((N - 1, 2)), ValueError, "rows"),
    ("y_too_many_rows", "softmax_cross_entropy", None, np.zeros(N + 1, dtype=np.int64), ValueError, "rows"),
    ("y_scalar", "mse", None, np.float64(1.0), ValueError, "rows"),
    ("X_nan", "mse", _x_nan(), None, ValueError, "NaN"),
    ("X_inf", "softmax_cross_entropy", _x_inf(), None, ValueError, "Inf"),
    ("y_nan_mse", "mse", None, _y_nan("mse"), ValueError, "NaN"),
    ("y_nan_bce", "binary_cross_entropy", None, _y_nan("binary_cross_entropy"), ValueError, "NaN"),
    ("y_nan_ce_onehot", "softmax_cross_entropy", None,
     np.where(np.arange(N)[:, None] == 4, np.nan, _onehot("softmax_cross_entropy", 3)), ValueError, "NaN"),
    ("y_nan_ce_labels", "softmax_cross_entropy", None, _y_nan("softmax_cross_entropy"), TypeError,
     "integer class labels"),
    ("y_inf_mse", "mse", None, np.full((N, 2), np.inf), ValueError, "Inf"),
    ("labels_negative", "softmax_cross_entropy", None, np.r_[-1, np.zeros(N - 1, dtype=np.int64)], ValueError,
     r"labels must lie in \[0, 2\]"),
    ("labels_equal_k", "softmax_cross_entropy", None, np.r_[3, np.zeros(N - 1, dtype=np.int64)], ValueError,
     r"labels must lie in \[0, 2\]"),
    ("labels_far_too_big", "softmax_cross_entropy", None, np.full(N, 1000), ValueError, "labels"),
    ("labels_float_nonint", "softmax_cross_entropy", None, np.full(N, 0.5), TypeError, "integer class labels"),
    ("labels_string", "softmax_cross_entropy", None, np.array(["a"] * N), TypeError, "numeric"),
    ("ce_negative_probabilities", "softmax_cross_entropy", None,
     _onehot("softmax_cross_entropy", 3) - 0.5, ValueError, "non-negative"),
    ("bce_above_one", "binary_cross_entropy", None, np.full((N, 3), 1.5), ValueError, r"\[0, 1\]"),
    ("bce_below_zero", "binary_cross_entropy", None, np.full((N, 3), -0.1), ValueError, r"\[0, 1\]"),
    ("bce_1d_for_3_outputs", "binary_cross_entropy", None, np.zeros(N), ValueError, "shape"),
    ("onehot_too_narrow", "softmax_cross_entropy", None, _onehot("softmax_cross_entropy", 2), ValueError, "shape"),
    ("onehot_too_wide", "softmax_cross_entropy", None, _onehot("softmax_cross_entropy", 4), ValueError, "shape"),
    ("mse_wrong_width", "mse", None, np.zeros((N, 3)), ValueError, "shape"),
    ("mse_1d_for_2_outputs", "mse", None, np.zeros(N), ValueError, "shape"),
    ("empty_X", "mse", np.zeros((0, D)), np.zeros((0, 2)), ValueError, "empty"),
    ("empty_X_labels", "softmax_cross_entropy", np.zeros((0, D)), np.zeros(0, dtype=np.int64), ValueError, "empty"),
    ("complex_X", "mse", np.ones((N, D), dtype=np.complex128), None, TypeError, "real"),
    ("string_X", "mse", np.array([["a", "b", "c", "d"]] * N), None, TypeError, "numeric"),
    ("string_X_1d", "mse", np.array(["a", "b"]), None, TypeError, "numeric"),
    ("ragged_X", "mse", [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]] * (N // 2), None, TypeError, "numeric array"),
    ("object_X", "mse", np.array([[object()] * D] * N, dtype=object), None, TypeError, "numeric"),
    ("string_y_mse", "mse", None, np.array([["x", "y"]] * N), TypeError, "numeric"),
    ("complex_y", "mse", None, np.ones((N, 2), dtype=np.complex64), TypeError, "real"),
]


@pytest.mark.parametrize("loss, X, y, exc, match", [case[1:] for case in BAD_DATA], ids=[c[0] for c in BAD_DATA])
def test_fit_rejects_bad_data(loss, X, y, exc, match):
    X, y = _with(loss, X, y)
    _check_rejected(loss, lambda m: m.fit(X, y, epochs=2, batch_size=8), exc, match)


@pytest.mark.parametrize("loss, X, y, exc, match", [case[1:] for case in BAD_DATA], ids=[c[0] for c in BAD_DATA])
@pytest.mark.parametrize("method", ["evaluate", "loss_and_grad", "partial_fit"])
def test_xy_methods_reject_bad_data(method, loss, X, y, exc, match):
    X, y = _with(loss, X, y)
    _check_rejected(loss, lambda m: getattr(m, method)(X, y), exc, match)


X_CASES = [c for c in BAD_DATA if c[3] is None or c[0].startswith("empty")]


@pytest.mark.parametrize("loss, X, y, exc, match", [case[1:] for case in X_CASES], ids=[c[0] for c in X_CASES])
@pytest.mark.parametrize("method", ["predict", "decision_function"])
def test_x_methods_reject_bad_inputs(method, loss, X, y, exc, match):
    X, _ = _with(loss, X, None)
    _check_rejected(loss, lambda m: getattr(m, method)(X), exc, match)


def test_validation_data_is_checked_and_named():
    X, y = _data("softmax_cross_entropy")
    _check_rejected("softmax_cross_entropy",
                    lambda m: m.fit(X, y, validation_data=(X[:, :3], y)), ValueError, "validation X")
    _check_rejected("softmax_cross_entropy",
                    lambda m: m.fit(X, y, validation_data=(X, y + 5)), ValueError, "validation y")
    _check_rejected("softmax_cross_entropy",
                    lambda m: m.fit(X, y, validation_data=(X, y, y)), TypeError, "validation_data")
    _check_rejected("softmax_cross_entropy",
                    lambda m: m.fit(X, y, validation_data=X), TypeError, "validation_data")


def test_bool_labels_for_softmax_are_handled_cleanly():
    """Boolean labels must be read as 0/1 class labels or rejected with a clear error.

    Used unconverted as ``T[np.arange(n), raw]``, NumPy would read a bool
    ``y`` as a *mask* over the columns: an IndexError for most inputs, and
    silently wrong targets when ``n == k``.
    """
    X, _ = _data("softmax_cross_entropy")
    labels = np.arange(N) % 2
    model = fastbp.MLP([D, 6, 2], activation="tanh", loss="softmax_cross_entropy", dtype=np.float64, seed=7)
    expected = model.evaluate(X, labels)
    try:
        got = model.evaluate(X, labels.astype(bool))
    except (TypeError, ValueError) as exc:
        assert "label" in str(exc) or "bool" in str(exc)
    else:
        assert got == expected
    # n == k: the mask reading would silently produce the wrong targets
    X2 = X[:2]
    try:
        got = model.evaluate(X2, np.array([True, False]))
    except (TypeError, ValueError):
        pass
    else:
        assert got == model.evaluate(X2, np.array([1, 0]))


# -------------------------------------------------------------------- bad arguments of fit
BAD_ARGS = [
    ("batch_size_0", dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    ("batch_size_negative", dict(batch_size=-1), ValueError, "batch_size must be >= 1"),
    ("batch_size_float", dict(batch_size=2.5), TypeError, "batch_size must be an int"),
    ("batch_size_integral_float", dict(batch_size=8.0), TypeError, "batch_size must be an int"),
    ("batch_size_bool", dict(batch_size=True), TypeError, "batch_size must be an int"),
    ("batch_size_string", dict(batch_size="8"), TypeError, "batch_size"),
    ("epochs_0", dict(epochs=0), ValueError, "epochs must be >= 1"),
    ("epochs_negative", dict(epochs=-3), ValueError, "epochs must be >= 1"),
    ("epochs_float", dict(epochs=1.5), TypeError, "epochs must be an int"),
    ("epochs_bool", dict(epochs=True), TypeError, "epochs must be an int"),
    ("unknown_backend", dict(backend="cuda9"), ValueError, "unknown backend"),
    ("backend_none", dict(backend=None), ValueError, "unknown backend"),
    ("optimizer_string", dict(optimizer="adam"), TypeError, "optimizer must be a fastbp optimizer"),
    ("optimizer_class", dict(optimizer=fastbp.SGD), TypeError, "optimizer must be a fastbp optimizer"),
    ("callback_not_callable", dict(callbacks=[print, 3]), TypeError, "callbacks"),
    ("patience_0", dict(patience=0), ValueError, "patience"),
    ("patience_float", dict(patience=2.5), TypeError, "patience"),
    ("min_delta_negative", dict(patience=2, min_delta=-0.1), ValueError, "min_delta"),
    ("min_delta_nan", dict(patience=2, min_delta=float("nan")), ValueError, "min_delta"),
]


@pytest.mark.parametrize("kwargs, exc, match", [c[1:] for c in BAD_ARGS], ids=[c[0] for c in BAD_ARGS])
def test_fit_rejects_bad_arguments(kwargs, exc, match):
    X, y = _data("softmax_cross_entropy")
    _check_rejected("softmax_cross_entropy", lambda m: m.fit(X, y, **kwargs), exc, match)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.5), TypeError, "batch_size"),
    (dict(backend="gpu"), ValueError, "unknown backend"),
    (dict(optimizer="sgd"), TypeError, "optimizer"),
], ids=["batch_size_0", "batch_size_float", "unknown_backend", "optimizer_string"])
def test_partial_fit_rejects_bad_arguments(kwargs, exc, match):
    X, y = _data("mse")
    _check_rejected("mse", lambda m: m.partial_fit(X, y, **kwargs), exc, match)


def test_rejected_fit_does_not_touch_a_passed_optimizer():
    X, y = _data("mse")
    opt = fastbp.SGD(lr=0.1, momentum=0.9)
    model, twin = _trained_pair("mse")
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(X, y, batch_size=0, optimizer=opt)
    assert opt.m is None and int(opt.step[0]) == 0
    assert model.optimizer is not opt
    _assert_untouched(model, twin, twin.theta.copy(), "mse")


# ---------------------------------------------------------------------- accepted conversions
def test_integer_X_is_accepted_and_converted():
    rng = np.random.default_rng(3)
    Xi = rng.integers(-3, 4, size=(N, D))
    y = np.arange(N) % 3
    a = _model("softmax_cross_entropy")
    b = _model("softmax_cross_entropy")
    ha = a.fit(Xi, y, epochs=2, batch_size=8, optimizer=fastbp.SGD(lr=0.1))
    hb = b.fit(Xi.astype(np.float64), y, epochs=2, batch_size=8, optimizer=fastbp.SGD(lr=0.1))
    np.testing.assert_array_equal(a.theta, b.theta)
    assert ha["loss"] == hb["loss"]
    np.testing.assert_array_equal(a.predict(Xi), b.predict(Xi.astype(np.float64)))
    assert a.evaluate(Xi.astype(np.int32), y) == b.evaluate(Xi.astype(np.float64), y)


def test_lists_bools_and_integral_float_labels_are_accepted():
    X, y = _data("softmax_cross_entropy")
    model = _model("softmax_cross_entropy")
    ref = model.evaluate(X, y)
    assert model.evaluate(X.tolist(), y.tolist()) == ref
    assert model.evaluate(X, y.astype(np.float32)) == ref  # integral floats are labels
    np.testing.assert_allclose(model.evaluate(X, np.eye(3)[y])["loss"], ref["loss"], rtol=1e-12)
    mse = _model("mse")
    Xb = X > 0
    np.testing.assert_array_equal(mse.predict(Xb), mse.predict(Xb.astype(np.float64)))


def test_float32_model_accepts_float64_input():
    X, y = _data("mse")
    model = _model("mse", dtype=np.float32)
    out = model.predict(X)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, model.predict(X.astype(np.float32)))


# ---------------------------------------------------------------------- constructor errors
CTOR = [
    ("layers_empty", dict(layers=[]), ValueError, "at least an input and an output"),
    ("layers_one", dict(layers=[5]), ValueError, "at least an input and an output"),
    ("layers_not_sequence", dict(layers=5), TypeError, "layers must be a sequence"),
    ("layers_zero_width", dict(layers=[5, 0, 3]), ValueError, "positive ints"),
    ("layers_zero_output", dict(layers=[5, 4, 0]), ValueError, "positive ints"),
    ("layers_negative_width", dict(layers=[5, -4, 3]), ValueError, "positive ints"),
    ("layers_float_width", dict(layers=[5, 2.5, 3]), ValueError, "positive ints"),
    ("layers_integral_float_width", dict(layers=[5.0, 4, 3]), ValueError, "positive ints"),
    ("layers_bool_width", dict(layers=[5, True, 3]), ValueError, "positive ints"),
    ("layers_string_width", dict(layers=[5, "4", 3]), ValueError, "positive ints"),
    ("activations_too_few", dict(layers=[5, 4, 4, 3], activation=["relu"]), ValueError,
     "expected 2 hidden-layer activations, got 1"),
    ("activations_too_many", dict(layers=[5, 4, 3], activation=["relu", "tanh"]), ValueError,
     "expected 1 hidden-layer activations, got 2"),
    ("activation_unknown", dict(layers=[5, 4, 3], activation="swish"), ValueError, "unknown activation 'swish'"),
    ("activation_unknown_no_hidden", dict(layers=[5, 3], activation="swish"), ValueError, "unknown activation"),
    ("activation_unknown_in_list", dict(layers=[5, 4, 4, 3], activation=["relu", "Tanh"]), ValueError,
     "unknown activation 'Tanh'"),
    ("activation_not_a_name", dict(layers=[5, 4, 3], activation=3), TypeError, "activation"),
    ("loss_unknown", dict(layers=[5, 3], loss="hinge"), ValueError, "unknown loss 'hinge'"),
    ("loss_not_a_string", dict(layers=[5, 3], loss=None), ValueError, "unknown loss"),
    ("init_unknown", dict(layers=[5, 3], init="xavier"), ValueError, "unknown init 'xavier'"),
    ("dtype_int", dict(layers=[5, 3], dtype=int), TypeError, "dtype must be numpy.float32 or numpy.float64"),
    ("dtype_int32", dict(layers=[5, 3], dtype=np.int32), TypeError, "dtype must be"),
    ("dtype_float16", dict(layers=[5, 3], dtype=np.float16), TypeError, "dtype must be"),
    ("dtype_float16_name", dict(layers=[5, 3], dtype="float16"), TypeError, "dtype must be"),
    ("dtype_complex", dict(layers=[5, 3], dtype=np.complex128), TypeError, "dtype must be"),
    ("dtype_garbage", dict(layers=[5, 3], dtype="fp32"), TypeError, "dtype must be"),
    ("seed_negative", dict(layers=[5, 3], seed=-1), TypeError, "seed"),
    ("seed_float", dict(layers=[5, 3], seed=1.5), TypeError, "seed"),
]


@pytest.mark.parametrize("kwargs, exc, match", [c[1:] for c in CTOR], ids=[c[0] for c in CTOR])
def test_constructor_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fastbp.MLP(**kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32", "float64"])
def test_constructor_accepts_float_dtypes(dtype):
    model = fastbp.MLP([3, 2], dtype=dtype)
    assert model.theta.dtype == np.dtype(dtype)


# ------------------------------------------------------------------------------ set_weights
def _sw_case(name, model):
    Ws, bs = model.get_weights()
    if name == "W_wrong_shape":
        Ws[1] = np.zeros(Ws[1].shape[::-1], dtype=model.dtype)
        return Ws, bs, ValueError, r"W\[1\] must have shape"
    if name == "b_wrong_shape":
        bs[-1] = np.zeros(bs[-1].shape[0] + 1, dtype=model.dtype)
        return Ws, bs, ValueError, r"b\[1\] must have shape"
    if name == "W_wrong_dtype":
        Ws[-1] = Ws[-1].astype(np.float32)
        return Ws, bs, TypeError, "dtype float64"
    if name == "b_int_dtype":
        bs[-1] = bs[-1].astype(np.int64)
        return Ws, bs, TypeError, "dtype"
    if name == "too_few_W":
        return Ws[:-1], bs, ValueError, "expected 2 weight and 2 bias arrays"
    if name == "too_many_b":
        return Ws, bs + [bs[-1]], ValueError, "expected 2 weight and 2 bias arrays"
    if name == "W_nan":
        Ws[-1][0, 0] = np.nan
        return Ws, bs, ValueError, "NaN"
    if name == "b_inf":
        bs[-1][0] = np.inf
        return Ws, bs, ValueError, "Inf"
    if name == "W_list":
        Ws[-1] = Ws[-1].tolist()
        return Ws, bs, TypeError, "numpy array"
    raise AssertionError(name)


SW_CASES = ["W_wrong_shape", "b_wrong_shape", "W_wrong_dtype", "b_int_dtype", "too_few_W", "too_many_b", "W_nan",
            "b_inf", "W_list"]


@pytest.mark.parametrize("name", SW_CASES)
def test_set_weights_rejects(name):
    model, twin = _trained_pair("mse")
    theta_before = model.theta.copy()
    # change every array first, so that a partial copy before the error would show
    Ws, bs, exc, match = _sw_case(name, model)
    Ws = [w + 1 if isinstance(w, np.ndarray) and w.dtype.kind == "f" else w for w in Ws]
    bs = [b + 1 if isinstance(b, np.ndarray) and b.dtype.kind == "f" else b for b in bs]
    with pytest.raises(exc, match=match):
        model.set_weights(Ws, bs)
    _assert_untouched(model, twin, theta_before, "mse")


def test_set_weights_accepts_matching_arrays():
    model = _model("mse")
    Ws, bs = model.get_weights()
    Ws = [w * 2 for w in Ws]
    bs = [b + 0.5 for b in bs]
    model.set_weights(Ws, bs)
    got_Ws, got_bs = model.get_weights()
    for a, b in zip(got_Ws + got_bs, Ws + bs):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------- optimizer errors
OPT = [
    ("sgd_lr_0", lambda: fastbp.SGD(lr=0), ValueError, "lr must be > 0"),
    ("sgd_lr_negative", lambda: fastbp.SGD(lr=-1), ValueError, "lr must be > 0"),
    ("sgd_lr_nan", lambda: fastbp.SGD(lr=float("nan")), TypeError, "lr must be a finite real"),
    ("sgd_lr_inf", lambda: fastbp.SGD(lr=float("inf")), TypeError, "lr must be a finite real"),
    ("sgd_lr_string", lambda: fastbp.SGD(lr="0.1"), TypeError, "lr"),
    ("sgd_lr_bool", lambda: fastbp.SGD(lr=True), TypeError, "lr"),
    ("sgd_nesterov_without_momentum", lambda: fastbp.SGD(lr=0.1, nesterov=True), ValueError, "nesterov"),
    ("sgd_nesterov_not_bool", lambda: fastbp.SGD(lr=0.1, momentum=0.9, nesterov="yes"), TypeError, "nesterov"),
    ("sgd_momentum_one", lambda: fastbp.SGD(lr=0.1, momentum=1.0), ValueError, "momentum"),
    ("sgd_momentum_negative", lambda: fastbp.SGD(lr=0.1, momentum=-0.5), ValueError, "momentum"),
    ("sgd_weight_decay_negative", lambda: fastbp.SGD(lr=0.1, weight_decay=-1e-4), ValueError, "weight_decay"),
    ("adam_beta1_one", lambda: fastbp.Adam(betas=(1.0, 0.9)), ValueError, r"betas\[0\]"),
    ("adam_beta2_one", lambda: fastbp.Adam(betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
    ("adam_beta_negative", lambda: fastbp.Adam(betas=(-0.1, 0.9)), ValueError, r"betas\[0\]"),
    ("adam_betas_not_pair", lambda: fastbp.Adam(betas=(0.9,)), TypeError, "betas"),
    ("adam_betas_scalar", lambda: fastbp.Adam(betas=0.9), TypeError, "betas"),
    ("adam_eps_0", lambda: fastbp.Adam(eps=0), ValueError, "eps"),
    ("adam_lr_0", lambda: fastbp.Adam(lr=0.0), ValueError, "lr"),
    ("adamw_weight_decay_negative", lambda: fastbp.AdamW(weight_decay=-0.01), ValueError, "weight_decay"),
    ("adamw_beta_one", lambda: fastbp.AdamW(betas=(0.9, 1.0)), ValueError, "betas"),
]


@pytest.mark.parametrize("make, exc, match", [c[1:] for c in OPT], ids=[c[0] for c in OPT])
def test_optimizer_rejects(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
