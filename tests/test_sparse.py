"""Sparse input: the first-layer kernels (fastbp/kernels/sparse.py) against dense products, and the model on it."""

import tracemalloc

import numpy as np
import pytest

import fastbp
from fastbp import reference
from fastbp.kernels import layout, sparse

scipy_sparse = pytest.importorskip("scipy.sparse")


def _csr(n, d_in, density, dtype, seed):
    rng = np.random.default_rng(seed)
    X = scipy_sparse.random(n, d_in, density=density, format="csr", dtype=np.float64, random_state=rng)
    return X.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, d_in, d_out, density", [(1, 1, 1, 1.0), (7, 30, 5, 0.2), (64, 500, 17, 0.01),
                                                     (300, 2000, 40, 0.05)])
@pytest.mark.parametrize("variant", ["serial", "parallel"])
def test_forward_equals_the_dense_product(dtype, n, d_in, d_out, density, variant):
    X = _csr(n + 5, d_in, density, dtype, seed=n + d_in)
    rng = np.random.default_rng(1)
    rows = rng.permutation(n + 5)[:n].astype(np.int64)
    W = rng.standard_normal((d_in, d_out)).astype(dtype)
    b = rng.standard_normal(d_out).astype(dtype)
    Z, A = np.empty((n, d_out), dtype), np.empty((n, d_out), dtype)
    kernel = sparse.sparse_dense_forward if variant == "serial" else sparse.sparse_dense_forward_parallel
    kernel(X.indptr, X.indices, X.data, rows, W, b, layout.TANH, Z, A)
    Zr = X[rows].toarray().astype(np.float64) @ W.astype(np.float64) + b
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Z, Zr, **tol)
    np.testing.assert_allclose(A, reference.activation("tanh", Zr), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, d_in, d_out, density", [(1, 3, 2, 1.0), (9, 40, 6, 0.3), (128, 3000, 12, 0.003)])
def test_weight_gradient_equals_the_dense_product(dtype, n, d_in, d_out, density):
    X = _csr(n, d_in, density, dtype, seed=7 * n)
    rng = np.random.default_rng(2)
    rows = rng.permutation(n).astype(np.int64)
    D = rng.standard_normal((n, d_out)).astype(dtype)
    gW, gb = np.full((d_in, d_out), np.nan, dtype), np.full(d_out, np.nan, dtype)
    sparse.sparse_weight_gradient(X.indptr, X.indices, X.data, rows, D, gW, gb)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gW, X[rows].toarray().astype(np.float64).T @ D.astype(np.float64), **tol)
    np.testing.assert_allclose(gb, D.astype(np.float64).sum(axis=0), **tol)


def test_rows_outside_the_matrix_and_mismatched_shapes_are_refused():
    X = _csr(4, 6, 0.5, np.float64, seed=0)
    W, b = np.zeros((6, 3)), np.zeros(3)
    Z = np.empty((2, 3))
    with pytest.raises(ValueError, match="row index outside X"):
        sparse.sparse_dense_forward(X.indptr, X.indices, X.data, np.array([0, 4]), W, b, layout.RELU, Z, Z)
    with pytest.raises(ValueError, match="column index beyond the rows of W"):
        sparse.sparse_weight_gradient(X.indptr, X.indices, X.data, np.array([0, 1]), Z, np.zeros((5, 3)),
                                      np.zeros(3))


# --------------------------------------------------------------------------- the model on sparse input

def _problem(n=300, d=400, density=0.02, seed=3):
    rng = np.random.default_rng(seed)
    X = scipy_sparse.random(n, d, density=density, format="csr", random_state=rng)
    return X, rng.integers(0, 3, n)


@pytest.mark.parametrize("backend", ["cpu", "parallel", "numpy"])
def test_fit_on_sparse_input_equals_fit_on_its_dense_copy(backend):
    X, y = _problem()
    results = []
    for Xin in (X, X.toarray(), X.tocsc()):
        model = fastbp.MLP([400, 12, 3], activation="relu", loss="softmax_cross_entropy", dtype=np.float64, seed=1)
        history = model.fit(Xin, y, epochs=3, batch_size=25, backend=backend, validation_data=(Xin, y))
        results.append((model.theta, model.predict(Xin), model.loss_and_grad(Xin, y)[0], history["val_loss"]))
    for theta, proba, loss, val in results[1:]:
        np.testing.assert_allclose(theta, results[0][0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(proba, results[0][1], rtol=1e-10, atol=1e-12)
        assert loss == pytest.approx(results[0][2], rel=1e-10)
        np.testing.assert_allclose(val, results[0][3], rtol=1e-10)


def test_a_sparse_data_set_is_never_densified():
    """2,000,000 features: dense, X alone would take 8 GB; training on it stays within tens of megabytes."""
    rng = np.random.default_rng(0)
    n, d = 500, 2_000_000
    X = scipy_sparse.random(n, d, density=2e-6, format="csr", dtype=np.float32, random_state=rng)
    y = rng.integers(0, 2, n)
    model = fastbp.MLP([d, 2, 2], activation="tanh", loss="softmax_cross_entropy", seed=0)
    model.fit(X[:50], y[:50], epochs=1, backend="cpu", optimizer=fastbp.SGD(lr=0.1))  # compile outside the count
    tracemalloc.start()
    model.fit(X, y, epochs=2, backend="cpu", optimizer=fastbp.SGD(lr=0.1))
    proba = model.predict(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert proba.shape == (n, 2)
    # the parameters (4 million float32 weights, 16 MB) and their SGD state and gradient dominate
    assert peak < 150 * 2**20, f"{peak / 2**20:.0f} MB traced"


@pytest.mark.parametrize("make, exc, message", [
    (lambda X: X[:, :399], ValueError, "X has 399 features but the model's input layer has 400"),
    (lambda X: X[:0], ValueError, "empty: it has 0 samples"),
    (lambda X: X.multiply(np.inf).tocsr(), ValueError, "X contains NaN or Inf"),
    (lambda X: (X * 1e39).tocsr(), ValueError, "beyond the float32 range"),
])
def test_bad_sparse_input_is_refused(make, exc, message):
    X, y = _problem()
    model = fastbp.MLP([400, 12, 3], loss="softmax_cross_entropy", seed=1)
    before = model.theta.copy()
    with pytest.raises(exc, match=message):
        model.fit(make(X), y[:make(X).shape[0]] if make(X).shape[0] else y[:0])
    np.testing.assert_array_equal(model.theta, before)


def test_the_cuda_backend_refuses_sparse_input_clearly():
    X, y = _problem()
    model = fastbp.MLP([400, 12, 3], loss="softmax_cross_entropy", seed=1)
    with pytest.raises((ValueError, RuntimeError), match="cuda"):
        model.fit(X, y, backend="cuda")
