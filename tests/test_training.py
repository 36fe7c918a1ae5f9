"""The backends of fastbp/training.py: ``numpy``, ``cpu`` and ``parallel`` follow the same trajectory,
and ``backend="auto"`` resolves by the work per minibatch.

``backend="numpy"`` (plain NumPy, minibatch by minibatch) is the oracle of the compiled backends.
"""

import numba
import numpy as np
import pytest
from conftest import make_data

import fastbp

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
TIGHT = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-4, atol=2e-5)}


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


@pytest.mark.parametrize("small_matrix_blas", [True, False], ids=["small-kernels", "no-small-kernels"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_every_way_of_running_the_backward_product_follows_the_numpy_trajectory(monkeypatch, dtype,
                                                                                small_matrix_blas):
    """With small-matrix BLAS kernels the 40-36 layer's backward product runs on a copy of ``D.T`` and the
    narrow layers' on a copy of ``W.T``; without them every layer multiplies ``W.T`` as it is."""
    import fastbp.network
    from fastbp.kernels import layout

    monkeypatch.setattr(fastbp.network, "blas_has_small_matrix_kernels", lambda: small_matrix_blas)
    X, y = make_data("softmax_cross_entropy", n=100, k=3, form="labels")
    sizes = [5, 40, 36, 8, 3]
    modes = fastbp.MLP(sizes, dtype=dtype).network.layer_table(16)[1:, layout.BACKWARD].tolist()
    if small_matrix_blas:
        assert modes == [layout.BACKWARD_COPY_DELTAS, layout.BACKWARD_COPY_WEIGHTS, layout.BACKWARD_COPY_WEIGHTS]
    else:
        assert modes == [layout.BACKWARD_TRANSPOSED] * 3
    results = {}
    for backend in ("numpy", "cpu", "parallel"):
        model = fastbp.MLP(sizes, activation="tanh", loss="softmax_cross_entropy", dtype=dtype, seed=3)
        opt = fastbp.SGD(lr=0.1, momentum=0.9)
        model.fit(X, y, epochs=2, batch_size=16, optimizer=opt, shuffle=True, backend=backend)
        results[backend] = model.theta.copy()
    for backend in ("cpu", "parallel"):
        np.testing.assert_allclose(results[backend], results["numpy"], **TIGHT[dtype], err_msg=backend)


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
