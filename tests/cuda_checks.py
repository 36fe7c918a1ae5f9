"""CUDA kernel checks, run by tests/test_cuda.py in subprocesses (not collected on their own: no ``test_`` prefix).

Three modes, chosen by the environment the parent sets before numba is imported:

- ``NUMBA_ENABLE_CUDASIM=1`` (with small ``FASTBP_CUDA_TILE`` and
  ``FASTBP_CUDA_THREADS`` so that tiny inputs span several blocks): every CUDA
  kernel against ``fastbp.reference``, and ``fit(backend="cuda")`` against
  ``backend="cpu"``, on Numba's CUDA simulator.
- without it: every kernel compiled to PTX for a real GPU (``compute 8.0``)
  with ``numba.cuda.compile_ptx``, in float32 and float64, which type-checks
  code the simulator would accept but a GPU would not.
- on a machine with a CUDA GPU (``make gpu-check``): the simulator's checks run
  on the GPU itself (with the small blocks, when the parent sets them), and
  the ``gpu`` checks add shapes of many default-sized blocks with partial
  tails, and a fit of a digits-sized network against the CPU's.
"""

import os

import numpy as np
import pytest
from conftest import f64, rand, tol

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install fastbp[cuda])")

import fastbp  # noqa: E402
from fastbp import kernels, reference  # noqa: E402
from fastbp.datasets import load_digits  # noqa: E402
from fastbp.kernels import cuda as fcuda  # noqa: E402
from fastbp.kernels import layout  # noqa: E402

REAL_GPU = fcuda.real_device_available()

#: Checks of small shapes: on the simulator, or on a real GPU.
sim = pytest.mark.skipif(not (SIMULATOR or REAL_GPU), reason="needs NUMBA_ENABLE_CUDASIM=1 or a CUDA GPU")
#: Checks of shapes too large for the simulator: only on a real GPU.
gpu = pytest.mark.skipif(not REAL_GPU, reason="needs a CUDA GPU")
ptx = pytest.mark.skipif(SIMULATOR, reason="PTX is compiled by the real CUDA target, not the simulator")

DTYPES = [np.float64, np.float32]  # float64 first (conftest.DTYPES has float32 first)


# --------------------------------------------------------------------------- simulator: kernels
@pytest.mark.skipif(not SIMULATOR and "FASTBP_CUDA_TILE" not in os.environ,
                    reason="a GPU run with the default blocks")
def test_block_sizes_are_small():
    """The parent shrinks the blocks so that the shapes below span several of them."""
    from fastbp import _settings

    assert _settings.CUDA_TILE <= 4 and _settings.CUDA_THREADS <= 8


def _case_id(value):
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return value.__name__


# (n, d_in, d_out) with tile 4: a single element, row/column/shared-dimension tails, several tiles each way.
SHAPES = [(1, 1, 1), (7, 5, 9), (9, 6, 3)]
FORWARD_CASES = ([(np.float64, act, SHAPES[1]) for act in kernels.ACTIVATIONS]
                 + [(np.float32, act, s) for act in ("relu", "gelu", "sigmoid") for s in SHAPES[:2]]
                 + [(np.float64, "tanh", SHAPES[0]), (np.float64, "elu", SHAPES[2])])


@sim
@pytest.mark.parametrize("dtype, act, shape", FORWARD_CASES,
                         ids=_case_id)
def test_dense_forward(dtype, act, shape):
    n, d_in, d_out = shape
    rng = np.random.default_rng(n * 100 + d_in * 10 + d_out)
    X = rand(rng, (n, d_in), dtype)
    W = rand(rng, (d_in, d_out), dtype, 1.0 / np.sqrt(d_in))
    b = rand(rng, (d_out,), dtype, 0.5)
    Z = np.full((n, d_out), np.nan, dtype=dtype)
    A = np.full((n, d_out), np.nan, dtype=dtype)
    fcuda.launch_dense_forward(X, W, b, kernels.ACTIVATIONS[act], Z, A)
    Z_ref = f64(X) @ f64(W) + f64(b)
    np.testing.assert_allclose(Z, Z_ref, **tol(dtype))
    np.testing.assert_allclose(A, reference.activation(act, f64(Z)), **tol(dtype))


