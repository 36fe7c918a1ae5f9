"""Optimizer updates of the flat parameter vector (or of a span of it, passed as slices).

The rules are those of ``torch.optim`` (single-tensor implementation):

- ``SGD``: ``d = g + wd p``; with momentum ``buf = mu buf + d`` (dampening 0,
  ``buf`` starts at 0, which equals PyTorch's first-step ``buf = d``), then
  ``d = d + mu buf`` (Nesterov) or ``d = buf``; ``p -= lr d``.
- ``ADAM``: ``g = g + wd p``; ``m = m + (1 - b1)(g - m)``; ``v = b2 v + (1 - b2) g^2``;
  ``p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)``. With the
  ``H_EPS_HAT`` flag, ``eps`` is divided by ``sqrt(1 - b2^t)`` too, which is
  Kingma and Ba's ``p -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``
  (scikit-learn's and Keras's form).
- ``ADAMW``: ``p *= 1 - lr wd`` first, then the Adam step without ``wd``.

Hyperparameters travel in one float64 array indexed by the ``H_*`` constants
of :mod:`.layout`; the bias corrections are computed in float64, as PyTorch does with its
Python-float hyperparameters, and everything else in the parameter dtype.
"""

import math

from numba.extending import overload

from .compile import jit
from .layout import ADAMW, H_BETA1, H_BETA2, H_EPS, H_EPS_HAT, H_LR, H_MOMENTUM, H_NESTEROV, H_WEIGHT_DECAY, SGD
from .variants import ALL_OPTIMIZERS, code_value, served_codes


@jit
def update(code, theta, g, m, v, hyper, step):
    """Apply one optimizer step to ``theta`` in place.

    Parameters
    ----------
    code : int
        ``SGD``, ``ADAM`` or ``ADAMW``.
    theta, g, m, v : ndarray, shape (P,)
        Parameters (updated in place), gradient, first and second state
        vectors (momentum buffer / Adam moments, updated in place). To update
        a span, pass slices of the flat vectors.
    hyper : ndarray of float64, shape (N_HYPER,)
        Hyperparameters.
    step : int
        The step number, counting from 1 (for Adam's bias corrections).

    Every loop runs from 0 over 1-D contiguous arrays, so that LLVM vectorises it.
    """
    if code == SGD:
        sgd_update(theta, g, m, hyper)
    else:
        adam_update(code, theta, g, m, v, hyper, step)


@jit
def sgd_update(theta, g, m, hyper):
    """:func:`update` for ``SGD`` (``m`` is the momentum buffer)."""
    n = theta.shape[0]
    dt = theta.dtype.type
    lr = dt(hyper[H_LR])
    wd = dt(hyper[H_WEIGHT_DECAY])
    mu = dt(hyper[H_MOMENTUM])
    nesterov = hyper[H_NESTEROV] != 0
    if mu == 0:
        for i in range(n):
            theta[i] -= lr * (g[i] + wd * theta[i])
    elif nesterov:
        for i in range(n):
            d = g[i] + wd * theta[i]
            buf = mu * m[i] + d
            m[i] = buf
            theta[i] -= lr * (d + mu * buf)
    else:
        for i in range(n):
            d = g[i] + wd * theta[i]
            buf = mu * m[i] + d
            m[i] = buf
            theta[i] -= lr * buf


@jit
def adam_update(code, theta, g, m, v, hyper, step):
    """:func:`update` for ``ADAM`` and ``ADAMW``."""
    n = theta.shape[0]
    dt = theta.dtype.type
    wd = dt(hyper[H_WEIGHT_DECAY])
    b2 = dt(hyper[H_BETA2])
    one_minus_b1 = dt(1.0 - hyper[H_BETA1])
    one_minus_b2 = dt(1.0 - hyper[H_BETA2])
    step_size = dt(hyper[H_LR] / (1.0 - hyper[H_BETA1] ** step))
    bc2_sqrt64 = math.sqrt(1.0 - hyper[H_BETA2] ** step)
    bc2_sqrt = dt(bc2_sqrt64)
    eps = dt(hyper[H_EPS] / bc2_sqrt64) if hyper[H_EPS_HAT] != 0 else dt(hyper[H_EPS])
    if code == ADAMW:
        decay = dt(1.0 - hyper[H_LR] * hyper[H_WEIGHT_DECAY])
        for i in range(n):
            gi = g[i]
            p = theta[i] * decay
            mi = m[i] + one_minus_b1 * (gi - m[i])
            vi = b2 * v[i] + one_minus_b2 * gi * gi
            m[i] = mi
            v[i] = vi
            theta[i] = p - step_size * mi / (math.sqrt(vi) / bc2_sqrt + eps)
    else:
        for i in range(n):
            p = theta[i]
            gi = g[i] + wd * p
            mi = m[i] + one_minus_b1 * (gi - m[i])
            vi = b2 * v[i] + one_minus_b2 * gi * gi
            m[i] = mi
            v[i] = vi
            theta[i] = p - step_size * mi / (math.sqrt(vi) / bc2_sqrt + eps)


def optimizer_step(code, theta, g, m, v, hyper, step):
    """:func:`update` in compiled code: a code tagged by :func:`.variants.optimizer_code` compiles only its
    variant's optimizers (SGD's loops, or Adam's and AdamW's)."""
    raise TypeError("optimizer_step runs in compiled code only")


@overload(optimizer_step)
def _optimizer_step_overload(code, theta, g, m, v, hyper, step):
    codes = served_codes(code, "optimizer", ALL_OPTIMIZERS)
    if codes == (SGD,):
        return lambda code, theta, g, m, v, hyper, step: sgd_update(theta, g, m, hyper)
    if SGD not in codes:
        return lambda code, theta, g, m, v, hyper, step: adam_update(code_value(code), theta, g, m, v, hyper, step)
    return lambda code, theta, g, m, v, hyper, step: update(code_value(code), theta, g, m, v, hyper, step)
