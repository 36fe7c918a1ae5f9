"""Learning-rate schedules, as ``torch.optim.lr_scheduler`` defines them.

Pass one to :meth:`fastbp.MLP.fit` as ``lr_schedule=``. A schedule scales the
optimizer's learning rate (its ``lr`` when the schedule first sees it, the
*base* rate); it is stepped once per epoch, as a PyTorch loop calls
``scheduler.step()`` after each epoch, or once per optimizer step when made
with ``interval="step"`` (Lightning's word), e.g.
``CosineAnnealingLR(T_max=1000, interval="step")``. Like a PyTorch scheduler,
a schedule keeps its count (``last_epoch``, the intervals stepped so far)
between calls to ``fit``, so passing the same one again continues it.

The rates are computed on the host in float64, from the closed forms of
PyTorch's definitions; with ``interval="step"`` the host fills a vector of
per-step rates for each compiled call, so no schedule code is compiled.

Examples
--------
>>> from fastbp.schedules import StepLR
>>> s = StepLR(step_size=2, gamma=0.5)
>>> s.bind(0.1)
>>> [s.rate(t) for t in range(5)]
[0.1, 0.1, 0.05, 0.05, 0.025]
"""

import math
import numbers

import numpy as np

INTERVALS = ("epoch", "step")


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _real(name, value, low=None, high=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
    return float(value)


class Schedule:
    """Base class of the schedules: a rate for each count of intervals stepped.

    Parameters
    ----------
    interval : {"epoch", "step"}, default "epoch"
        Step the schedule once per epoch, or once per optimizer step.

    Attributes
    ----------
    base_lr : float or None
        The optimizer's learning rate when the schedule was first bound.
    last_epoch : int
        Intervals stepped so far (PyTorch's name, whatever the interval).
    """

    def __init__(self, interval="epoch"):
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {list(INTERVALS)}, got {interval!r}")
        self.interval = interval
        self.base_lr = None
        self.last_epoch = 0

    def bind(self, base_lr):
        """Take the optimizer's learning rate as the base rate, the first time only (as PyTorch's ``initial_lr``)."""
        if self.base_lr is None:
            self.base_lr = _real("the optimizer's lr", base_lr, low=0.0, low_open=True)

    def rate(self, t):
        """The learning rate after ``t`` intervals (``t = 0``: the first epoch or step)."""
        raise NotImplementedError

    def current(self):
        """The learning rate of the next interval."""
        return self.rate(self.last_epoch)

    def rates(self, count):
        """The next ``count`` rates as a float64 vector; the schedule is stepped ``count`` times."""
        out = np.array([self.rate(self.last_epoch + i) for i in range(count)], dtype=np.float64)
        self.last_epoch += count
        return out

    def step(self, metric=None):
        """Count one interval (``metric`` is for :class:`ReduceLROnPlateau`; the others ignore it)."""
        self.last_epoch += 1

    def _check_bound(self):
        if self.base_lr is None:
            raise RuntimeError(f"{type(self).__name__} has no base rate yet: bind(lr) first (fit does)")

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._arg_names + ("interval",))
        return f"{type(self).__name__}({args})"


class StepLR(Schedule):
    """``lr = base * gamma ** (t // step_size)``, as ``torch.optim.lr_scheduler.StepLR``.

    Parameters
    ----------
    step_size : int
        Intervals between decays.
    gamma : float, default 0.1
        Multiplicative decay.
    interval : {"epoch", "step"}, default "epoch"
    """

    _arg_names = ("step_size", "gamma")

    def __init__(self, step_size, gamma=0.1, interval="epoch"):
        super().__init__(interval)
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = _real("gamma", gamma, low=0.0, low_open=True)

    def rate(self, t):
        self._check_bound()
        return self.base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(Schedule):
    """``lr = base * gamma ** t``, as ``torch.optim.lr_scheduler.ExponentialLR``.

    Parameters
    ----------
    gamma : float
        Multiplicative decay per interval.
    interval : {"epoch", "step"}, default "epoch"
    """

    _arg_names = ("gamma",)

    def __init__(self, gamma, interval="epoch"):
        super().__init__(interval)
        self.gamma = _real("gamma", gamma, low=0.0, low_open=True)

    def rate(self, t):
        self._check_bound()
        return self.base_lr * self.gamma ** t