@sim
def test_dense_forward_output_may_alias_preactivation():
    rng = np.random.default_rng(3)
    X, W, b = rand(rng, (6, 5), np.float64), rand(rng, (5, 7), np.float64), rand(rng, (7,), np.float64)
    Z = np.full((6, 7), np.nan)
    fcuda.launch_dense_forward(X, W, b, kernels.RELU, Z, Z)
    np.testing.assert_allclose(Z, np.maximum(X @ W + b, 0), **tol(np.float64))


BACKPROP_CASES = ([(np.float64, act, SHAPES[1]) for act in kernels.ACTIVATIONS]
                  + [(np.float32, act, SHAPES[2]) for act in ("relu", "tanh", "softplus")]
                  + [(np.float64, "leaky_relu", SHAPES[0])])


@sim
@pytest.mark.parametrize("dtype, act, shape", BACKPROP_CASES,
                         ids=_case_id)
def test_backprop_delta(dtype, act, shape):
    n, d, d_next = shape
    rng = np.random.default_rng(n + 7 * d + 11 * d_next)
    D_next = rand(rng, (n, d_next), dtype)
    W_next = rand(rng, (d, d_next), dtype)
    Z = rand(rng, (n, d), dtype, 2.0)
    A = np.ascontiguousarray(reference.activation(act, Z))
    D = np.full((n, d), np.nan, dtype=dtype)
    fcuda.launch_backprop_delta(D_next, W_next, Z, A, kernels.ACTIVATIONS[act], D)
    expected = (f64(D_next) @ f64(W_next).T) * reference.activation_derivative(act, f64(Z))
    np.testing.assert_allclose(D, expected, **tol(dtype))


@sim
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", SHAPES + [(1, 5, 6), (10, 3, 2)], ids=lambda s: "x".join(map(str, s)))
def test_weight_gradient(shape, dtype):
    n, d_in, d_out = shape
    rng = np.random.default_rng(5 * n + d_in + 3 * d_out)
    A_prev = rand(rng, (n, d_in), dtype)
    D = rand(rng, (n, d_out), dtype)
    gW = np.full((d_in, d_out), 123.0, dtype=dtype)  # overwritten, not accumulated
    gb = np.full((d_out,), -7.0, dtype=dtype)
    fcuda.launch_weight_gradient(A_prev, D, gW, gb)
    np.testing.assert_allclose(gW, f64(A_prev).T @ f64(D), **tol(dtype))
    np.testing.assert_allclose(gb, f64(D).sum(axis=0), **tol(dtype))


