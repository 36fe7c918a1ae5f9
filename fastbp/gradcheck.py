"""Central finite differences against :meth:`fastbp.MLP.loss_and_grad`."""

import math
import numbers

import numpy as np

from ._validation import as_positive_int
from .model import MLP
from .reference import l2_penalty, loss_value, sample_weights


def gradcheck(model, X, y, eps=1e-5, max_params=None, seed=0, sample_weight=None, l2=0.0):
    """Maximum relative error between ``loss_and_grad`` and central differences.

    The check runs in float64 on a copy of the model (a float32 model is
    promoted), so it tests the gradient's math rather than float32 rounding;
    the model itself is not changed. Each checked parameter ``p`` gets

    ``numeric = (J(p + eps) - J(p - eps)) / (2 eps)``,
    ``error = |analytic - numeric| / max(|analytic|, |numeric|, floor)``,

    where ``floor = 1e-3 * max|analytic|`` (at least 1e-12): the round-off of
    the difference quotient, about ``1e-16 / eps`` absolute, would otherwise
    dominate components thousands of times smaller than the largest one.

    Keep inputs away from the kinks of relu-type activations, where a
    difference quotient straddling the kink is not the derivative.

    Parameters
    ----------
    model : MLP
    X, y : array_like
        A (small) batch, in the form :meth:`MLP.fit` takes.
    eps : float, default 1e-5
        Step of the central difference, a finite number > 0: truncation error
        grows as ``eps**2``, round-off as ``1/eps``; 1e-5 balances the two in
        float64.
    max_params : int >= 1, optional
        Check a random subset of this many parameters (all by default).
    seed : int >= 0 or None, default 0
        Seeds the choice of the subset.
    sample_weight, l2 : optional
        Check the gradient of the weighted, penalised loss that
        :meth:`MLP.fit` minimises with these arguments.

    Returns
    -------
    float
        The largest relative error found; below about 1e-6 means the
        gradient is right, a wrong gradient gives 1e-2 or more.

    Raises
    ------
    TypeError, ValueError
        When ``model`` is not an :class:`MLP` or ``eps``, ``max_params`` or
        ``seed`` is not as described (a NaN ``eps`` or ``max_params=0`` would
        otherwise check nothing and report 0.0, "correct").

    Examples
    --------
    >>> import numpy as np, fastbp
    >>> rng = np.random.default_rng(0)
    >>> model = fastbp.MLP([3, 5, 2], activation="tanh", loss="softmax_cross_entropy", seed=1)
    >>> X = rng.standard_normal((4, 3)); y = np.array([0, 1, 1, 0])
    >>> fastbp.gradcheck(model, X, y) < 1e-6
    True
    """
    _check_arguments(model, eps, max_params, seed)
    probe = MLP(model.layers, activation=model.activations, loss=model.loss, dtype=np.float64)
    probe.theta[...] = model.theta
    X, T = probe.network.check_data(X, y)
    _, gWs, gbs = probe.loss_and_grad(X, T, sample_weight=sample_weight, l2=l2)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    _, weight_sum = sample_weights(X.shape[0], sw)

    def objective():
        return (loss_value(probe.loss, probe.decision_function(X), T, sw)
                + l2_penalty(probe.get_weights()[0], l2, weight_sum))

    analytic = np.empty(probe.n_params)
    for view, g in zip(sum(probe.network.unflatten(analytic), []), gWs + gbs):
        view[...] = g
    indices = np.arange(probe.n_params)
    if max_params is not None and max_params < probe.n_params:
        indices = np.sort(np.random.default_rng(seed).choice(probe.n_params, size=max_params, replace=False))
    floor = max(1e-3 * float(np.max(np.abs(analytic))), 1e-12)
    worst = 0.0
    theta = probe.theta
    for i in indices:
        saved = theta[i]
        theta[i] = saved + eps
        up = objective()
        theta[i] = saved - eps
        down = objective()
        theta[i] = saved
        numeric = (up - down) / (2 * eps)
        error = abs(analytic[i] - numeric) / max(abs(analytic[i]), abs(numeric), floor)
        worst = max(worst, error)
    return float(worst)



def _check_arguments(model, eps, max_params, seed):
    """A clear ``TypeError``/``ValueError`` for arguments that would make the check meaningless or fail inside NumPy."""
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a fastbp.MLP, got {type(model).__name__}")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a finite number > 0, got {eps!r}")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    if max_params is not None:
        as_positive_int("max_params", max_params)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an int >= 0 or None, got {seed!r}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed must be an int >= 0 or None, got {seed}")
