"""Learning-rate schedules (fastbp/schedules.py) against hand-worked values and PyTorch's schedulers."""

import importlib.util
import math

import pytest

from fastbp import schedules

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (a test-only peer)")


def bound(schedule, lr=0.1):
    schedule.bind(lr)
    return schedule


def test_hand_worked_rates():
    assert [bound(schedules.StepLR(2, gamma=0.5)).rate(t) for t in range(5)] == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert bound(schedules.ExponentialLR(0.9)).rate(2) == pytest.approx(0.081, rel=1e-15)
    cos = bound(schedules.CosineAnnealingLR(T_max=4, eta_min=0.02))
    assert [cos.rate(t) for t in (0, 2, 4)] == pytest.approx([0.1, 0.06, 0.02], rel=1e-15)
    assert cos.rate(8) == pytest.approx(0.1, rel=1e-15)  # past T_max the cosine rises again, as in torch
    warm = bound(schedules.LinearLR(start_factor=0.25, total_iters=3))
    assert [warm.rate(t) for t in range(5)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1], rel=1e-15)
    inv = bound(schedules.InverseScaling(power_t=0.5), lr=1.0)
    assert [inv.rate(t) for t in range(4)] == pytest.approx([1.0, 1 / math.sqrt(2), 1 / math.sqrt(3), 0.5])


def test_rates_advance_the_count_and_bind_keeps_the_first_base():
    s = bound(schedules.StepLR(3, gamma=0.1))
    assert list(s.rates(4)) == pytest.approx([0.1, 0.1, 0.1, 0.01])
    assert s.last_epoch == 4
    s.bind(5.0)  # a second fit with a changed optimizer lr: the base stays, as torch's initial_lr
    assert s.current() == pytest.approx(0.01)
    s.step()
    assert s.last_epoch == 5


def test_plateau_reduces_after_patience_and_cools_down():
    s = bound(schedules.ReduceLROnPlateau(patience=1, factor=0.5, cooldown=1, threshold=0.0), lr=1.0)
    rates = []
    for loss in [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0]:
        s.step(loss)
        rates.append(s.current())
    # bad epochs: 4.0 (1), 4.0 (2 > patience: halve, cooldown 1), 4.0 (cooldown), 4.0 (1), 4.0 (2: halve) ...
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]


@pytest.mark.parametrize("make, message", [
    (lambda: schedules.StepLR(0), "step_size must be an int >= 1, got 0"),
    (lambda: schedules.ExponentialLR(-1.0), "gamma must be > 0.0"),
    (lambda: schedules.CosineAnnealingLR(10, interval="batch"), "interval must be one of"),
    (lambda: schedules.LinearLR(start_factor=0.0), "start_factor must be > 0.0"),
    (lambda: schedules.ReduceLROnPlateau(mode="lowest"), "mode must be 'min' or 'max'"),
    (lambda: schedules.ReduceLROnPlateau(factor=1.0), "factor must be in (0, 1)"),
])
def test_bad_arguments_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_a_schedule_needs_a_base_rate_and_plateau_needs_a_figure():
    with pytest.raises(RuntimeError, match="bind"):
        schedules.StepLR(2).rate(0)
    with pytest.raises(ValueError, match="needs the monitored figure"):
        bound(schedules.ReduceLROnPlateau()).step()
    with pytest.raises(ValueError, match="no per-step rates"):
        bound(schedules.ReduceLROnPlateau()).rates(3)


def _torch_rates(make_scheduler, epochs, metrics=None, lr=0.1):
    import torch

    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([param], lr=lr)
    scheduler = make_scheduler(torch.optim.lr_scheduler, opt)
    rates = []
    for e in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step(*([] if metrics is None else [metrics[e]]))
    return rates


@needs_torch
@pytest.mark.parametrize("ours, theirs", [
    (lambda: schedules.StepLR(3, gamma=0.3), lambda m, o: m.StepLR(o, 3, gamma=0.3)),
    (lambda: schedules.ExponentialLR(0.93), lambda m, o: m.ExponentialLR(o, 0.93)),
    (lambda: schedules.CosineAnnealingLR(7, eta_min=0.001), lambda m, o: m.CosineAnnealingLR(o, 7, eta_min=0.001)),
    (lambda: schedules.LinearLR(), lambda m, o: m.LinearLR(o)),
    (lambda: schedules.LinearLR(0.5, 0.1, total_iters=4), lambda m, o: m.LinearLR(o, 0.5, 0.1, total_iters=4)),
], ids=["step", "exponential", "cosine", "linear_warmup", "linear_decay"])
def test_rates_equal_torch(ours, theirs):
    s = bound(ours())
    expected = _torch_rates(theirs, 20)
    got = []
    for _ in range(20):
        got.append(s.current())
        s.step()
    assert got == pytest.approx(expected, rel=1e-12)


@needs_torch
@pytest.mark.parametrize("kwargs", [dict(), dict(mode="max", patience=2, cooldown=2, threshold_mode="abs",
                                                 threshold=0.05, factor=0.3, min_lr=0.004)])
def test_plateau_equals_torch(kwargs):
    metrics = [3.0, 2.5, 2.5, 2.6, 2.4, 2.4, 2.4, 2.4, 2.5, 2.3] * 3 + [2.3] * 15
    if kwargs.get("mode") == "max":
        metrics = [-m for m in metrics]
    expected = _torch_rates(lambda m, o: m.ReduceLROnPlateau(o, **kwargs), len(metrics), metrics)
    s = bound(schedules.ReduceLROnPlateau(**kwargs))
    got = []
    for value in metrics:
        got.append(s.current())
        s.step(value)
    assert got == pytest.approx(expected, rel=1e-12)
