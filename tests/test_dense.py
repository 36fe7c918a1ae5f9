"""The layer kernels of ``fastbp/kernels/dense.py`` against the plain-NumPy oracle ``fastbp.reference``.

Covers ``dense_forward``, ``backprop_delta``, ``weight_gradient`` and their
``*_parallel`` twins (float32 and float64, every activation, degenerate and odd
shapes), their shape checks, and the embedding contract (the kernels called
from a user's own ``@njit`` code).
"""

import math
import zlib

import numba
import numpy as np
import pytest
from conftest import DTYPES, f64, rand, tol

import fastbp
from fastbp import kernels, reference
from fastbp.kernels import dense

kernels.configure_threading()

ACT_NAMES = list(kernels.ACTIVATIONS)

# (n, d_in, d_out): batch 1, width 1 on either side, odd sizes.
SHAPES = [(1, 1, 1), (1, 5, 3), (7, 5, 3), (4, 1, 6), (6, 4, 1), (33, 17, 9)]

FORWARD = {"serial": kernels.dense_forward, "parallel": kernels.dense_forward_parallel}
BACKPROP = {"serial": kernels.backprop_delta, "parallel": kernels.backprop_delta_parallel}
GRADIENT = {"serial": kernels.weight_gradient, "parallel": kernels.weight_gradient_parallel}
BACKENDS = list(FORWARD)


def seed_of(*key):
    """A seed that is the same in every process (``hash`` of a str is not)."""
    return zlib.crc32(repr(key).encode())


def layer_inputs(rng, n, d_in, d_out, dtype):
    """X, W, b scaled so that Z = X @ W + b is O(1) (keeps float32 sums well-conditioned)."""
    X = rand(rng, (n, d_in), dtype)
    W = rand(rng, (d_in, d_out), dtype, 1.0 / math.sqrt(d_in))
    b = rand(rng, (d_out,), dtype, 0.5)
    return X, W, b


