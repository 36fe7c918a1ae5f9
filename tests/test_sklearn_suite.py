"""scikit-learn's own tests of its MLPs, run against fastbp.sklearn.

This module *is* scikit-learn's ``sklearn/neural_network/tests/test_mlp.py``, as the installed
scikit-learn ships it, with one line changed: the import of ``MLPClassifier`` and ``MLPRegressor``
from ``sklearn.neural_network`` imports them from ``fastbp.sklearn`` instead. The file is read,
edited in memory and compiled here under its own path (so tracebacks point into scikit-learn's
file, at its own line numbers); nothing of it is copied into this repository. pytest then collects
its test functions as this module's, each parametrisation separately, under scikit-learn's names.

The tests that do not pass yet are strict expected failures (:data:`EXPECTED_FAILURES`), each with
the reason: a fix shows up as an unexpected pass, which fails the run until its entry is removed.
A new scikit-learn release can add tests; they run like the others and must pass.
"""

import importlib.util
import pathlib

import pytest

pytest.importorskip("sklearn")

_SUITE = "sklearn.neural_network.tests.test_mlp"
_IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
_SWAPPED = "from fastbp.sklearn import MLPClassifier, MLPRegressor"

#: scikit-learn's tests that fastbp does not pass, by test name (all parametrisations) or node name: none now.
#: A name added here runs as a strict xfail, with its reason.
EXPECTED_FAILURES = {}


def _suite_source():
    """scikit-learn's test module: its path and its text with the estimators' import swapped."""
    try:
        spec = importlib.util.find_spec(_SUITE)
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        pytest.skip(f"this scikit-learn ships without its tests ({_SUITE})", allow_module_level=True)
    path = pathlib.Path(spec.origin)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == _IMPORT]
    if len(hits) != 1:
        raise RuntimeError(f"{path} should import the estimators in exactly one line {_IMPORT!r}; found "
                           f"{len(hits)} such lines, so the swap to fastbp's estimators cannot be made safely")
    lines[hits[0]] = lines[hits[0]].replace(_IMPORT, _SWAPPED)
    return path, "".join(lines)


_path, _source = _suite_source()
exec(compile(_source, str(_path), "exec"), globals())  # noqa: S102  (scikit-learn's test module, as installed)
assert MLPClassifier.__module__ == "fastbp.sklearn" and MLPRegressor.__module__ == "fastbp.sklearn"  # noqa: F821


def pytest_generate_tests(metafunc):
    """scikit-learn's ``global_random_seed`` fixture with its default seed (its conftest is not loaded here)."""
    if "global_random_seed" in metafunc.fixturenames:
        metafunc.parametrize("global_random_seed", [42])


@pytest.fixture(autouse=True)
def _expected_failure(request):
    reason = EXPECTED_FAILURES.get(request.node.name, EXPECTED_FAILURES.get(request.node.originalname))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


def test_expected_failures_name_existing_tests():
    """Every entry of EXPECTED_FAILURES names a test of the suite, so none outlives its test."""
    names = {name for name, value in globals().items() if name.startswith("test_") and callable(value)}
    stale = [key for key in EXPECTED_FAILURES if key.split("[")[0] not in names]
    assert not stale, f"EXPECTED_FAILURES names tests that scikit-learn's suite no longer has: {stale}"


# ------------------------------------------------------------------------------------------------------
# fastbp's own, tighter checks of what scikit-learn's suite above exercises loosely: the solvers, schedules,
# dtypes and divergence give scikit-learn's values, not only its behaviour. (Every name below starts with
# "_fb" or "test_fastbp", apart from scikit-learn's test module's names above.)
import warnings as _fb_warnings  # noqa: E402

import numpy as _fb_np  # noqa: E402
from sklearn import neural_network as _fb_sk  # noqa: E402
from sklearn.datasets import load_iris as _fb_load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning as _FbConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks as _fb_parametrize_with_checks  # noqa: E402

import fastbp.sklearn as _fb  # noqa: E402
from fastbp.datasets import load_digits as _fb_load_digits  # noqa: E402


