"""Training control in MLP.fit: schedules, gradient clipping, dropout, summary and the epoch's calls.

Schedules and clipping are checked against PyTorch's definitions (float64
trajectories) where torch is installed as a test-only peer, and against the
NumPy reference backend everywhere; dropout masks must be equal on every CPU
backend and have no effect at inference.
"""

import importlib.util

import numpy as np
import pytest

import fastbp
from fastbp import schedules, training

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (a test-only peer)")
BACKENDS = ["numpy", "cpu", "parallel"]


def _data(n=240, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64) + (X[:, 3] > 1)


def _model(**kwargs):
    return fastbp.MLP([5, 9, 7, 3], activation="tanh", loss="softmax_cross_entropy", dtype=np.float64, seed=4,
                      **kwargs)


def _torch_trajectory(model, X, y, epochs, batch, lr, momentum, make_scheduler=None, clip=None, per_step=False):
    """The same training in PyTorch: nn.Sequential from the model's weights, SGD, a scheduler, clipping."""
    import torch

    Ws, bs = model.get_weights()
    layers = []
    for l, (W, b) in enumerate(zip(Ws, bs)):
        lin = torch.nn.Linear(*W.shape, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(lin)
        if l < len(Ws) - 1:
            layers.append(torch.nn.Tanh())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    scheduler = make_scheduler(torch.optim.lr_scheduler, opt) if make_scheduler else None
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        for start in range(0, len(X), batch):
            opt.zero_grad()
            loss_fn(net(Xt[start:start + batch]), yt[start:start + batch]).backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            opt.step()
            if scheduler is not None and per_step:
                scheduler.step()
        if scheduler is not None and not per_step:
            scheduler.step()
    lins = [m for m in net if isinstance(m, torch.nn.Linear)]
    return np.concatenate([np.concatenate([m.weight.detach().numpy().T.ravel(), m.bias.detach().numpy()])
                           for m in lins])


SCHEDULES = [
    (lambda: schedules.StepLR(2, gamma=0.5), lambda m, o: m.StepLR(o, 2, gamma=0.5), False),
    (lambda: schedules.CosineAnnealingLR(20, interval="step"), lambda m, o: m.CosineAnnealingLR(o, 20), True),
    (lambda: schedules.LinearLR(0.2, total_iters=3), lambda m, o: m.LinearLR(o, 0.2, total_iters=3), False),
]


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ours, theirs, per_step", SCHEDULES, ids=["step_lr", "cosine_per_step", "linear_warmup"])
def test_schedules_follow_torch(backend, ours, theirs, per_step):
    X, y = _data()
    model = _model()
    expected = _torch_trajectory(model, X, y, 5, 32, 0.2, 0.9, theirs, per_step=per_step)
    model.fit(X, y, epochs=5, batch_size=32, optimizer=fastbp.SGD(lr=0.2, momentum=0.9), shuffle=False,
              backend=backend, lr_schedule=ours())
    np.testing.assert_allclose(model.theta, expected, rtol=1e-9, atol=1e-11)


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
def test_clipping_follows_torch(backend):
    X, y = _data()
    model = _model()
    expected = _torch_trajectory(model, X, y, 3, 16, 0.5, 0.0, clip=0.05)
    model.fit(X, y, epochs=3, batch_size=16, optimizer=fastbp.SGD(lr=0.5), shuffle=False, backend=backend,
              clip_grad_norm=0.05)
    np.testing.assert_allclose(model.theta, expected, rtol=1e-9, atol=1e-11)


def test_clipping_by_hand_on_one_step():
    """One SGD step with clipping moves the parameters by exactly lr * clip along the gradient, when it clips."""
    X, y = _data(n=32)
    model = _model()
    _, gWs, gbs = model.loss_and_grad(X, y)
    g = np.concatenate([a.ravel() for pair in zip(gWs, gbs) for a in pair])
    before = model.theta.copy()
    clip = 0.1 * np.linalg.norm(g)
    model.fit(X, y, epochs=1, batch_size=32, optimizer=fastbp.SGD(lr=0.3), shuffle=False, backend="cpu",
              clip_grad_norm=clip)
    np.testing.assert_allclose(before - model.theta, 0.3 * g * clip / (np.linalg.norm(g) + 1e-6), rtol=1e-10)


@pytest.mark.parametrize("make", [lambda: schedules.StepLR(2, gamma=0.1),
                                  lambda: schedules.ExponentialLR(0.7, interval="step")], ids=["epoch", "step"])
def test_schedules_give_every_backend_the_same_trajectory_and_record_the_rates(make):
    X, y = _data()
    results = {}
    for backend in BACKENDS:
        model = _model()
        history = model.fit(X, y, epochs=4, batch_size=40, optimizer=fastbp.Adam(lr=0.05), backend=backend,
                            lr_schedule=make())
        results[backend] = model.theta
        assert len(history["lr"]) == 4 and history["lr"][0] == pytest.approx(0.05)
        assert history["lr"][-1] < 0.01
    np.testing.assert_allclose(results["cpu"], results["numpy"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results["parallel"], results["cpu"], rtol=1e-10, atol=1e-12)


def test_plateau_lowers_the_rate_when_the_loss_stalls():
    X, y = _data()
    model = _model()
    plateau = schedules.ReduceLROnPlateau(patience=0, factor=0.5, threshold=10.0)  # every epoch counts as stalled
    history = model.fit(X, y, epochs=4, optimizer=fastbp.SGD(lr=0.1), lr_schedule=plateau)
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    assert model.optimizer.lr == pytest.approx(0.00625)


@pytest.mark.parametrize("p", [0.2, [0.5, 0.0]])
def test_dropout_masks_are_equal_on_every_backend_and_reproducible(p):
    X, y = _data()
    thetas = []
    for backend in BACKENDS + ["cpu"]:
        model = _model(dropout=p)
        model.fit(X, y, epochs=3, batch_size=25, optimizer=fastbp.SGD(lr=0.2, momentum=0.5), backend=backend)
        thetas.append(model.theta)
    for theta in thetas[1:]:
        np.testing.assert_allclose(theta, thetas[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(thetas[1], thetas[3])  # the same seed, the same masks, bit for bit
    plain = _model()
    plain.fit(X, y, epochs=3, batch_size=25, optimizer=fastbp.SGD(lr=0.2, momentum=0.5), backend="cpu")
    assert np.max(np.abs(plain.theta - thetas[1])) > 1e-3  # dropout did change the training


def test_dropout_has_no_effect_at_inference_and_zero_dropout_none_in_training():
    X, y = _data()
    dropped, plain = _model(dropout=0.5), _model()
    dropped.theta[...] = plain.theta
    np.testing.assert_array_equal(dropped.predict(X), plain.predict(X))
    assert dropped.evaluate(X, y) == plain.evaluate(X, y)
    assert dropped.loss_and_grad(X, y)[0] == plain.loss_and_grad(X, y)[0]
    zero = _model(dropout=0.0)
    zero.fit(X, y, epochs=2, backend="cpu")
    plain.fit(X, y, epochs=2, backend="cpu")
    np.testing.assert_array_equal(zero.theta, plain.theta)


def test_dropout_gradient_is_that_of_the_masked_network():
    """A minibatch step with dropout equals the reference's step on the network with those masks applied."""
    from fastbp import reference

    X, y = _data(n=16)
    model = _model(dropout=[0.3, 0.6])
    Ws, bs = model.get_weights()
    T = np.eye(3)[y]
    masks = [reference.dropout_mask(4, 1, 16, l, model.layers[l + 1], p, np.dtype(np.float64))
             for l, p in enumerate(model.dropout)]
    Zs, As = reference.forward(X, Ws, bs, model.activations, masks)
    gWs, gbs = reference.backward(X, T, Ws, Zs, As, model.activations, "softmax_cross_entropy", masks=masks)
    expected = np.concatenate([np.concatenate([W.ravel() - 0.1 * gW.ravel(), b - 0.1 * gb])
                               for W, b, gW, gb in zip(Ws, bs, gWs, gbs)])
    model.fit(X, y, epochs=1, batch_size=16, optimizer=fastbp.SGD(lr=0.1), shuffle=False, backend="cpu")
    np.testing.assert_allclose(model.theta, expected, rtol=1e-12, atol=1e-14)


def test_dropout_survives_save_and_load(tmp_path):
    model = _model(dropout=[0.25, 0.5])
    model.save(tmp_path / "m.npz")
    assert fastbp.MLP.load(tmp_path / "m.npz").dropout == [0.25, 0.5]


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(dropout=1.0), ValueError, r"dropout probabilities must lie in \[0, 1\)"),
    (dict(dropout=[0.1]), ValueError, "one probability per hidden layer"),
    (dict(dropout="half"), TypeError, "dropout must be a probability"),
])
def test_bad_dropout_is_refused(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        _model(**kwargs)


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(clip_grad_norm=0.0), ValueError, "clip_grad_norm must be a finite number > 0"),
    (dict(clip_grad_norm=float("nan")), ValueError, "clip_grad_norm must be"),
    (dict(lr_schedule="cosine"), TypeError, "lr_schedule must be a schedule"),
])
def test_bad_fit_options_are_refused_before_training(kwargs, exc, message):
    X, y = _data()
    model = _model()
    before = model.theta.copy()
    with pytest.raises(exc, match=message):
        model.fit(X, y, **kwargs)
    np.testing.assert_array_equal(model.theta, before)