# --------------------------------------------------------------------------- dense_forward
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("act", ACT_NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_dense_forward_matches_reference(dtype, act, shape, backend):
    n, d_in, d_out = shape
    rng = np.random.default_rng(seed_of((n, d_in, d_out, act)))
    X, W, b = layer_inputs(rng, n, d_in, d_out, dtype)
    # Poison the outputs so that an element the kernel fails to write is caught.
    Z = np.full((n, d_out), np.nan, dtype=dtype)
    A = np.full((n, d_out), np.nan, dtype=dtype)
    FORWARD[backend](X, W, b, kernels.ACTIVATIONS[act], Z, A)

    assert Z.dtype == dtype and A.dtype == dtype
    # The oracle works in float64 on the (possibly float32) inputs, so the
    # tolerance measures the kernel's own rounding error.
    Z_ref = f64(X) @ f64(W) + f64(b)
    np.testing.assert_allclose(Z, Z_ref, **tol(dtype))
    # The activation is applied to the kernel's own Z: that isolates act() from the matmul.
    np.testing.assert_allclose(A, reference.activation(act, f64(Z)), **tol(dtype))
    np.testing.assert_allclose(A, reference.activation(act, Z_ref), **tol(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ["identity", "relu", "tanh", "gelu"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_dense_forward_output_may_alias_preactivation(dtype, act, backend):
    """``A`` may be the same array as ``Z`` (the docstring's promise; the output layer uses it with IDENTITY)."""
    rng = np.random.default_rng(1)
    X, W, b = layer_inputs(rng, 9, 5, 4, dtype)
    Z = np.full((9, 4), np.nan, dtype=dtype)
    FORWARD[backend](X, W, b, kernels.ACTIVATIONS[act], Z, Z)
    Z_ref = f64(X) @ f64(W) + f64(b)
    np.testing.assert_allclose(Z, reference.activation(act, Z_ref), **tol(dtype))


def fma_chain_row(x, W, b):
    """``x @ W + b`` in float32 as one fused multiply-add per weight, inputs in order.

    A float32 product is exact in float64 and the float64 sum of it and a
    float32 is rounded once more to float32, so this emulates ``fma`` (barring
    double rounding, about one case in 2**29).
    """
    acc = np.zeros(W.shape[1], dtype=np.float32)
    for k in range(W.shape[0]):
        acc = (np.float64(x[k]) * f64(W[k]) + f64(acc)).astype(np.float32)
    return acc + b


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_forward_of_one_row_rounds_as_a_fused_chain(backend):
    """A single row through a small layer (at most 8 inputs, 128 weights) is a loop, not a BLAS call.

    It must round as BLAS does a row of a batch, one fused multiply-add per weight in input order,
    so a prediction does not change in the last bit when the row comes alone.
    """
    rng = np.random.default_rng(7)
    for d_in, d_out in [(1, 1), (2, 2), (2, 64), (3, 40), (5, 7), (8, 16)]:
        X, W, b = layer_inputs(rng, 1, d_in, d_out, np.float32)
        Z = np.empty((1, d_out), np.float32)
        FORWARD[backend](X, W, b, kernels.IDENTITY, Z, Z)
        np.testing.assert_array_equal(Z[0], fma_chain_row(X[0], W, b), err_msg=f"{d_in}x{d_out}")


# --------------------------------------------------------------------------- backprop_delta
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("act", ACT_NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_backprop_delta_matches_reference(dtype, act, shape, backend):
    # Read the shape as (n, d, d_next): D is (n, d), W_next is (d, d_next).
    n, d, d_next = shape
    rng = np.random.default_rng(seed_of((n, d, d_next, act, "bp")))
    D_next = rand(rng, (n, d_next), dtype)
    W_next = rand(rng, (d, d_next), dtype)
    Z = rand(rng, (n, d), dtype, 2.0)
    A = np.ascontiguousarray(reference.activation(act, Z))
    assert A.dtype == dtype
    D = np.full((n, d), np.nan, dtype=dtype)
    BACKPROP[backend](D_next, W_next, Z, A, kernels.ACTIVATIONS[act], D)

    assert D.dtype == dtype
    expected = (f64(D_next) @ f64(W_next).T) * reference.activation_derivative(act, f64(Z))
    np.testing.assert_allclose(D, expected, **tol(dtype))


UNCHECKED_BACKPROP = {"serial": dense._backprop_delta, "parallel": dense._backprop_delta_parallel}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(32, 32, 32), (32, 32, 2), (16, 64, 10), (3, 5, 4), (40, 7, 33)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_backprop_delta_on_transposed_copies_matches_reference(dtype, shape, backend):
    """The driver's paths: the product reads a C-contiguous copy of ``W_next.T``, or copies ``D_next.T`` into a
    workspace and reads that, or, given neither, multiplies ``W_next.T`` as it is."""
    n, d, d_next = shape
    rng = np.random.default_rng(seed_of((n, d, d_next, "bpT")))
    D_next, W_next, Z = rand(rng, (n, d_next), dtype), rand(rng, (d, d_next), dtype), rand(rng, (n, d), dtype, 2.0)
    A = np.tanh(Z)
    D_next_before = D_next.copy()
    expected = (f64(D_next) @ f64(W_next).T) * (1 - f64(A) ** 2)
    none = np.empty(0, dtype)
    room = np.full(n * d_next + 3, np.nan, dtype=dtype)  # longer than needed: only the front is written
    for W_next_T, D_next_T in ((np.ascontiguousarray(W_next.T).ravel(), none), (none, room), (none, none)):
        D = np.full((n, d), np.nan, dtype=dtype)
        UNCHECKED_BACKPROP[backend](D_next, W_next, Z, A, kernels.TANH, D, W_next_T, D_next_T)
        np.testing.assert_allclose(D, expected, **tol(dtype))
    np.testing.assert_array_equal(D_next, D_next_before)
    if n * d * d_next > dense._SMALL_PRODUCT:  # (smaller products are loops that read W_next itself)
        np.testing.assert_array_equal(room[:n * d_next], D_next.T.ravel())
        np.testing.assert_array_equal(room[n * d_next:], np.nan)
        with pytest.raises(ValueError, match="fewer than rows"):
            UNCHECKED_BACKPROP[backend](D_next, W_next, Z, A, kernels.TANH, D, np.zeros(d_next * d - 1, dtype), none)
        with pytest.raises(ValueError, match="fewer than rows"):
            UNCHECKED_BACKPROP[backend](D_next, W_next, Z, A, kernels.TANH, D, none, np.zeros(n * d_next - 1, dtype))


# --------------------------------------------------------------------------- weight_gradient
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_weight_gradient_matches_reference(dtype, shape, backend):
    n, d_in, d_out = shape
    rng = np.random.default_rng(seed_of((n, d_in, d_out, "wg")))
    A_prev = rand(rng, (n, d_in), dtype)
    D = rand(rng, (n, d_out), dtype)
    # Outputs are overwritten, not accumulated: start them with garbage.
    gW = np.full((d_in, d_out), 123.0, dtype=dtype)
    gb = np.full((d_out,), -7.0, dtype=dtype)
    GRADIENT[backend](A_prev, D, gW, gb)

    assert gW.dtype == dtype and gb.dtype == dtype
    np.testing.assert_allclose(gW, f64(A_prev).T @ f64(D), **tol(dtype))
    np.testing.assert_allclose(gb, f64(D).sum(axis=0), **tol(dtype))


# Work large enough to be split into several tasks (dense._TASK_ELEMENTS elements each): the parallel
# twins then run real parallel regions, and the serial twins the same spans in turn.
MULTI_TASK_SHAPES = [(700, 24, 33), (1, 300, 100), (300, 40, 64), (5000, 4, 4)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", MULTI_TASK_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_kernels_split_into_several_tasks_match_reference(dtype, shape, backend):
    n, d_in, d_out = shape
    rng = np.random.default_rng(seed_of((shape, "tasks")))
    X, W, b = layer_inputs(rng, n, d_in, d_out, dtype)
    Z = np.full((n, d_out), np.nan, dtype=dtype)
    A = np.full((n, d_out), np.nan, dtype=dtype)
    FORWARD[backend](X, W, b, kernels.TANH, Z, A)
    Z_ref = f64(X) @ f64(W) + f64(b)
    np.testing.assert_allclose(Z, Z_ref, **tol(dtype))
    np.testing.assert_allclose(A, np.tanh(Z_ref), **tol(dtype))

    D_next = rand(rng, (n, d_out), dtype)
    D = np.full((n, d_in), np.nan, dtype=dtype)
    X_act = np.ascontiguousarray(np.tanh(X))
    BACKPROP[backend](D_next, W, X, X_act, kernels.TANH, D)
    np.testing.assert_allclose(D, (f64(D_next) @ f64(W).T) * (1 - f64(X_act) ** 2), **tol(dtype))

    gW = np.full((d_in, d_out), np.nan, dtype=dtype)
    gb = np.full(d_out, np.nan, dtype=dtype)
    GRADIENT[backend](X, D_next, gW, gb)
    # Sums of n terms of size O(1) with cancellation: the absolute error grows like sqrt(n).
    over_rows = dict(tol(dtype), atol=tol(dtype)["atol"] * 2 * math.sqrt(n))
    np.testing.assert_allclose(gW, f64(X).T @ f64(D_next), **over_rows)
    np.testing.assert_allclose(gb, f64(D_next).sum(axis=0), **over_rows)


@pytest.mark.parametrize("backend", BACKENDS)
def test_weight_gradient_of_no_rows_is_zero(backend):
    gW = np.full((3, 2), np.nan)
    gb = np.full(2, np.nan)
    GRADIENT[backend](np.empty((0, 3)), np.empty((0, 2)), gW, gb)
    assert np.all(gW == 0) and np.all(gb == 0)


# --------------------------------------------------------------------------- shape checks
def _good(dtype=np.float64, n=4, d_in=3, d_out=2):
    z = lambda *s: np.zeros(s, dtype=dtype)  # noqa: E731
    return n, d_in, d_out, z


FORWARD_BAD = {
    # W with the wrong d_in
    "W_d_in": lambda z: (z(4, 3), z(5, 2), z(2), z(4, 2), z(4, 2)),
    # b with the wrong length
    "b_len": lambda z: (z(4, 3), z(3, 2), z(3), z(4, 2), z(4, 2)),
    # Z with the wrong batch size
    "Z_rows": lambda z: (z(4, 3), z(3, 2), z(2), z(5, 2), z(4, 2)),
    # A with the wrong width
    "A_cols": lambda z: (z(4, 3), z(3, 2), z(2), z(4, 2), z(4, 3)),
}

BACKPROP_BAD = {
    # D_next (n, d_next), W_next (d, d_next), Z, A, D (n, d) with n=4, d=3, d_next=2
    "W_next_rows": lambda z: (z(4, 2), z(5, 2), z(4, 3), z(4, 3), z(4, 3)),
    "D_next_cols": lambda z: (z(4, 5), z(3, 2), z(4, 3), z(4, 3), z(4, 3)),
    "D_next_rows": lambda z: (z(6, 2), z(3, 2), z(4, 3), z(4, 3), z(4, 3)),
    "Z_shape": lambda z: (z(4, 2), z(3, 2), z(4, 2), z(4, 3), z(4, 3)),
    "A_shape": lambda z: (z(4, 2), z(3, 2), z(4, 3), z(3, 3), z(4, 3)),
}

GRADIENT_BAD = {
    # A_prev (n, d_in), D (n, d_out), gW (d_in, d_out), gb (d_out,) with n=4, d_in=3, d_out=2
    "D_rows": lambda z: (z(4, 3), z(5, 2), z(3, 2), z(2)),
    "gW_rows": lambda z: (z(4, 3), z(4, 2), z(2, 2), z(2)),
    "gW_cols": lambda z: (z(4, 3), z(4, 2), z(3, 3), z(2)),
    "gb_len": lambda z: (z(4, 3), z(4, 2), z(3, 2), z(3)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(FORWARD_BAD))
def test_dense_forward_shape_mismatch_raises(case, backend):
    z = lambda *s: np.zeros(s)  # noqa: E731
    X, W, b, Z, A = FORWARD_BAD[case](z)
    with pytest.raises(ValueError, match="dense_forward"):
        FORWARD[backend](X, W, b, kernels.RELU, Z, A)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(BACKPROP_BAD))
def test_backprop_delta_shape_mismatch_raises(case, backend):
    z = lambda *s: np.zeros(s)  # noqa: E731
    D_next, W_next, Z, A, D = BACKPROP_BAD[case](z)
    with pytest.raises(ValueError, match="backprop_delta"):
        BACKPROP[backend](D_next, W_next, Z, A, kernels.RELU, D)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(GRADIENT_BAD))
def test_weight_gradient_shape_mismatch_raises(case, backend):
    z = lambda *s: np.zeros(s)  # noqa: E731
    A_prev, D, gW, gb = GRADIENT_BAD[case](z)
    with pytest.raises(ValueError, match="weight_gradient"):
        GRADIENT[backend](A_prev, D, gW, gb)


def test_shape_mismatch_leaves_outputs_untouched():
    """The check happens on entry, before anything is written."""
    X, W, b = np.ones((4, 3)), np.ones((5, 2)), np.ones(2)
    Z, A = np.full((4, 2), 7.0), np.full((4, 2), 7.0)
    with pytest.raises(ValueError):
        kernels.dense_forward(X, W, b, kernels.IDENTITY, Z, A)
    assert np.all(Z == 7.0) and np.all(A == 7.0)


# --------------------------------------------------------------------------- serial == parallel
@pytest.mark.parametrize("shape", [(1, 1, 1), (33, 17, 9), (130, 24, 11)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("act", ACT_NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_serial_and_parallel_twins_agree(dtype, act, shape):
    n, d_in, d_out = shape
    code = kernels.ACTIVATIONS[act]
    rng = np.random.default_rng(seed_of((shape, act, "twins")))
    X, W, b = layer_inputs(rng, n, d_in, d_out, dtype)
    tight = dict(rtol=1e-13, atol=1e-15) if dtype == np.float64 else dict(rtol=1e-6, atol=1e-7)

    outs = {}
    for backend in BACKENDS:
        Z = np.empty((n, d_out), dtype=dtype)
        A = np.empty((n, d_out), dtype=dtype)
        FORWARD[backend](X, W, b, code, Z, A)
        D_next = np.ascontiguousarray(A[:, ::-1] - dtype(0.25))  # any (n, d_out) delta
        D = np.empty((n, d_in), dtype=dtype)
        # Back through a (d_in -> d_out) layer whose own pre-activation is X.
        BACKPROP[backend](D_next, W, X, np.ascontiguousarray(reference.activation(act, X)), code, D)
        gW = np.empty((d_in, d_out), dtype=dtype)
        gb = np.empty(d_out, dtype=dtype)
        GRADIENT[backend](X, D_next, gW, gb)
        outs[backend] = (Z, A, D, gW, gb)

    for serial, parallel in zip(outs["serial"], outs["parallel"]):
        assert serial.dtype == parallel.dtype == dtype
        np.testing.assert_allclose(parallel, serial, **tight)


# --------------------------------------------------------------------------- the embedding contract
def _make_embedded_mlp(dense_forward, backprop_delta, weight_gradient):
    """A 2-hidden-layer MLP's loss and gradients written by a user with fastbp's kernels.

    Everything but the three kernels (the softmax cross-entropy and its delta,
    the buffers) is the test's own njit code, outside the package.
    """
    identity = kernels.IDENTITY

    @numba.njit
    def embedded_mlp(X, labels, W0, b0, W1, b1, W2, b2, act0, act1, gW0, gb0, gW1, gb1, gW2, gb2):
        n = X.shape[0]
        h0, h1, k = W0.shape[1], W1.shape[1], W2.shape[1]
        Z0 = np.empty((n, h0))
        A0 = np.empty((n, h0))
        Z1 = np.empty((n, h1))
        A1 = np.empty((n, h1))
        Z2 = np.empty((n, k))
        dense_forward(X, W0, b0, act0, Z0, A0)
        dense_forward(A0, W1, b1, act1, Z1, A1)
        dense_forward(A1, W2, b2, identity, Z2, Z2)  # linear output layer, A is Z

        # Softmax cross-entropy with integer labels, mean over rows; delta = (softmax(Z) - onehot) / n.
        D2 = np.empty((n, k))
        loss = 0.0
        for i in range(n):
            m = Z2[i, 0]
            for j in range(1, k):
                m = max(m, Z2[i, j])
            s = 0.0
            for j in range(k):
                s += math.exp(Z2[i, j] - m)
            loss += m + math.log(s) - Z2[i, labels[i]]
            for j in range(k):
                D2[i, j] = math.exp(Z2[i, j] - m) / s / n
            D2[i, labels[i]] -= 1.0 / n
        loss /= n

        D1 = np.empty((n, h1))
        D0 = np.empty((n, h0))
        weight_gradient(A1, D2, gW2, gb2)
        backprop_delta(D2, W2, Z1, A1, act1, D1)
        weight_gradient(A0, D1, gW1, gb1)
        backprop_delta(D1, W1, Z0, A0, act0, D0)
        weight_gradient(X, D0, gW0, gb0)
        return loss

    return embedded_mlp


embedded_mlp = _make_embedded_mlp(kernels.dense_forward, kernels.backprop_delta, kernels.weight_gradient)
embedded_mlp_parallel = _make_embedded_mlp(kernels.dense_forward_parallel, kernels.backprop_delta_parallel,
                                           kernels.weight_gradient_parallel)


@pytest.mark.parametrize("which", ["serial", "parallel"])
@pytest.mark.parametrize("acts", [("tanh", "relu"), ("gelu", "sigmoid"), ("elu", "softplus")], ids="-".join)
def test_embedding_contract_matches_model(acts, which):
    sizes = [6, 9, 7, 4]
    rng = np.random.default_rng(42)
    X = rng.standard_normal((23, sizes[0]))
    y = rng.integers(0, sizes[-1], size=23)
    model = fastbp.MLP(sizes, activation=list(acts), loss="softmax_cross_entropy", dtype=np.float64, seed=3)
    Ws, bs = model.get_weights()
    # Non-zero biases, so that a kernel ignoring b would be caught.
    bs = [rng.standard_normal(b.shape) * 0.3 for b in bs]
    model.set_weights(Ws, bs)

    gWs = [np.full(W.shape, np.nan) for W in Ws]
    gbs = [np.full(b.shape, np.nan) for b in bs]
    fn = embedded_mlp if which == "serial" else embedded_mlp_parallel
    loss = fn(X, y, Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2],
              kernels.ACTIVATIONS[acts[0]], kernels.ACTIVATIONS[acts[1]],
              gWs[0], gbs[0], gWs[1], gbs[1], gWs[2], gbs[2])

    m_loss, m_gWs, m_gbs = model.loss_and_grad(X, y)
    assert np.isfinite(loss) and loss > 0
    np.testing.assert_allclose(loss, m_loss, rtol=1e-10, atol=1e-12)
    for l in range(3):
        np.testing.assert_allclose(gWs[l], m_gWs[l], rtol=1e-10, atol=1e-12, err_msg=f"gW[{l}]")
        np.testing.assert_allclose(gbs[l], m_gbs[l], rtol=1e-10, atol=1e-12, err_msg=f"gb[{l}]")

    # And both against the independent NumPy oracle.
    T = np.eye(sizes[-1])[y]
    r_loss, r_gWs, r_gbs = reference.loss_and_grad(X, T, Ws, bs, list(acts), "softmax_cross_entropy")
    np.testing.assert_allclose(loss, r_loss, rtol=1e-10, atol=1e-12)
    for l in range(3):
        np.testing.assert_allclose(gWs[l], r_gWs[l], rtol=1e-10, atol=1e-12, err_msg=f"gW[{l}] vs reference")
        np.testing.assert_allclose(gbs[l], r_gbs[l], rtol=1e-10, atol=1e-12, err_msg=f"gb[{l}] vs reference")
