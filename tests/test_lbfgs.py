"""fastbp.LBFGS: the full-batch objective in blocks, L-BFGS through MLP.fit, against SciPy on the NumPy reference."""

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse

import fastbp
from fastbp import reference, training
from fastbp.datasets import load_digits
from fastbp.schedules import StepLR
from fastbp.sparse_input import CSRInput


def _problem(loss="softmax_cross_entropy", n=90, d=6, k=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, k, n)
    elif loss == "binary_cross_entropy":
        y = (rng.random((n, k)) < 0.4).astype(float)
    else:
        y = rng.standard_normal((n, k))
    model = fastbp.MLP([d, 7, k], activation="tanh", loss=loss, dtype=dtype, seed=seed)
    return model, X, y


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "binary_cross_entropy", "mse", "poisson"])
@pytest.mark.parametrize("weighted", [False, True])
def test_full_batch_objective_in_blocks_is_one_minibatch(loss, weighted):
    """Blocks of 7 rows (one of them all zero weights), combined: the loss, gradient and count of one call."""
    model, X, y = _problem(loss if loss != "poisson" else "mse")
    if loss == "poisson":
        model = fastbp.MLP([6, 7, 3], activation="tanh", loss="poisson", dtype=np.float64, seed=0)
        y = np.abs(y)
    sw = None
    if weighted:
        sw = np.random.default_rng(3).uniform(0.1, 2.0, X.shape[0])
        sw[14:21] = 0.0  # the third block of 7
    Xc, T = model.network.check_data(X, y)
    swc = None if sw is None else sw.astype(model.dtype)
    whole = training.FullBatchObjective(model.network, model.theta, Xc, T, swc, 0.3, block_rows=10_000)
    blocks = training.FullBatchObjective(model.network, model.theta, Xc, T, swc, 0.3, block_rows=7)
    numpy = training.FullBatchObjective(model.network, model.theta, Xc, T, swc, 0.3, backend="numpy")
    loss_whole, grad_whole = whole()
    grad_whole = grad_whole.copy()
    loss_blocks, grad_blocks = blocks()
    loss_numpy, grad_numpy = numpy()
    expected, gWs, gbs = model.loss_and_grad(X, y, sample_weight=sw, l2=0.3)
    np.testing.assert_allclose([loss_whole, loss_blocks, loss_numpy], expected, rtol=1e-12)
    expected_grad = np.concatenate([g.ravel() for g in gWs] + [g.ravel() for g in gbs])
    order = np.concatenate([np.arange(o, o + i * j) for o, i, j in zip(model.network.weight_offsets,
                                                                       model.network.sizes[:-1],
                                                                       model.network.sizes[1:])]
                           + [np.arange(o, o + j) for o, j in zip(model.network.bias_offsets,
                                                                  model.network.sizes[1:])])
    for grad in (grad_whole, grad_blocks, grad_numpy):
        np.testing.assert_allclose(grad[order], expected_grad, rtol=1e-10, atol=1e-14)
    assert whole.correct == blocks.correct == numpy.correct  # every row's prediction counted, weighted or not
    if loss == "softmax_cross_entropy":
        Z = model.decision_function(X)
        assert whole.correct == np.sum(Z.argmax(1) == y)


def _scipy_on_the_reference(model, X, y, l2, iterations):
    """SciPy's L-BFGS-B driven by the NumPy reference's loss and gradient: the losses of its iterations."""
    net = model.network
    theta = model.theta.copy()
    X, T = net.check_data(X, y)

    def fun(x):
        theta[...] = x
        Ws, bs = net.unflatten(theta)
        loss, gWs, gbs = reference.loss_and_grad(X, T, Ws, bs, net.activations, net.loss, None, l2)
        grad = np.empty_like(theta)
        gW_views, gb_views = net.unflatten(grad)
        for view, g in zip(gW_views + gb_views, gWs + gbs):
            view[...] = g
        return loss, grad

    losses = []
    scipy.optimize.minimize(fun, theta.copy(), jac=True, method="L-BFGS-B",
                            options={"maxiter": iterations, "gtol": 1e-5, "maxcor": 10},
                            callback=lambda intermediate_result: losses.append(intermediate_result.fun))
    return losses


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_lbfgs_fit_follows_scipy_on_the_reference(backend):
    """Each epoch of the history is an L-BFGS-B iteration of SciPy run on the independent NumPy reference."""
    model, X, y = _problem()
    expected = _scipy_on_the_reference(model, X, y, l2=0.1, iterations=15)
    history = model.fit(X, y, epochs=15, optimizer=fastbp.LBFGS(), l2=0.1, backend=backend)
    assert len(history["loss"]) == len(expected) == 15
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-8)
    assert history["backend"] == backend
    assert model.optimizer.n_iter == 15 and model.optimizer.n_fun >= 15
    assert model.optimizer.converged is False and "15 epochs" in model.optimizer.message
    final, _, _ = model.loss_and_grad(X, y, l2=0.1)
    assert final == pytest.approx(history["loss"][-1], rel=1e-12)  # the model holds the last iterate
    assert 0 < history["accuracy"][-1] <= 1


def test_lbfgs_converges_and_says_so():
    model, X, y = _problem("mse", n=60)
    history = model.fit(X, y, epochs=2000, optimizer=fastbp.LBFGS(tol=1e-3))
    opt = model.optimizer
    assert opt.converged is True and "CONVERGENCE" in opt.message
    assert len(history["loss"]) == opt.n_iter < 2000
    _, gWs, gbs = model.loss_and_grad(X, y)
    assert max(np.abs(g).max() for g in gWs + gbs) <= 1e-3
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lbfgs_trains_a_classifier(dtype):
    X, y = load_digits()
    model = fastbp.MLP([64, 32, 10], activation="relu", loss="softmax_cross_entropy", dtype=dtype, seed=0)
    history = model.fit(X[:1200], y[:1200], epochs=150, optimizer=fastbp.LBFGS(), l2=1e-2,
                        validation_data=(X[1200:], y[1200:]))
    assert model.theta.dtype == dtype
    assert history["accuracy"][-1] > 0.99 and history["val_accuracy"][-1] > 0.9
    assert np.all(np.diff(history["loss"]) <= 1e-6)  # L-BFGS-B only accepts points that lower the loss