def _fb_problem(name, rows=300):
    """``(sklearn class, fastbp class, X, y)`` of a float64 digits problem."""
    X, y = _fb_load_digits(dtype=_fb_np.float64)
    X, y = X[:rows], y[:rows]
    targets = {"multiclass": y, "binary": _fb_np.where(y % 2 == 0, "even", "odd"),
               "multilabel": _fb_np.stack([y % 2, y > 4, y == 3], axis=1).astype(int),
               "regression": X[:, 20] - X[:, 43], "multioutput": X[:, [19, 20, 43]]}
    if name in ("regression", "multioutput"):
        return _fb_sk.MLPRegressor, _fb.MLPRegressor, X, targets[name]
    return _fb_sk.MLPClassifier, _fb.MLPClassifier, X, targets[name]


def _fb_assert_same_weights(a, b, rtol, atol):
    for Wa, Wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        assert Wa.shape == Wb.shape and Wa.dtype == Wb.dtype
        _fb_np.testing.assert_allclose(Wb, Wa, rtol=rtol, atol=atol)


def _fb_fit(estimator, X, y, **fit_params):
    """Fit; return the estimator and the messages of the ConvergenceWarnings it raised."""
    with _fb_warnings.catch_warnings(record=True) as caught:
        _fb_warnings.simplefilter("always", _FbConvergenceWarning)
        estimator.fit(X, y, **fit_params)
    return estimator, [str(w.message) for w in caught if issubclass(w.category, _FbConvergenceWarning)]


