"""Optimizers: hyperparameters and flat state vectors; the updates are njit loops.

The update rules and defaults are those of ``torch.optim.SGD`` (dampening 0),
``torch.optim.Adam`` and ``torch.optim.AdamW`` (``amsgrad`` is not offered).
The compiled loops live in :mod:`fastbp.kernels.updates`; the codes and
hyperparameter indices they share with this module in :mod:`fastbp.kernels.layout`.

An optimizer keeps its state (momentum buffer or Adam moments and the step
count) between calls to ``fit``, so passing the same instance again continues
where training stopped. Used with a network of another size, or another
dtype, the state it made itself starts afresh; state assigned by hand
(``opt.m = ...``, ``opt.v = ...``, ``opt.step = ...``, e.g. to restore it from a
checkpoint) must fit the model, or ``fit`` raises an error before anything
runs (see :meth:`Optimizer.bind`).
"""

import numbers

import numpy as np

from ._validation import as_bool
from .kernels import layout


def _check_number(name, value, low=0.0, low_inclusive=True, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    too_low = value < low if low_inclusive else value <= low
    if too_low or (high is not None and value >= high):
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and < {high}" if high is not None else "")
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def _fits(a, n_params, dtype):
    return isinstance(a, np.ndarray) and a.shape == (n_params,) and a.dtype == dtype


def _check_state_array(label, a, shape, dtype, what):
    """A ``TypeError`` or ``ValueError`` unless ``a`` is a C-contiguous, writeable ``dtype`` array of ``shape``."""
    expected = f"a C-contiguous {dtype.name} array of shape {shape} ({what})"
    if not isinstance(a, np.ndarray) or np.ma.isMaskedArray(a):
        got = "None" if a is None else f"{type(a).__name__} {a!r:.60}"
        raise TypeError(f"{label} must be {expected}, got {got}")
    if a.shape != shape:
        raise ValueError(f"{label} must be {expected}, got shape {a.shape}")
    if a.dtype != dtype:
        got = a.dtype.name if a.dtype.isnative else f"{a.dtype.str} (non-native byte order)"
        raise ValueError(f"{label} must be {expected}, got dtype {got}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{label} must be {expected}, got a non-contiguous array (use np.ascontiguousarray)")
    if not a.flags.writeable:
        raise ValueError(f"{label} must be {expected}, got a read-only array (the update writes into it)")


class Optimizer:
    """Base class: a flat-vector optimizer. Use :class:`SGD`, :class:`Adam` or :class:`AdamW`.

    Attributes
    ----------
    m, v : ndarray, shape (n_params,), or None
        The state vectors in the model's dtype (SGD's momentum buffer in
        ``m``; Adam's first and second moments), None before the first ``fit``.
    step : ndarray of int64, shape (1,)
        The number of steps taken.

    The state continues from one ``fit`` to the next. It may be assigned, e.g.
    to restore a checkpoint, when it fits the model: :meth:`bind`, called by
    ``fit`` before any compiled code runs, refuses state assigned by hand
    that does not fit, and starts afresh state that the optimizer made itself
    for a network of another size or dtype.
    """

    code = None  # the rule's code in fastbp.kernels.layout
    name = None  # the rule's name in fastbp.reference.optimizer_step

    def __init__(self):
        self.m = None
        self.v = None
        self.step = np.zeros(1, dtype=np.int64)
        self._own = (None, None, self.step)  # the state arrays this optimizer made or accepted (see bind)

    def settings(self):
        """Every hyperparameter by name, with the values a rule without it implies (no momentum, Adam's betas).

        The keyword arguments of :func:`fastbp.reference.optimizer_step`.
        """
        return {"lr": self.lr, "momentum": getattr(self, "momentum", 0.0),
                "nesterov": getattr(self, "nesterov", False), "weight_decay": self.weight_decay,
                "betas": getattr(self, "betas", (0.9, 0.999)), "eps": getattr(self, "eps", 1e-8),
                "eps_hat": getattr(self, "eps_hat", False)}

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
        h[layout.H_EPS_HAT] = float(s["eps_hat"])
        return h

    def bind(self, n_params, dtype):
        """Check the optimizer against a model of ``n_params`` parameters of ``dtype`` before any compiled call.

        The state the compiled update reads and writes must be ``m`` and ``v``
        of shape ``(n_params,)`` and the model's dtype, and ``step`` of int64
        and shape ``(1,)``, each a C-contiguous, writeable numpy array: a
        wrong size would make the compiled code read and write out of bounds.

        - No state yet (``m`` is None): it is made, all zeros.
        - State this optimizer made itself (or accepted in an earlier ``bind``)
          that fits another network size or dtype, as after training another
          model: it starts afresh, as it always has.
        - Anything else that does not fit, in particular arrays assigned by
          hand (``opt.v = ...``) of the wrong shape, dtype or layout: an error
          naming the array, what was expected and what came. Nothing is reset.

        Hyperparameters that round to 0 in ``dtype`` (``eps=1e-46`` in float32)
        are refused too.

        Parameters
        ----------
        n_params : int
        dtype : numpy.float32 or numpy.float64

        Raises
        ------
        TypeError
            When a state attribute is not a numpy array.
        ValueError
            When a state array does not fit, or a hyperparameter rounds to 0.
        """
        dtype = np.dtype(dtype)
        self._check_hyperparameters(dtype)
        own_m, own_v, _ = getattr(self, "_own", (None, None, None))
        _check_state_array(self._label("step"), self.step, (1,), np.dtype(np.int64), "the step count")
        if int(self.step[0]) < 0:
            raise ValueError(f"{self._label('step')} must count steps from 0, got {int(self.step[0])}")
        if self.m is None and (self.v is None or self.v is own_v):
            self.reset(n_params, dtype)
            return
        if self.m is own_m and self.v is own_v and not _fits(self.m, n_params, dtype):
            self.reset(n_params, dtype)  # made for another network: start afresh
            return
        what = f"{n_params} parameters of the model"
        _check_state_array(self._label("m"), self.m, (n_params,), dtype, what)
        _check_state_array(self._label("v"), self.v, (n_params,), dtype, what)
        self._own = (self.m, self.v, self.step)

    def _label(self, name):
        return f"{type(self).__name__}.{name}"

    def _check_hyperparameters(self, dtype):
        """Refuse a learning rate or ``eps`` that is 0 once converted to ``dtype`` (the update computes in it)."""
        for name, effect in (("lr", "the weights would never change"),
                             ("eps", "the update would divide by 0 where a gradient is 0")):
            value = getattr(self, name, None)
            with np.errstate(over="ignore", under="ignore"):
                rounded = None if value is None else dtype.type(value)
            if value is not None and value > 0 and rounded == 0:
                raise ValueError(f"{type(self).__name__}({name}={value!r}) rounds to 0 in {dtype.name} (its "
                                 f"smallest positive number is {np.finfo(dtype).smallest_subnormal:.3g}), so "
                                 f"{effect}; use a larger {name} or dtype=np.float64")

    def reset(self, n_params, dtype):
        """Start the state afresh for ``n_params`` parameters of ``dtype``."""
        self.m = np.zeros(n_params, dtype=dtype)
        self.v = np.zeros(n_params, dtype=dtype)
        self.step = np.zeros(1, dtype=np.int64)
        self._own = (self.m, self.v, self.step)

    def nonfinite_state(self):
        """Names of the state vectors that hold NaN or Inf.

        ``fit`` checks this after every epoch: Adam's ``v`` (a running mean of
        squared gradients) overflows where the gradients pass about 6e20
        in float32, and a weight whose ``v`` is Inf never moves again.

        Returns
        -------
        list of str
            ``[]`` when the state is finite (or not made yet), else some of
            ``"m"`` and ``"v"``.
        """
        return [name for name in ("m", "v")
                if getattr(self, name) is not None and not np.all(np.isfinite(getattr(self, name)))]

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
    eps_hat : bool, default False
        False: PyTorch's ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
        True: ``eps`` is added before the bias correction, as in Kingma and
        Ba's efficient form ``p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``,
        which scikit-learn and Keras use. The two differ only where
        ``sqrt(v)`` is near ``eps``.

    Examples
    --------
    >>> import fastbp
    >>> fastbp.Adam(lr=3e-4)
    Adam(lr=0.0003, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, eps_hat=False)
    """

    code = layout.ADAM
    name = "adam"
    _arg_names = ("lr", "betas", "eps", "weight_decay", "eps_hat")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, eps_hat=False):
        super().__init__()
        self.eps_hat = as_bool("eps_hat", eps_hat)
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
    eps_hat : bool, default False
        As for :class:`Adam`.

    Examples
    --------
    >>> import fastbp
    >>> fastbp.AdamW(weight_decay=0.05)
    AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.05, eps_hat=False)
    """

    code = layout.ADAMW
    name = "adamw"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, eps_hat=False):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, eps_hat=eps_hat)
