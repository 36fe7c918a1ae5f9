"""Property-based tests over random architectures, data, batch sizes, dtypes, activations, losses and optimizers.

Properties checked:

- every backend (``numpy``, ``cpu``, ``parallel``) matches a hand-written loop over
  ``fastbp.reference`` (forward, backward, optimizer_step) for one unshuffled epoch;
- training with hostile settings (huge learning rates and inputs, batch 1 and batch > n,
  width-1 layers) never crashes the interpreter and raises nothing but ``DivergedError``
  (run in a child process, so that a crash is a failure rather than the end of the run);
- bad input gives the documented ``ValueError``/``TypeError`` with a message that names what
  was expected, and leaves the weights, the optimizer state and the shuffling generator as they were;
- non-C-contiguous inputs train exactly like their contiguous copies;
- ``save``/``load`` round-trips bitwise.

Hypothesis runs derandomized and without an example database, so every run checks the same examples.
"""

import os
import subprocess
import sys
import tempfile
import tracemalloc
import warnings

import numpy as np
import pytest
from conftest import DTYPES, HYPOTHESIS_SETTINGS, LOSSES, PROGRAMS, ROOT, flat
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fastbp
from fastbp import reference

SETTINGS = HYPOTHESIS_SETTINGS
ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"]
BACKENDS = ["numpy", "cpu", "parallel"]
TOL = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-4, atol=1e-5)}


# -------------------------------------------------------------------------------- strategies
@st.composite
def architectures(draw, max_width=6, max_depth=4):
    """Model keyword arguments: widths (1 included), one activation per hidden layer, a loss and a dtype."""
    layers = draw(st.lists(st.integers(1, max_width), min_size=2, max_size=max_depth))
    activation = draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=len(layers) - 2, max_size=len(layers) - 2))
    return dict(layers=layers, activation=activation, loss=draw(st.sampled_from(LOSSES)),
                dtype=draw(st.sampled_from(DTYPES)), seed=draw(st.integers(0, 2 ** 32 - 1)))


def make_targets(rng, loss, n, k, form):
    """Targets for ``fit`` and the same targets as ``(n, k)`` rows for the reference."""
    if loss == "mse":
        y = rng.standard_normal((n, k))
        return y, y
    if loss == "binary_cross_entropy":
        y = rng.random((n, k)) if form == "soft" else (rng.random((n, k)) > 0.5).astype(np.float64)
        return y, y
    if form == "soft" or k == 1:
        y = rng.dirichlet(np.ones(k), size=n) if k > 1 else np.ones((n, 1))
        return y, y
    labels = rng.integers(0, k, size=n)
    return labels, np.eye(k)[labels]


@st.composite
def datasets(draw, arch, max_rows=10, min_rows=1):
    """``(X, y, T)``: inputs, targets for ``fit`` and target rows for the reference (all float64)."""
    n = draw(st.integers(min_rows, max_rows))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))
    X = scale * rng.standard_normal((n, arch["layers"][0]))
    y, T = make_targets(rng, arch["loss"], n, arch["layers"][-1], draw(st.sampled_from(["hard", "soft"])))
    return X, y, T


@st.composite
def optimizers(draw):
    """``(kind, settings)``: an optimizer rule and its hyperparameters, as ``reference.optimizer_step`` takes them."""
    kind = draw(st.sampled_from(["sgd", "adam", "adamw"]))
    decay = draw(st.sampled_from([0.0, 1e-3]) | st.floats(0.0, 0.2))
    if kind == "sgd":
        momentum = draw(st.sampled_from([0.0, 0.9]) | st.floats(0.0, 0.99))
        nesterov = momentum > 0 and draw(st.booleans())
        return kind, dict(lr=draw(st.floats(1e-3, 0.5)), momentum=momentum, nesterov=nesterov, weight_decay=decay)
    betas = (draw(st.floats(0.0, 0.99)), draw(st.floats(0.5, 0.9999)))
    return kind, dict(lr=draw(st.floats(1e-4, 0.1)), betas=betas, eps=draw(st.sampled_from([1e-8, 1e-6, 1e-3])),
                      weight_decay=decay)


def make_optimizer(kind, s):
    if kind == "sgd":
        return fastbp.SGD(lr=s["lr"], momentum=s["momentum"], nesterov=s["nesterov"], weight_decay=s["weight_decay"])
    cls = fastbp.Adam if kind == "adam" else fastbp.AdamW
    return cls(lr=s["lr"], betas=s["betas"], eps=s["eps"], weight_decay=s["weight_decay"])