class CosineAnnealingLR(Schedule):
    """Cosine annealing, as ``torch.optim.lr_scheduler.CosineAnnealingLR``.

    ``lr = eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2``. Beyond
    ``T_max`` the rate rises again along the same cosine, as PyTorch's does.

    Parameters
    ----------
    T_max : int
        Intervals of one half period.
    eta_min : float, default 0
        The lowest rate.
    interval : {"epoch", "step"}, default "epoch"
    """

    _arg_names = ("T_max", "eta_min")

    def __init__(self, T_max, eta_min=0.0, interval="epoch"):
        super().__init__(interval)
        self.T_max = _positive_int("T_max", T_max)
        self.eta_min = _real("eta_min", eta_min, low=0.0)

    def rate(self, t):
        self._check_bound()
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearLR(Schedule):
    """A linear ramp of the factor, as ``torch.optim.lr_scheduler.LinearLR`` (a warm-up with its defaults).

    ``lr = base * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)``.

    Parameters
    ----------
    start_factor : float, default 1/3
        The factor of the first interval, in ``(0, 1]``.
    end_factor : float, default 1.0
        The factor from ``total_iters`` on, in ``[0, 1]``.
    total_iters : int, default 5
    interval : {"epoch", "step"}, default "epoch"
    """

    _arg_names = ("start_factor", "end_factor", "total_iters")

    def __init__(self, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, interval="epoch"):
        super().__init__(interval)
        self.start_factor = _real("start_factor", start_factor, low=0.0, high=1.0, low_open=True)
        self.end_factor = _real("end_factor", end_factor, low=0.0, high=1.0)
        self.total_iters = _positive_int("total_iters", total_iters)

    def rate(self, t):
        self._check_bound()
        done = min(t, self.total_iters)
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * done / self.total_iters)


class InverseScaling(Schedule):
    """scikit-learn's ``learning_rate="invscaling"``: ``lr = base / (t + 1) ** power_t``.

    Parameters
    ----------
    power_t : float, default 0.5
        The exponent.
    interval : {"epoch", "step"}, default "epoch"
    """

    _arg_names = ("power_t",)

    def __init__(self, power_t=0.5, interval="epoch"):
        super().__init__(interval)
        self.power_t = _real("power_t", power_t, low=0.0)

    def rate(self, t):
        self._check_bound()
        return self.base_lr / (t + 1) ** self.power_t


class ReduceLROnPlateau(Schedule):
    """Divide the rate when a monitored figure stops improving, as ``torch.optim.lr_scheduler.ReduceLROnPlateau``.

    Stepped once per epoch with the epoch's ``monitor`` figure.

    Parameters
    ----------
    mode : {"min", "max"}, default "min"
        Whether the figure should fall (a loss) or rise (an accuracy).
    factor : float, default 0.1
        ``new_lr = max(lr * factor, min_lr)``, in ``(0, 1)``.
    patience : int, default 10
        Epochs without improvement tolerated before a reduction.
    threshold : float, default 1e-4
        The least change that counts as an improvement.
    threshold_mode : {"rel", "abs"}, default "rel"
    cooldown : int, default 0
        Epochs after a reduction before counting resumes.
    min_lr : float, default 0
    eps : float, default 1e-8
        A reduction smaller than this is not made.
    monitor : str, optional
        The key of the epoch's figures to watch; by default ``"val_loss"``
        with validation data, else ``"loss"``.
    """

    _arg_names = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps",
                  "monitor")

    def __init__(self, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel", cooldown=0,
                 min_lr=0.0, eps=1e-8, monitor=None):
        super().__init__("epoch")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if not 0.0 < _real("factor", factor) < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 0:
            raise ValueError(f"patience must be an int >= 0, got {patience!r}")
        if isinstance(cooldown, bool) or not isinstance(cooldown, numbers.Integral) or cooldown < 0:
            raise ValueError(f"cooldown must be an int >= 0, got {cooldown!r}")
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(f"monitor must be the name of an epoch figure (e.g. 'val_loss'), got {monitor!r}")
        self.mode, self.threshold_mode, self.monitor = mode, threshold_mode, monitor
        self.factor = float(factor)
        self.patience, self.cooldown = int(patience), int(cooldown)
        self.threshold = _real("threshold", threshold, low=0.0)
        self.min_lr = _real("min_lr", min_lr, low=0.0)
        self.eps = _real("eps", eps, low=0.0)
        self.lr = None
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def bind(self, base_lr):
        super().bind(base_lr)
        if self.lr is None:
            self.lr = self.base_lr

    def rate(self, t):
        """The current rate (it depends on the figures seen, not on ``t``)."""
        self._check_bound()
        return self.lr

    def rates(self, count):
        raise ValueError("ReduceLROnPlateau is stepped once per epoch with a figure; it has no per-step rates")

    def _is_better(self, value):
        if self.mode == "min":
            bound = self.best * (1 - self.threshold) if self.threshold_mode == "rel" else self.best - self.threshold
            return value < bound
        bound = self.best * (self.threshold + 1) if self.threshold_mode == "rel" else self.best + self.threshold
        return value > bound

    def step(self, metric=None):
        """Count one epoch with its monitored figure ``metric``, reducing the rate when it has stalled."""
        if metric is None:
            raise ValueError("ReduceLROnPlateau.step needs the monitored figure of the epoch")
        self._check_bound()
        value = float(metric)
        self.last_epoch += 1
        if self._is_better(value):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self.eps:
                self.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def monitored(self, logs):
        """The figure of ``logs`` this schedule watches."""
        key = self.monitor or ("val_loss" if "val_loss" in logs else "loss")
        if key not in logs:
            raise ValueError(f"ReduceLROnPlateau monitors {key!r}, which the epoch does not report "
                             f"(it reports {sorted(logs)})")
        return logs[key]