def test_an_epoch_runs_as_several_calls_with_the_same_result(monkeypatch):
    """Calls of a few minibatches (a long epoch's) give what one call gives, bit for bit."""
    X, y = _data(n=1000)
    one, many = _model(), _model()
    one.fit(X, y, epochs=2, batch_size=10, backend="cpu")
    calls = []
    real = training.CompiledTrainer.run_batches

    def counted(self, *args):
        calls.append(args[5] - args[4])
        return real(self, *args)

    monkeypatch.setattr(training, "CALL_SECONDS", 1e-9)  # every call runs one minibatch
    monkeypatch.setattr(training.CompiledTrainer, "run_batches", counted)
    history = many.fit(X, y, epochs=2, batch_size=10, backend="cpu")
    assert len(calls) > 150 and max(calls) <= 4
    np.testing.assert_array_equal(many.theta, one.theta)
    assert history["loss"] == one.history["loss"]


def test_summary_lists_the_layers():
    text = _model(dropout=[0.25, 0.0]).summary(print_fn=None)
    lines = text.splitlines()
    assert lines[0] == "MLP, loss softmax_cross_entropy, float64"
    assert any(line.split()[:6] == ["1", "5", "9", "tanh", "0.25", "54"] for line in lines)
    assert lines[-1] == "total parameters: 148"  # 5*9+9 + 9*7+7 + 7*3+3