def test_sparse_input_takes_the_same_lbfgs_path():
    model, X, y = _problem(n=50, d=20)
    X[np.random.default_rng(1).random(X.shape) < 0.8] = 0.0
    dense = model.fit(X, y, epochs=8, optimizer=fastbp.LBFGS())
    model2, _, _ = _problem(n=50, d=20)
    sparse = model2.fit(scipy.sparse.csr_matrix(X), y, epochs=8, optimizer=fastbp.LBFGS())
    np.testing.assert_allclose(sparse["loss"], dense["loss"], rtol=1e-9)
    np.testing.assert_allclose(model2.theta, model.theta, rtol=1e-7, atol=1e-10)
    assert isinstance(model2.network.check_features(scipy.sparse.csr_matrix(X)), CSRInput)


def test_callbacks_and_early_stopping_end_the_run():
    model, X, y = _problem()
    seen = []
    history = model.fit(X, y, epochs=50, optimizer=fastbp.LBFGS(),
                        callbacks=[lambda epoch, logs: seen.append(epoch) or epoch == 3])
    assert seen == [0, 1, 2, 3] and len(history["loss"]) == 4
    assert "callback" in model.optimizer.message and model.optimizer.converged is False
    final, _, _ = model.loss_and_grad(X, y)
    assert final == pytest.approx(history["loss"][-1], rel=1e-12)

    # early stopping on validation loss with an overfitting network: the best epoch's weights come back
    rng = np.random.default_rng(2)
    Xv, yv = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
    model, X, y = _problem(n=30)
    history = model.fit(X, y, epochs=300, optimizer=fastbp.LBFGS(), validation_data=(Xv, yv), patience=5)
    best = int(np.argmin(history["val_loss"]))
    assert len(history["val_loss"]) == best + 6
    assert model.evaluate(Xv, yv)["loss"] == pytest.approx(history["val_loss"][best], rel=1e-12)


def test_a_later_fit_continues_from_the_weights():
    model, X, y = _problem()
    first = model.fit(X, y, epochs=5, optimizer=fastbp.LBFGS())
    second = model.fit(X, y, epochs=5)  # the same LBFGS, a new run from where the first ended
    assert isinstance(model.optimizer, fastbp.LBFGS)
    assert second["loss"][0] < first["loss"][-1]


def test_what_lbfgs_does_not_take_is_refused_before_anything_changes():
    model, X, y = _problem()
    theta = model.theta.copy()
    cases = [
        (dict(lr_schedule=StepLR(step_size=2)), "lr_schedule"),
        (dict(clip_grad_norm=1.0), "clip_grad_norm"),
        (dict(backend="parallel"), "backend='cpu'"),
        (dict(backend="cuda"), "backend='cpu'"),
        (dict(sample_weight=np.zeros(len(X))), "zero for every sample"),
    ]
    for kwargs, words in cases:
        with pytest.raises(ValueError, match=words):
            model.fit(X, y, epochs=3, optimizer=fastbp.LBFGS(), **kwargs)
        np.testing.assert_array_equal(model.theta, theta)
        assert model.optimizer is None
    dropped = fastbp.MLP([6, 7, 3], loss="softmax_cross_entropy", dropout=0.2, seed=0)
    with pytest.raises(ValueError, match="dropout"):
        dropped.fit(X, y, optimizer=fastbp.LBFGS())
    model.fit(X, y, epochs=2, optimizer=fastbp.LBFGS())
    with pytest.raises(ValueError, match="full-batch"):
        model.partial_fit(X, y)
    with pytest.raises(ValueError, match="full-batch"):
        model.partial_fit(X, y, optimizer=fastbp.LBFGS())
    model.partial_fit(X, y, optimizer=fastbp.SGD(lr=0.01))  # a minibatch optimizer is fine


@pytest.mark.parametrize("kwargs, error", [
    (dict(tol=-1.0), ValueError), (dict(tol="small"), TypeError), (dict(tol=float("nan")), TypeError),
    (dict(ftol=-1e-9), ValueError), (dict(max_fun=0), ValueError), (dict(max_fun=2.5), TypeError),
    (dict(history_size=0), ValueError), (dict(history_size=True), TypeError),
])
def test_lbfgs_arguments_are_checked(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        fastbp.LBFGS(**kwargs)


def test_max_fun_caps_the_evaluations():
    model, X, y = _problem()
    model.fit(X, y, epochs=100, optimizer=fastbp.LBFGS(max_fun=6))
    opt = model.optimizer
    assert opt.converged is False and opt.n_fun <= 8  # SciPy checks the cap between line searches
    assert "FUNCTION" in opt.message.upper() or "EVALUATIONS" in opt.message.upper()


def test_a_non_finite_loss_is_a_divergence_and_keeps_the_weights():
    model = fastbp.MLP([2, 4, 1], activation="identity", loss="mse", seed=0)
    X = np.full((8, 2), 1e25)  # the float32 squared error overflows at once
    y = np.zeros(8)
    theta = model.theta.copy()
    with pytest.raises(fastbp.DivergedError, match="non-finite"):
        model.fit(X, y, epochs=5, optimizer=fastbp.LBFGS())
    np.testing.assert_array_equal(model.theta, theta)
    assert model.optimizer.converged is False
