"""Optimizers: hyperparameters and flat state vectors; the updates are njit loops.

The update rules and defaults are those of ``torch.optim.SGD`` (dampening 0),
``torch.optim.Adam`` and ``torch.optim.AdamW`` (``amsgrad`` is not offered).
The compiled loops live in :mod:`fastbp.kernels.updates`; the codes and
hyperparameter indices they share with this module in :mod:`fastbp.kernels.layout`.

An optimizer keeps its state (momentum buffer or Adam moments and the step
count) between calls to ``fit``, so passing the same instance again continues
where training stopped. Used with a network of another size, or another
dtype, the state starts afresh.
"""

import numbers

import numpy as np

from .kernels import layout


def _check_number(name, value, low=0.0, low_inclusive=True, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    too_low = value < low if low_inclusive else value <= low
    if too_low or (high is not None and value >= high):
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and < {high}" if high is not None else "")
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: a flat-vector optimizer. Use :class:`SGD`, :class:`Adam` or :class:`AdamW`."""

    code = None  # the rule's code in fastbp.kernels.layout
    name = None  # the rule's name in fastbp.reference.optimizer_step

    def __init__(self):
        self.m = None
        self.v = None
        self.step = np.zeros(1, dtype=np.int64)

    def settings(self):
        """Every hyperparameter by name, with the values a rule without it implies (no momentum, Adam's betas).

        The keyword arguments of :func:`fastbp.reference.optimizer_step`.
        """
        return {"lr": self.lr, "momentum": getattr(self, "momentum", 0.0),
                "nesterov": getattr(self, "nesterov", False), "weight_decay": self.weight_decay,
                "betas": getattr(self, "betas", (0.9, 0.999)), "eps": getattr(self, "eps", 1e-8)}

    def hyperparameters(self):
        """The float64 array of hyperparameters read by the compiled update."""
        s = self.settings()
        h = np.zeros(layout.N_HYPER)
        h[layout.H_LR] = s["lr"]
        h[layout.H_WEIGHT_DECAY] = s["weight_decay"]
        h[layout.H_MOMENTUM] = s["momentum"]
        h[layout.H_NESTEROV] = float(s["nesterov"])
        h[layout.H_BETA1], h[layout.H_BETA2] = s["betas"]
        h[layout.H_EPS] = s["eps"]
        return h

    def bind(self, n_params, dtype):
        """Make sure the state vectors fit ``n_params`` parameters of ``dtype``; reset them otherwise."""
        if self.m is None or self.m.shape[0] != n_params or self.m.dtype != dtype:
            self.reset(n_params, dtype)

    def reset(self, n_params, dtype):
        """Start the state afresh for ``n_params`` parameters of ``dtype``."""
        self.m = np.zeros(n_params, dtype=dtype)
        self.v = np.zeros(n_params, dtype=dtype)
        self.step = np.zeros(1, dtype=np.int64)

    def state_copy(self):
        """A copy of the state, for :meth:`restore_state`."""
        return (None if self.m is None else self.m.copy(), None if self.v is None else self.v.copy(),
                self.step.copy())

    def restore_state(self, state):
        """Put back a state taken with :meth:`state_copy`."""
        m, v, step = state
        if m is not None:
            self.m[...] = m
            self.v[...] = v
        self.step[...] = step

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._arg_names)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD`` with ``dampening=0``.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    momentum : float, default 0
        Momentum factor ``mu`` in ``[0, 1)``.
    nesterov : bool, default False
        Nesterov momentum (needs ``momentum > 0``).
    weight_decay : float, default 0
        L2 penalty: ``weight_decay * p`` is added to the gradient.

    Examples
    --------
    >>> import fastbp
    >>> fastbp.SGD(lr=0.1, momentum=0.9, nesterov=True)
    SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.0)
    """

    code = layout.SGD
    name = "sgd"
    _arg_names = ("lr", "momentum", "nesterov", "weight_decay")

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__()
        self.lr = _check_number("lr", lr, low_inclusive=False)
        self.momentum = _check_number("momentum", momentum, high=1.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self.weight_decay = _check_number("weight_decay", weight_decay)


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (L2 ``weight_decay`` added to the gradient).

    Parameters
    ----------
    lr : float, default 1e-3
    betas : tuple of float, default (0.9, 0.999)
        Decay rates of the first and second moment estimates, each in ``[0, 1)``.
    eps : float, default 1e-8
        Added to the denominator.
    weight_decay : float, default 0
        L2 penalty added to the gradient.

    Examples
    --------
    >>> import fastbp
    >>> fastbp.Adam(lr=3e-4)
    Adam(lr=0.0003, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)
    """

    code = layout.ADAM
    name = "adam"
    _arg_names = ("lr", "betas", "eps", "weight_decay")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__()
        self.lr = _check_number("lr", lr, low_inclusive=False)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check_number("betas[0]", betas[0], high=1.0), _check_number("betas[1]", betas[1], high=1.0))
        self.eps = _check_number("eps", eps, low_inclusive=False)
        self.weight_decay = _check_number("weight_decay", weight_decay)


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: decoupled weight decay ``p *= 1 - lr * weight_decay``.

    Parameters
    ----------
    lr : float, default 1e-3
    betas : tuple of float, default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 1e-2
        Decoupled weight decay (PyTorch's default).

    Examples
    --------
    >>> import fastbp
    >>> fastbp.AdamW(weight_decay=0.05)
    AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.05)
    """

    code = layout.ADAMW
    name = "adamw"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