@sim
def test_host_wrappers_check_shapes_and_dtypes():
    X, W, b = np.zeros((3, 2)), np.zeros((3, 4)), np.zeros(4)
    with pytest.raises(ValueError, match="dense_forward"):
        fcuda.launch_dense_forward(X, W, b, kernels.RELU, np.zeros((3, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="backprop_delta"):
        fcuda.launch_backprop_delta(np.zeros((3, 4)), np.zeros((2, 4)), np.zeros((3, 2)), np.zeros((3, 2)),
                                    kernels.RELU, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="weight_gradient"):
        fcuda.launch_weight_gradient(np.zeros((3, 2)), np.zeros((3, 4)), np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(TypeError, match="one dtype"):
        fcuda.launch_weight_gradient(np.zeros((3, 2)), np.zeros((3, 4), np.float32), np.zeros((2, 4)), np.zeros(4))


LOSS_NAMES = list(kernels.LOSSES)


@sim
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_output_delta(dtype, loss, weighted):
    n, k = 11, 3  # 11 rows: two blocks of 8 threads, the second partial
    rng = np.random.default_rng(len(loss) + weighted)
    Z = rand(rng, (n, k), dtype, 2.0)
    if loss == "softmax_cross_entropy":
        T = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
        T[0] = np.array([0.2, 0.5, 0.3], dtype=dtype)  # a probability row
    elif loss == "binary_cross_entropy":
        T = (rng.random((n, k)) > 0.5).astype(dtype)
    else:
        T = rand(rng, (n, k), dtype)
    sw = rng.uniform(0.0, 2.0, n).astype(dtype) if weighted else None
    wsum = float(np.sum(sw, dtype=np.float64)) if weighted else float(n)
    divisor = wsum if loss == "softmax_cross_entropy" else wsum * k
    D = np.full((n, k), np.nan, dtype=dtype)
    row_loss = np.full(n, np.nan)
    row_correct = np.full(n, np.nan)
    w = sw if weighted else np.zeros(n, dtype=dtype)
    fcuda.launch_output_delta(Z, T, w, weighted, kernels.LOSSES[loss], 1.0 / divisor, D, row_loss, row_correct)
    np.testing.assert_allclose(D, reference.output_delta(loss, f64(Z), f64(T), None if sw is None else f64(sw)),
                               **tol(dtype))
    np.testing.assert_allclose(row_loss.sum() / divisor,
                               reference.loss_value(loss, f64(Z), f64(T), None if sw is None else f64(sw)),
                               **tol(dtype))
    correct = fastbp.training.correct_count(loss, Z, T)
    assert row_correct.sum() == correct


OPTIMIZERS = [fastbp.SGD(lr=0.1), fastbp.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
              fastbp.SGD(lr=0.05, momentum=0.5), fastbp.Adam(lr=0.01, weight_decay=0.1), fastbp.AdamW(lr=0.01)]


@sim
@pytest.mark.parametrize("opt", OPTIMIZERS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_optimizer_update(dtype, opt):
    P = 13  # two blocks of 8 threads, the second partial
    rng = np.random.default_rng(P)
    theta = rand(rng, P, dtype)
    m, v = rand(rng, P, dtype, 0.1), np.abs(rand(rng, P, dtype, 0.1))
    g = rand(rng, P, dtype)
    step = np.array([3], dtype=np.int64)  # the update uses step[0] as this step's number
    stats = np.zeros(layout.N_STATS)
    expected = [theta.copy()]
    state = {"step": 2, "m": [m.copy()], "v": [v.copy()]}
    reference.optimizer_step(opt.name, expected, [g.copy()], state, **opt.settings())
    fcuda.launch_optimizer_update(opt.code, theta, g, m, v, opt.hyperparameters(), step, stats)
    np.testing.assert_allclose(theta, expected[0], **tol(dtype))
    np.testing.assert_allclose(m, state["m"][0], **tol(dtype))
    if opt.code != layout.SGD:
        np.testing.assert_allclose(v, state["v"][0], **tol(dtype))


@sim
def test_optimizer_update_does_nothing_after_divergence():
    theta, g = np.ones(5), np.ones(5)
    stats = np.zeros(layout.N_STATS)
    stats[layout.S_DIVERGED] = 1.0
    opt = fastbp.SGD(lr=0.5)
    fcuda.launch_optimizer_update(opt.code, theta, g, np.zeros(5), np.zeros(5), opt.hyperparameters(),
                                  np.array([1]), stats)
    np.testing.assert_array_equal(theta, np.ones(5))


@sim
def test_batch_stats_sums_rows_and_flags_non_finite_losses():
    k = fcuda.compiled_kernels()
    threads = fastbp._settings.CUDA_THREADS
    row_loss, row_correct = np.arange(1.0, 12.0), np.ones(11)
    stats, step, sq = np.zeros(layout.N_STATS), np.zeros(1, dtype=np.int64), np.array([2.0])
    k["batch_stats"][1, threads](row_loss, row_correct, 11, 0, 4.5, 0.25, sq, stats, step)
    assert stats[layout.S_LOSS] == 66.0 + 0.5 and stats[layout.S_CORRECT] == 11 and stats[layout.S_SEEN] == 11
    assert stats[layout.S_WEIGHT] == 4.5 and step[0] == 1 and sq[0] == 0.0
    k["batch_stats"][1, threads](row_loss, row_correct, 0, 5, 0.0, 0.0, sq, stats, step)  # a zero-weight batch
    assert stats[layout.S_SEEN] == 16 and step[0] == 1
    row_loss[3] = np.inf
    k["batch_stats"][1, threads](row_loss, row_correct, 11, 0, 1.0, 0.0, sq, stats, step)
    assert stats[layout.S_DIVERGED] == 1.0 and stats[layout.S_LOSS] == 66.5 and step[0] == 1


@sim
def test_gather_rows():
    k = fcuda.compiled_kernels()
    src = np.arange(21.0).reshape(7, 3)
    order = np.array([6, 0, 3, 5, 1, 2, 4])
    dst = np.full((4, 3), np.nan)
    k["gather_rows"][2, 8](src, order, 2, 4, dst)
    np.testing.assert_array_equal(dst, src[order[2:6]])


# --------------------------------------------------------------------------- simulator: fit
def _fit_pair(dtype=np.float64, **options):
    layers = options.pop("layers", [3, 5, 3])
    model_args = dict(activation=options.pop("activation", "tanh"), loss=options.pop("loss", "softmax_cross_entropy"),
                      dtype=dtype, seed=1)
    rng = np.random.default_rng(0)
    n = options.pop("n", 10)
    X = rng.standard_normal((n, layers[0])).astype(dtype)
    if model_args["loss"] == "softmax_cross_entropy":
        y = rng.integers(0, layers[-1], n)
    elif model_args["loss"] == "binary_cross_entropy":
        y = (rng.random((n, layers[-1])) > 0.5).astype(dtype)
    else:
        y = rng.standard_normal((n, layers[-1])).astype(dtype)
    make_opt = options.pop("optimizer", lambda: fastbp.Adam(lr=0.05))
    out = {}
    for backend in ("cpu", "cuda"):
        model = fastbp.MLP(layers, **model_args)
        history = model.fit(X, y, backend=backend, optimizer=make_opt(), **options)
        out[backend] = (model, history)
    assert out["cuda"][1]["backend"] == "cuda"
    return out


def _assert_same_training(out, dtype=np.float64):
    (cpu, h_cpu), (gpu, h_gpu) = out["cpu"], out["cuda"]
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(h_gpu["loss"], h_cpu["loss"], rtol=rtol)
    for key in ("accuracy", "val_loss"):
        if key in h_cpu:
            np.testing.assert_allclose(h_gpu[key], h_cpu[key], rtol=rtol)
    np.testing.assert_allclose(gpu.theta, cpu.theta, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(gpu.optimizer.m, cpu.optimizer.m, rtol=rtol, atol=rtol)
    assert gpu.optimizer.step[0] == cpu.optimizer.step[0]


@sim
def test_fit_matches_cpu_shuffled_weighted_with_l2():
    rng = np.random.default_rng(4)
    sw = rng.uniform(0.5, 2.0, 10)
    sw[4:8] = 0.0  # with batch_size 4 and no shuffle this could be a zero-weight batch; shuffled, just zeros
    _assert_same_training(_fit_pair(epochs=2, batch_size=4, sample_weight=sw, l2=0.1))


@sim
def test_fit_matches_cpu_in_order_mse_sgd_two_hidden_layers():
    out = _fit_pair(layers=[2, 4, 3, 2], activation="relu", loss="mse", epochs=2, batch_size=4, shuffle=False,
                    optimizer=lambda: fastbp.SGD(lr=0.1, momentum=0.9, nesterov=True))
    _assert_same_training(out)


@sim
def test_fit_matches_cpu_zero_weight_batch_and_validation():
    sw = np.ones(10)
    sw[4:8] = 0.0  # in order, batch_size 4: the middle minibatch has no weight and takes no step
    out = _fit_pair(loss="binary_cross_entropy", layers=[3, 4, 2], epochs=2, batch_size=4, shuffle=False,
                    sample_weight=sw, validation_data=(np.ones((3, 3)), np.ones((3, 2))))
    _assert_same_training(out)
    assert out["cuda"][0].optimizer.step[0] == 4


@sim
def test_fit_matches_cpu_float32():
    _assert_same_training(_fit_pair(dtype=np.float32, epochs=2, batch_size=6, activation="gelu"), np.float32)


@sim
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_fit_divergence_keeps_weights_from_before_the_epoch_as_on_the_cpu():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 3)) * 1e3
    y = rng.standard_normal((8, 2)) * 1e3
    results = {}
    for backend in ("cpu", "cuda"):
        model = fastbp.MLP([3, 4, 2], activation="relu", dtype=np.float64, seed=0)
        with pytest.raises(fastbp.DivergedError) as info:
            model.fit(X, y, epochs=4, batch_size=4, optimizer=fastbp.SGD(lr=1e3), backend=backend)
        results[backend] = (model, info.value.history)
    (cpu, h_cpu), (gpu, h_gpu) = results["cpu"], results["cuda"]
    assert len(h_gpu["loss"]) == len(h_cpu["loss"]) >= 1  # a first epoch completes, a later one diverges
    assert np.all(np.isfinite(gpu.theta))
    np.testing.assert_allclose(gpu.theta, cpu.theta, rtol=1e-9)
    assert gpu.optimizer.step[0] == cpu.optimizer.step[0] == 2 * len(h_cpu["loss"])


# --------------------------------------------------------------------------- a real GPU: larger shapes
def _gpu_tol(dtype, k):
    """Tolerances for sums of ``k`` terms of unit size: float32 rounding grows with ``sqrt(k)``."""
    if dtype == np.float64:
        return dict(rtol=1e-10, atol=1e-12 * np.sqrt(k))
    return dict(rtol=1e-4, atol=1e-5 * np.sqrt(k))


# (n, d_in, d_out): many blocks of 16 or 32 with partial tails, a wide shared dimension, one row.
GPU_SHAPES = [(300, 257, 129), (1, 784, 33), (1031, 64, 10)]


@gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", GPU_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gpu_kernels_at_larger_shapes(shape, dtype):
    n, d_in, d_out = shape
    rng = np.random.default_rng(n + d_in + d_out)
    X = rand(rng, (n, d_in), dtype)
    W = rand(rng, (d_in, d_out), dtype, 1.0 / np.sqrt(d_in))
    b = rand(rng, (d_out,), dtype, 0.5)
    Z = np.full((n, d_out), np.nan, dtype=dtype)
    A = np.full((n, d_out), np.nan, dtype=dtype)
    fcuda.launch_dense_forward(X, W, b, kernels.TANH, Z, A)
    Z_ref = f64(X) @ f64(W) + f64(b)
    np.testing.assert_allclose(Z, Z_ref, **_gpu_tol(dtype, d_in))
    np.testing.assert_allclose(A, np.tanh(Z_ref), **_gpu_tol(dtype, d_in))

    D_next = rand(rng, (n, d_out), dtype, 1.0 / np.sqrt(d_out))
    H = rand(rng, (n, d_in), dtype)
    D = np.full((n, d_in), np.nan, dtype=dtype)
    fcuda.launch_backprop_delta(D_next, W, H, np.maximum(H, 0), kernels.RELU, D)
    np.testing.assert_allclose(D, (f64(D_next) @ f64(W).T) * (f64(H) > 0), **_gpu_tol(dtype, d_out))

    gW = np.full((d_in, d_out), 123.0, dtype=dtype)
    gb = np.full((d_out,), -7.0, dtype=dtype)
    fcuda.launch_weight_gradient(X, D_next, gW, gb)
    np.testing.assert_allclose(gW, f64(X).T @ f64(D_next), **_gpu_tol(dtype, n))
    np.testing.assert_allclose(gb, f64(D_next).sum(axis=0), **_gpu_tol(dtype, n))


@gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_gpu_fit_of_a_digits_network_matches_cpu(dtype):
    X, y = load_digits()
    results = {}
    for backend in ("cpu", "cuda"):
        model = fastbp.MLP([64, 128, 64, 10], activation="relu", dtype=dtype, seed=3)
        history = model.fit(X, y, epochs=2, batch_size=256, optimizer=fastbp.Adam(lr=1e-3), backend=backend)
        results[backend] = (model, history)
    (cpu, h_cpu), (gpu_model, h_gpu) = results["cpu"], results["cuda"]
    assert h_gpu["backend"] == "cuda"
    rtol = 1e-8 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(h_gpu["loss"], h_cpu["loss"], rtol=rtol)
    np.testing.assert_allclose(gpu_model.theta, cpu.theta, rtol=rtol, atol=rtol)


# --------------------------------------------------------------------------- PTX for a real GPU
def _signatures(nb):
    """Each kernel's argument types for float dtype ``nb`` (C-contiguous arrays, as the host code passes)."""
    from numba import boolean, float64, int64

    a1, a2, f1, i1 = nb[::1], nb[:, ::1], float64[::1], int64[::1]
    return {
        "dense_forward": (a2, a2, a1, int64, a2, a2),
        "backprop_delta": (a2, a2, a2, a2, int64, a2),
        "weight_gradient": (a2, a2, a2, a1),
        "output_delta": (a2, a2, a1, boolean, int64, nb, a2, f1, f1),
        "optimizer_update": (int64, a1, a1, a1, a1, f1, i1, f1),
        "gather_rows": (a2, i1, int64, int64, a2),
        "batch_stats": (f1, f1, int64, int64, float64, float64, f1, f1, i1),
        "add_l2": (a1, a1, nb, f1),
        "check_finite": (a1, f1),
    }


def _ptx_compiler():
    """``numba.cuda.compile_ptx``, or skip when the NVRTC/NVVM bindings it needs are missing."""
    from numba import cuda, float32

    def probe(x, y):
        i = cuda.grid(1)
        if i < x.shape[0]:
            y[i] = x[i]

    try:
        cuda.compile_ptx(probe, (float32[::1], float32[::1]), cc=(8, 0))
    except Exception as exc:  # no NVVM/NVRTC bindings in this environment
        pytest.skip(f"cannot compile PTX here: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    return cuda.compile_ptx


# Kernels whose float32 code must not contain a single float64 instruction (a float literal that
# promotes would show up here). The others use float64 on purpose: loss sums, Adam's bias corrections.
PURE_FLOAT32 = {"dense_forward", "backprop_delta", "weight_gradient", "gather_rows", "check_finite"}


@ptx
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_kernel_compiles_to_ptx(dtype):
    import numba

    compile_ptx = _ptx_compiler()
    bodies = fcuda.kernel_bodies()
    signatures = _signatures(getattr(numba, dtype))
    assert set(signatures) == set(bodies)
    for name, sig in signatures.items():
        code, restype = compile_ptx(bodies[name], sig, cc=(8, 0))
        assert ".entry" in code and str(restype) == "none", name
        if dtype == "float32" and name in PURE_FLOAT32:
            doubles = [line.strip() for line in code.splitlines() if ".f64" in line]
            assert doubles == [], f"{name}: float64 instructions in float32 code: {doubles[:3]}"