def reference_epoch(model, X, T, batch_size, kind, opt_settings):
    """One unshuffled epoch from ``model``'s weights by ``fastbp.reference``, in the model's dtype."""
    Ws, bs = model.get_weights()
    X, T = X.astype(model.dtype), T.astype(model.dtype)
    state = {}
    for start in range(0, X.shape[0], batch_size):
        Xb, Tb = X[start:start + batch_size], T[start:start + batch_size]
        Zs, As = reference.forward(Xb, Ws, bs, model.activations)
        gWs, gbs = reference.backward(Xb, Tb, Ws, Zs, As, model.activations, model.loss)
        reference.optimizer_step(kind, Ws + bs, gWs + gbs, state, **opt_settings)
    return flat(Ws, bs), state["step"]


# ------------------------------------------------------------------- backends vs reference
@settings(max_examples=200, **SETTINGS)
@given(data=st.data())
def test_every_backend_matches_the_reference_on_one_epoch(data):
    """From the same weights, one unshuffled epoch on each backend gives the reference's weights.

    The batch size ranges over 1 to beyond ``n``; at ``batch_size >= n`` the epoch is a single
    optimizer step on the whole data, below it includes a last partial minibatch.
    """
    if data.draw(st.integers(0, 9)) == 0:  # large enough for the parallel kernels to split work across threads
        arch = data.draw(architectures(max_width=48, max_depth=3))
        arch["layers"] = [max(w, 24) for w in arch["layers"]]
        X, y, T = data.draw(datasets(arch, max_rows=300, min_rows=150))
    else:
        arch = data.draw(architectures())
        X, y, T = data.draw(datasets(arch))
    n = X.shape[0]
    batch_size = data.draw(st.sampled_from([1, n, n + 1, 2 * n + 3]) | st.integers(1, n + 4))
    if n > 100:
        batch_size = max(batch_size, n // 2)  # a few large minibatches, not hundreds of tiny ones
    kind, opt_settings = data.draw(optimizers())
    dtype = arch["dtype"]
    expected, steps = reference_epoch(fastbp.MLP(**arch), X, T, batch_size, kind, opt_settings)
    assert np.all(np.isfinite(expected))
    for backend in BACKENDS:
        model = fastbp.MLP(**arch)
        opt = make_optimizer(kind, opt_settings)
        history = model.fit(X, y, epochs=1, batch_size=batch_size, optimizer=opt, shuffle=False, backend=backend)
        assert history["backend"] == backend
        assert model.theta.dtype == dtype
        assert int(opt.step[0]) == steps == -(-n // batch_size)
        np.testing.assert_allclose(model.theta, expected, **TOL[dtype], err_msg=f"backend {backend}")


# ------------------------------------------------------------------------- crash resistance
def test_training_with_hostile_settings_never_crashes_the_interpreter():
    """Huge learning rates and inputs, batch 1 and batch > n, width-1 layers, every backend and optimizer:
    ``fit`` returns finite weights or raises ``DivergedError`` keeping finite ones; nothing else, and no crash.

    The examples run in a child process: a segfault there is a failed test here, not a dead test run.
    """
    proc = subprocess.run([sys.executable, PROGRAMS / "fuzz_fit_in_child.py", "300"], cwd=ROOT, capture_output=True,
                          text=True, timeout=500)
    report = f"exit code {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, report
    assert "ALL EXAMPLES PASSED" in proc.stdout, report


def test_the_crash_harness_reports_a_crash():
    """Guard for the test above: a child that dies by a signal is seen as a failure (non-zero exit code)."""
    proc = subprocess.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
                          capture_output=True, timeout=60)
    assert proc.returncode != 0


# ------------------------------------------------------------------------------ bad input
def _snapshot(model):
    opt = model.optimizer
    return (model.theta.copy(), opt.m.copy(), opt.v.copy(), opt.step.copy(), model._rng.bit_generator.state)


def _assert_unchanged(model, snap):
    theta, m, v, step, rng_state = snap
    assert model.theta.tobytes() == theta.tobytes(), "weights changed"
    assert model.optimizer.m.tobytes() == m.tobytes() and model.optimizer.v.tobytes() == v.tobytes()
    assert np.array_equal(model.optimizer.step, step), "optimizer step changed"
    assert model._rng.bit_generator.state == rng_state, "the shuffling generator was advanced"


XY_METHODS = ["fit", "partial_fit", "evaluate", "loss_and_grad"]
X_METHODS = ["predict", "decision_function"]


@st.composite
def bad_inputs(draw, arch, X, y):
    """``(method, X, y, kwargs, exception, message pattern)``: one defect drawn into good data."""
    n, d = X.shape
    k = arch["layers"][-1]
    loss = arch["loss"]
    defects = ["X_ndim", "X_features", "X_dtype", "X_nonfinite", "empty", "y_rows", "y_nonfinite", "int_argument"]
    if loss == "softmax_cross_entropy":
        defects.append("labels_range")
    if loss == "binary_cross_entropy":
        defects.append("bce_range")
    defect = draw(st.sampled_from(defects))
    x_only = defect in ("X_ndim", "X_features", "X_dtype", "X_nonfinite", "empty")
    method = draw(st.sampled_from(XY_METHODS + X_METHODS if x_only else XY_METHODS))
    kwargs = {}
    X, y = X.copy(), y.copy()
    if defect == "X_ndim":
        X = draw(st.sampled_from([X.ravel(), X[..., None], X[0, 0]]))
        return method, X, y, kwargs, ValueError, rf"must be 2-D \(n_samples, {d}\)"
    if defect == "X_features":
        X = np.zeros((n, d + draw(st.sampled_from([-d, -1, 1, 5]))))
        return method, X, y, kwargs, ValueError, rf"features but the model's input layer has {d}"
    if defect == "X_dtype":
        kind = draw(st.sampled_from(["object", "str", "complex"]))
        if kind == "complex":
            return method, X + 1j, y, kwargs, TypeError, "must be real-valued"
        if kind == "str":
            words = np.array(["one", "2.5e", "nan?", ""])  # numeric strings such as "0.5" are converted
            return method, words[np.arange(X.size).reshape(X.shape) % 4], y, kwargs, TypeError, "numeric"
        Xo = np.empty(X.shape, dtype=object)
        Xo[...] = [[object()] * d] * n
        return method, Xo, y, kwargs, TypeError, "numeric"
    if defect == "X_nonfinite":
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, d - 1))
        X[i, j] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return method, X, y, kwargs, ValueError, "contains NaN or Inf"
    if defect == "empty":
        return method, X[:0], y[:0], kwargs, ValueError, "empty: it has 0 samples"
    if defect == "y_rows":
        m = draw(st.sampled_from([0, n + 1, n + 7]) | st.integers(0, max(n - 1, 0)))
        y = np.resize(y, (m,) + y.shape[1:])
        return method, X, y, kwargs, ValueError, f"must have {n} rows"
    if defect == "y_nonfinite":
        y = (np.eye(k)[y] if y.ndim == 1 and loss == "softmax_cross_entropy" else y).astype(np.float64)
        y.flat[draw(st.integers(0, y.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return method, X, y, kwargs, ValueError, "contains NaN or Inf"
    if defect == "labels_range":
        labels = np.arange(n) % k
        labels[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, k, k + 100]) | st.integers(-10 ** 6, -1))
        return method, X, labels, kwargs, ValueError, rf"labels must lie in \[0, {k - 1}\]"
    if defect == "bce_range":
        y = y.astype(np.float64)
        y.flat[draw(st.integers(0, y.size - 1))] = draw(st.sampled_from([-1e-3, 1.5, 1e9]))
        return method, X, y, kwargs, ValueError, r"needs y in \[0, 1\]"
    # int_argument: batch_size or epochs of the wrong type or value
    method = draw(st.sampled_from(["fit", "partial_fit"]))
    name = "batch_size" if method == "partial_fit" else draw(st.sampled_from(["batch_size", "epochs"]))
    value = draw(st.sampled_from([0, -1, -(10 ** 12), 2.5, 8.0, True, "8", None, [8], np.float64(3)]))
    kwargs[name] = value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return method, X, y, kwargs, ValueError, f"{name} must be >= 1"
    return method, X, y, kwargs, TypeError, f"{name} must be an int >= 1"


@settings(max_examples=300, **SETTINGS)
@given(data=st.data())
def test_bad_input_gives_the_documented_error_and_changes_nothing(data):
    """Wrong shapes, dtypes (object, str, complex), NaN/Inf, label ranges, 0 rows, bad batch_size/epochs:
    the documented exception type, a message naming what was expected, and the model untouched
    (weights, optimizer state and shuffling generator)."""
    arch = data.draw(architectures(max_depth=3))
    X, y, _ = data.draw(datasets(arch))
    model = fastbp.MLP(**arch)
    model.fit(X, y, epochs=1, batch_size=4, optimizer=fastbp.Adam(lr=1e-2))  # optimizer state and a used generator
    method, bad_X, bad_y, kwargs, exc, pattern = data.draw(bad_inputs(arch, X, y))
    snap = _snapshot(model)
    call = getattr(model, method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        with pytest.raises(exc, match=pattern):
            call(bad_X, **kwargs) if method in X_METHODS else call(bad_X, bad_y, **kwargs)
    _assert_unchanged(model, snap)


@st.composite
def _noncontiguous(draw, a):
    """``a`` as a non-C-contiguous array with the same values."""
    how = draw(st.sampled_from(["fortran", "strided", "reversed", "transposed"] if a.ndim == 2 else
                                ["strided", "reversed"]))
    if how == "fortran":
        return np.asfortranarray(a)
    if how == "strided":
        big = np.repeat(a, 2, axis=0)
        return big[::2]
    if how == "reversed":
        return a[::-1].copy()[::-1]
    return np.ascontiguousarray(a.T).T


@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_non_contiguous_inputs_train_like_contiguous_ones(data):
    """Fortran-order, strided and reversed views of X and y give bitwise the same training and predictions
    as their C-contiguous copies."""
    arch = data.draw(architectures(max_depth=3))
    X, y, _ = data.draw(datasets(arch))
    Xn, yn = data.draw(_noncontiguous(X)), data.draw(_noncontiguous(y))
    if min(X.shape) > 1:  # an array with a length-1 axis counts as contiguous in every layout
        assert not Xn.flags.c_contiguous
    backend = data.draw(st.sampled_from(BACKENDS))
    a, b = fastbp.MLP(**arch), fastbp.MLP(**arch)
    ha = a.fit(X, y, epochs=2, batch_size=3, optimizer=fastbp.SGD(lr=0.05, momentum=0.5), backend=backend)
    hb = b.fit(Xn, yn, epochs=2, batch_size=3, optimizer=fastbp.SGD(lr=0.05, momentum=0.5), backend=backend)
    assert a.theta.tobytes() == b.theta.tobytes()
    assert ha["loss"] == hb["loss"]
    assert a.predict(X).tobytes() == b.predict(Xn).tobytes()


@pytest.mark.parametrize("backend", ["cpu", "parallel"])
def test_batch_size_beyond_n_costs_no_memory(backend):
    """A batch size far above the number of samples trains the same single full batch without
    allocating memory in proportion to the batch size (``batch_size=10**9`` would need ~300 GB)."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 2))
    model = fastbp.MLP([5, 8, 2], dtype=np.float64, seed=0)
    model.fit(X, y, batch_size=4, backend=backend, shuffle=False)  # compile outside the measurement
    tracemalloc.start()
    try:
        model.fit(X, y, batch_size=10 ** 5, backend=backend, shuffle=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"peak {peak / 1e6:.1f} MB for 4 samples"


# -------------------------------------------------------------------------------- save/load
def _finite(dtype):
    return st.floats(width=32 if dtype == np.float32 else 64, allow_nan=False, allow_infinity=False,
                     allow_subnormal=True)


@settings(max_examples=100, **SETTINGS)
@given(data=st.data())
def test_save_load_round_trips_exactly(data):
    """Any model (any widths, activations, loss, dtype, init, seed; weights with extremes, -0.0 and subnormals)
    loads back bitwise: same parameters, same configuration, same predictions."""
    arch = data.draw(architectures())
    arch["init"] = data.draw(st.sampled_from(["auto", "glorot_uniform", "he_uniform"]))
    arch["seed"] = data.draw(st.none() | st.integers(0, 2 ** 64))
    model = fastbp.MLP(**arch)
    if data.draw(st.booleans()):
        Ws, bs = model.get_weights()
        el = _finite(arch["dtype"])
        model.set_weights([data.draw(arrays(arch["dtype"], W.shape, elements=el)) for W in Ws],
                          [data.draw(arrays(arch["dtype"], b.shape, elements=el)) for b in bs])
    X, y, _ = data.draw(datasets(arch))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        model.save(path)
        loaded = fastbp.MLP.load(path)
    assert loaded.theta.dtype == model.theta.dtype
    assert loaded.theta.tobytes() == model.theta.tobytes()
    assert (loaded.layers, loaded.activations, loaded.loss, loaded.init, loaded.seed) == \
        (model.layers, model.activations, model.loss, model.init, model.seed)
    assert loaded.dtype == model.dtype and repr(loaded) == repr(model)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))