@pytest.mark.parametrize("problem", ["multiclass", "binary", "multilabel", "regression", "multioutput"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_fastbp_lbfgs_matches_sklearn(problem, weighted):
    """The same L-BFGS-B run: the same objective in scikit-learn's units and packing, the same options."""
    Sk, Fb, X, y = _fb_problem(problem)
    fit_params = {"sample_weight": _fb_np.random.default_rng(1).uniform(0.2, 2.0, len(X))} if weighted else {}
    kw = dict(hidden_layer_sizes=(12,), activation="tanh", solver="lbfgs", alpha=1e-3, max_iter=15, random_state=0)
    a, warned_a = _fb_fit(Sk(**kw), X, y, **fit_params)
    b, warned_b = _fb_fit(Fb(**kw), X, y, **fit_params)
    _fb_assert_same_weights(a, b, rtol=1e-8, atol=1e-10)
    assert b.n_iter_ == a.n_iter_ == 15 and b.t_ == a.t_ == 0
    _fb_np.testing.assert_allclose(b.loss_, a.loss_, rtol=1e-10)
    assert warned_b == warned_a and len(warned_a) == 1 and "max_iter=15" in warned_a[0]
    for name in ("loss_curve_", "best_loss_", "validation_scores_"):  # stochastic solvers' attributes only
        assert hasattr(b, name) == hasattr(a, name) == False  # noqa: E712
    _fb_np.testing.assert_allclose(b.predict_proba(X) if Fb is _fb.MLPClassifier else b.predict(X),
                                   a.predict_proba(X) if Sk is _fb_sk.MLPClassifier else a.predict(X),
                                   rtol=1e-8, atol=1e-10)


def test_fastbp_lbfgs_limits():
    """max_fun and tol (L-BFGS-B's gtol) end the run as in scikit-learn; warm_start continues from the weights."""
    Sk, Fb, X, y = _fb_problem("multiclass")
    for kw in [dict(max_fun=7), dict(tol=1e-2, max_iter=500), dict(warm_start=True, max_iter=4)]:
        kw = dict(hidden_layer_sizes=(10,), solver="lbfgs", random_state=0, **kw)
        a, warned_a = _fb_fit(Sk(**kw), X, y)
        b, warned_b = _fb_fit(Fb(**kw), X, y)
        if kw.get("warm_start"):
            (a, more_a), (b, more_b) = _fb_fit(a, X, y), _fb_fit(b, X, y)
            warned_a, warned_b = warned_a + more_a, warned_b + more_b
        assert b.n_iter_ == a.n_iter_ and warned_b == warned_a
        _fb_assert_same_weights(a, b, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("case", [
    dict(learning_rate="invscaling", power_t=0.25),
    dict(learning_rate="invscaling", nesterovs_momentum=False),
    dict(learning_rate="invscaling", momentum=0.0),
    dict(learning_rate="adaptive", tol=1e-2, n_iter_no_change=2),
    dict(learning_rate="adaptive", tol=1e-2, n_iter_no_change=2, early_stopping=True),
], ids=["invscaling", "invscaling-momentum", "invscaling-plain", "adaptive", "adaptive-early-stopping"])
@pytest.mark.parametrize("problem", ["multiclass", "regression"])
def test_fastbp_schedules_match_sklearn(problem, case):
    """SGD's invscaling and adaptive rates: scikit-learn's weights, losses, epochs and final rate (float64)."""
    Sk, Fb, X, y = _fb_problem(problem)
    kw = dict(hidden_layer_sizes=(12,), solver="sgd", learning_rate_init=0.3 if problem == "multiclass" else 0.01,
              batch_size=32, shuffle=False, random_state=0, max_iter=60, **case)
    (a, warned_a), (b, warned_b) = _fb_fit(Sk(**kw), X, y), _fb_fit(Fb(**kw), X, y)
    _fb_assert_same_weights(a, b, rtol=1e-9, atol=1e-11)
    assert b.n_iter_ == a.n_iter_ and b.t_ == a.t_ and warned_b == warned_a
    _fb_np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-9)
    _fb_np.testing.assert_allclose(b._optimizer.learning_rate, a._optimizer.learning_rate, rtol=1e-15)
    if case["learning_rate"] == "adaptive":
        assert a._optimizer.learning_rate < 1e-6 and a.n_iter_ < 60  # the rate was divided until training stopped


def test_fastbp_schedules_continue_in_partial_fit():
    """invscaling after each partial_fit from t_, the samples seen, as scikit-learn (momentum continues)."""
    Sk, Fb, X, y = _fb_problem("multiclass")
    kw = dict(hidden_layer_sizes=(12,), solver="sgd", learning_rate="invscaling", learning_rate_init=0.3,
              batch_size=50, shuffle=False, random_state=0)
    a, b = Sk(**kw), Fb(**kw)
    for start in (0, 100, 200, 0):
        a.partial_fit(X[start:start + 100], y[start:start + 100], classes=_fb_np.arange(10))
        b.partial_fit(X[start:start + 100], y[start:start + 100], classes=_fb_np.arange(10))
        assert b._optimizer.learning_rate == a._optimizer.learning_rate
    _fb_assert_same_weights(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("Estimator", [_fb.MLPClassifier, _fb.MLPRegressor], ids=["classifier", "regressor"])
def test_fastbp_dtype_follows_the_input(Estimator):
    """dtype=None: scikit-learn's rule. float32 trains and predicts in float32, anything else in float64."""
    X, y = _fb_load_digits(dtype=_fb_np.float64)
    X, y = X[:200], y[:200]
    kw = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    out = "predict_proba" if Estimator is _fb.MLPClassifier else "predict"
    with _fb_warnings.catch_warnings():
        _fb_warnings.simplefilter("ignore", _FbConvergenceWarning)
        for X_fit, want in [(X.astype(_fb_np.float32), _fb_np.float32), (X, _fb_np.float64),
                            ((X * 16).astype(_fb_np.int64), _fb_np.float64)]:
            est = Estimator(**kw).fit(X_fit, y)
            assert {a.dtype for a in est.coefs_ + est.intercepts_} == {_fb_np.dtype(want)}
            assert getattr(est, out)(X_fit).dtype == want
            assert getattr(est, out)(X).dtype == _fb_np.float64  # float64 input: float64 out, as NumPy promotes
            est.partial_fit(X, y)  # continues in the dtype of the fitted weights
            assert est.coefs_[0].dtype == want
        forced = Estimator(dtype="float32", **kw).fit(X, y)  # an explicit dtype wins over the input's
        assert forced.coefs_[0].dtype == _fb_np.float32 and getattr(forced, out)(X).dtype == _fb_np.float64
        assert getattr(forced, out)(X.astype(_fb_np.float32)).dtype == _fb_np.float32
        # lbfgs: scipy works in float64, and so do scikit-learn's lbfgs weights, whatever the input
        Sk = _fb_sk.MLPClassifier if Estimator is _fb.MLPClassifier else _fb_sk.MLPRegressor
        sk_lbfgs = Sk(solver="lbfgs", **kw).fit(X.astype(_fb_np.float32), y)
        fb_lbfgs = Estimator(solver="lbfgs", **kw).fit(X.astype(_fb_np.float32), y)
        assert fb_lbfgs.coefs_[0].dtype == sk_lbfgs.coefs_[0].dtype == _fb_np.float64


def test_fastbp_divergence_matches_sklearn():
    """scikit-learn's test_mlp_diverging_loss, value for value: NaN scores to max_iter, the best weights kept."""
    X, y = _fb_load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=100, activation="identity", solver="sgd", learning_rate_init=1, shuffle=False,
              max_iter=20, early_stopping=True, n_iter_no_change=10, random_state=0)
    with _fb_warnings.catch_warnings():
        _fb_warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's overflows
        (a, warned_a), (b, warned_b) = _fb_fit(_fb_sk.MLPRegressor(**kw), X, y), _fb_fit(_fb.MLPRegressor(**kw), X, y)
    assert b.n_iter_ == a.n_iter_ == 20 and warned_b == warned_a
    scores_a, scores_b = _fb_np.array(a.validation_scores_), _fb_np.array(b.validation_scores_)
    _fb_np.testing.assert_array_equal(_fb_np.isnan(scores_b), _fb_np.isnan(scores_a))
    assert _fb_np.isnan(scores_a).sum() > 10
    _fb_np.testing.assert_allclose(scores_b, scores_a, rtol=1e-9)  # NaNs compare equal
    _fb_np.testing.assert_allclose(b.best_validation_score_, a.best_validation_score_, rtol=1e-12)
    _fb_assert_same_weights(a, b, rtol=1e-9, atol=1e-11)
    kw["early_stopping"] = False  # without early stopping both end with scikit-learn's error
    for Estimator in (_fb_sk.MLPRegressor, _fb.MLPRegressor):
        with pytest.raises(ValueError, match="^Solver produced non-finite parameter weights. The input data may "
                                             "contain large values and need to be preprocessed.$"):
            with _fb_warnings.catch_warnings():
                _fb_warnings.simplefilter("ignore")
                Estimator(**kw).fit(X, y)


def test_fastbp_partial_fit_only_for_stochastic_solvers():
    """No partial_fit with lbfgs, with scikit-learn's error (its regressor's check misses a call and allows it)."""
    with pytest.raises(AttributeError) as sk_error:
        getattr(_fb_sk.MLPClassifier(solver="lbfgs"), "partial_fit")  # noqa: B009
    for Estimator in (_fb.MLPClassifier, _fb.MLPRegressor):
        est = Estimator(solver="lbfgs")
        assert not hasattr(est, "partial_fit")
        with pytest.raises(AttributeError) as error:
            getattr(est, "partial_fit")  # noqa: B009
        assert str(error.value) == str(sk_error.value).replace("MLPClassifier", Estimator.__name__)
        assert str(error.value.__cause__) == str(sk_error.value.__cause__)
        assert hasattr(est.set_params(solver="sgd"), "partial_fit") and hasattr(Estimator(), "partial_fit")


@_fb_parametrize_with_checks([_fb.MLPClassifier(solver="lbfgs", max_iter=100, random_state=0),
                              _fb.MLPRegressor(solver="lbfgs", max_iter=100, random_state=0)])
def test_fastbp_lbfgs_estimator_checks(estimator, check):
    """scikit-learn's estimator checks, which its own tests run with the default solver only, with lbfgs."""
    with _fb_warnings.catch_warnings():
        _fb_warnings.simplefilter("ignore", _FbConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("solver, rtol", [("sgd", 1e-12), ("lbfgs", 1e-12), ("adam", 1e-5)])
def test_poisson_regressor_follows_scikit_learn(solver, rtol):
    """loss="poisson": the same loss values and predictions as scikit-learn's (Adam: its epsilon differs slightly)."""
    SklearnRegressor, MLPRegressor = _fb_sk.MLPRegressor, _fb.MLPRegressor
    rng = _fb_np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = rng.poisson(_fb_np.exp(0.3 * X[:, 0] - 0.2 * X[:, 1]))
    kwargs = dict(loss="poisson", hidden_layer_sizes=(6,), solver=solver, max_iter=15, random_state=0,
                  shuffle=False, learning_rate_init=0.01)
    with _fb_warnings.catch_warnings():
        _fb_warnings.simplefilter("ignore", _FbConvergenceWarning)
        theirs = SklearnRegressor(**kwargs).fit(X, y)
        ours = MLPRegressor(dtype="float64", **kwargs).fit(X, y)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=rtol)
    _fb_np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=rtol * 100)
    with pytest.raises(ValueError, match="negative which is not allowed for Poisson regression"):
        MLPRegressor(loss="poisson").fit(X, -_fb_np.ones(200))