def test_auto_keeps_host_only_features_on_the_cpu_backends(monkeypatch):
    """With a GPU present and a large minibatch, "auto" does not choose cuda for what cuda cannot do."""
    from fastbp import _settings

    monkeypatch.setattr(training.cuda, "real_device_available", lambda: True)
    monkeypatch.setattr(_settings, "CUDA_MIN_WORK", 1)
    X, y = _data()
    assert training.choose_backend("auto", [5, 9, 7, 3], 32) == "cuda"
    for kwargs, fit_kwargs in [(dict(dropout=0.2), {}), ({}, dict(clip_grad_norm=1.0)),
                               ({}, dict(lr_schedule=schedules.StepLR(1, interval="step")))]:
        history = _model(**kwargs).fit(X, y, epochs=1, **fit_kwargs)
        assert history["backend"] in ("cpu", "parallel")


def test_a_diverged_epoch_takes_the_schedule_and_the_rate_back_too():
    X, y = _data()
    model = fastbp.MLP([5, 9, 1], activation="relu", loss="mse", dtype=np.float64, seed=0)
    schedule = schedules.ExponentialLR(0.99, interval="step")
    opt = fastbp.SGD(lr=1e3)  # diverges in the first epoch
    with pytest.raises(fastbp.DivergedError):
        model.fit(X, y, epochs=3, optimizer=opt, lr_schedule=schedule)
    assert schedule.last_epoch == 0 and opt.lr == 1e3 and opt.step[0] == 0


def test_plateau_watching_a_figure_the_epochs_lack_is_refused_before_training():
    X, y = _data()
    model = _model()
    before = model.theta.copy()
    with pytest.raises(ValueError, match="monitors 'val_loss', which the epochs will not report"):
        model.fit(X, y, lr_schedule=schedules.ReduceLROnPlateau(monitor="val_loss"))
    np.testing.assert_array_equal(model.theta, before)
