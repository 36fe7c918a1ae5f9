"""Plain-NumPy forward and backward passes: the oracle of the tests and the ``"numpy"`` backend.

Everything here is written for clarity, with whole-array NumPy operations and
no Numba, so that it can be read against the math and checked independently
of the compiled kernels. Weights are lists ``Ws, bs`` with ``W`` shaped
``(fan_in, fan_out)``; activations and losses are given by name.
"""

import numpy as np

_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)


def activation(name, z):
    """``f(z)`` for the activation ``name`` (torch.nn definitions)."""
    if name == "identity":
        return z.copy()
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, z.dtype.type(0.01) * z)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    if name == "softplus":
        return np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20))))
    if name == "gelu":
        c = z.dtype.type
        return c(0.5) * z * (1 + np.tanh(c(_SQRT_2_OVER_PI) * (z + c(0.044715) * z ** 3)))
    raise ValueError(f"unknown activation {name!r}")


def activation_derivative(name, z):
    """``f'(z)`` for the activation ``name``, from the pre-activation ``z``."""
    c = z.dtype.type
    if name == "identity":
        return np.ones_like(z)
    if name == "sigmoid":
        s = activation("sigmoid", z)
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, c(1), c(0.01))
    if name == "elu":
        return np.where(z > 0, c(1), np.exp(np.minimum(z, 0)))
    if name == "softplus":
        return np.where(z > 20, c(1), activation("sigmoid", z))
    if name == "gelu":
        k = c(_SQRT_2_OVER_PI)
        t = np.tanh(k * (z + c(0.044715) * z ** 3))
        return c(0.5) * (1 + t) + c(0.5) * z * (1 - t * t) * k * (1 + c(3 * 0.044715) * z * z)
    raise ValueError(f"unknown activation {name!r}")


def forward(X, Ws, bs, activations, masks=None):
    """Forward pass. Returns ``(Zs, As)``, one entry per layer; the last layer is linear.

    ``activations`` names the hidden layers' activations (``len(Ws) - 1`` names).
    ``masks`` (training with dropout) holds one array per hidden layer, of
    zeros and ``1 / (1 - p)``, or None for a layer without dropout; ``As``
    then holds the dropped activations, the next layer's input.
    """
    Zs, As = [], []
    inp = X
    for l, (W, b) in enumerate(zip(Ws, bs)):
        Z = inp @ W + b
        A = Z if l == len(Ws) - 1 else activation(activations[l], Z)
        if masks is not None and l < len(Ws) - 1 and masks[l] is not None:
            A = A * masks[l]
        Zs.append(Z)
        As.append(A)
        inp = A
    return Zs, As


_MASK64 = (1 << 64) - 1


def _mix(z):
    """SplitMix64's finalizer on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(seed, step, rows, layer, units, p, dtype):
    """The dropout mask of ``rows`` rows (minibatch positions 0..rows-1) of a hidden layer, at optimizer ``step``.

    Zeros where a unit is dropped, ``1 / (1 - p)`` where it is kept: the
    counter-based generator of ``fastbp.kernels.dropout`` (SplitMix64 of
    ``(seed, step, row, layer, unit)``), written with NumPy arrays.
    """
    with np.errstate(over="ignore"):
        z = _mix(np.full(rows, (seed + 0x9E3779B97F4A7C15) & _MASK64, dtype=np.uint64))
        z = _mix(z ^ np.uint64(step))
        z = _mix(z ^ np.arange(rows, dtype=np.uint64))
        key = z ^ (np.uint64(layer) << np.uint64(32))
        u = (_mix(key[:, None] ^ np.arange(units, dtype=np.uint64)[None, :]) >> np.uint64(11)).astype(np.float64)
    keep = u * (1.0 / 9007199254740992.0) >= p
    return np.where(keep, dtype.type(1.0 / (1.0 - p)), dtype.type(0.0)).astype(dtype)


def logsumexp(Z):
    """Row-wise ``log(sum(exp(Z)))``, computed stably."""
    m = Z.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True)))[:, 0]


def softmax(Z):
    """Row-wise softmax."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def sigmoid(Z):
    """Elementwise logistic function."""
    return activation("sigmoid", Z)


def sample_weights(n, sw):
    """Sample weights of ``n`` samples as a float64 column (ones when ``sw`` is None) and their sum."""
    w = np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)
    return w[:, None], float(w.sum())


def loss_value(loss, Z, T, sw=None):
    """Mean loss of the output pre-activations ``Z`` against target rows ``T`` (PyTorch's definitions).

    With sample weights ``sw`` (shape ``(n,)``), the weighted mean
    ``sum_i w_i J_i / sum_i w_i`` of the per-sample losses.
    """
    Z = np.asarray(Z, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    w, wsum = sample_weights(Z.shape[0], sw)
    k = 1
    if loss == "mse":
        per_element = (Z - T) ** 2
        k = Z.shape[1]
    elif loss == "binary_cross_entropy":
        per_element = np.maximum(Z, 0) - Z * T + np.log1p(np.exp(-np.abs(Z)))
        k = Z.shape[1]
    elif loss == "softmax_cross_entropy":
        per_element = (logsumexp(Z) * T.sum(axis=1) - (T * Z).sum(axis=1))[:, None]
    elif loss == "poisson":
        per_element = np.exp(Z) - T * Z
        k = Z.shape[1]
    else:
        raise ValueError(f"unknown loss {loss!r}")
    return float(np.sum(w * per_element) / (wsum * k))


def output_delta(loss, Z, T, sw=None):
    """``dJ/dZ`` of the (weighted) mean loss, for the output pre-activations ``Z``."""
    n, k = Z.shape
    w, wsum = sample_weights(n, sw)
    w = w.astype(Z.dtype)
    if loss == "mse":
        return 2 * (Z - T) * w / Z.dtype.type(wsum * k)
    if loss == "binary_cross_entropy":
        return (sigmoid(Z) - T) * w / Z.dtype.type(wsum * k)
    if loss == "softmax_cross_entropy":
        return (softmax(Z) * T.sum(axis=1, keepdims=True) - T) * w / Z.dtype.type(wsum)
    if loss == "poisson":
        return (np.exp(Z) - T) * w / Z.dtype.type(wsum * k)
    raise ValueError(f"unknown loss {loss!r}")


def l2_penalty(Ws, l2, weight_sum):
    """The weight penalty ``l2 / 2 * sum(W**2) / weight_sum`` (biases are not penalised)."""
    return 0.5 * l2 * sum(float(np.sum(np.asarray(W, dtype=np.float64) ** 2)) for W in Ws) / weight_sum


def loss_and_grad(X, T, Ws, bs, activations, loss, sw=None, l2=0.0):
    """Mean loss and its gradients ``(loss, gWs, gbs)`` by back-propagation.

    ``sw`` are optional sample weights and ``l2`` the weight penalty (see :func:`backward`).
    """
    Zs, As = forward(X, Ws, bs, activations)
    gWs, gbs = backward(X, T, Ws, Zs, As, activations, loss, sw, l2)
    _, wsum = sample_weights(X.shape[0], sw)
    return loss_value(loss, Zs[-1], T, sw) + l2_penalty(Ws, l2, wsum), gWs, gbs


def backward(X, T, Ws, Zs, As, activations, loss, sw=None, l2=0.0, masks=None):
    """Gradients ``(gWs, gbs)`` of the mean loss, given the forward pass ``Zs, As``.

    With sample weights ``sw`` the loss is their weighted mean; ``l2`` adds
    :func:`l2_penalty`, so ``l2 * W / sum(sw)`` to each weight gradient.
    ``masks`` are the dropout masks the forward pass used (see :func:`forward`).
    """
    D = output_delta(loss, Zs[-1], T, sw)
    _, wsum = sample_weights(X.shape[0], sw)
    gWs, gbs = [None] * len(Ws), [None] * len(Ws)
    for l in range(len(Ws) - 1, -1, -1):
        A_prev = X if l == 0 else As[l - 1]
        gWs[l] = A_prev.T @ D
        if l2:
            gWs[l] += Ws[l].dtype.type(l2 / wsum) * Ws[l]
        gbs[l] = D.sum(axis=0)
        if l > 0:
            D = (D @ Ws[l].T) * activation_derivative(activations[l - 1], Zs[l - 1])
            if masks is not None and masks[l - 1] is not None:
                D = D * masks[l - 1]
    return gWs, gbs


def clip_grad_norm(gWs, gbs, max_norm):
    """``torch.nn.utils.clip_grad_norm_``: scale every gradient by ``min(1, max_norm / (norm + 1e-6))``.

    ``norm`` is the 2-norm over all the gradients together. Returns new lists.
    """
    grads = list(gWs) + list(gbs)
    norm = np.sqrt(sum(float(np.sum(np.asarray(g, dtype=np.float64) ** 2)) for g in grads))
    factor = min(1.0, max_norm / (norm + 1e-6))
    scaled = [g * g.dtype.type(factor) for g in grads]
    return scaled[:len(gWs)], scaled[len(gWs):]


def optimizer_step(kind, params, grads, state, lr, momentum=0.0, nesterov=False, weight_decay=0.0,
                   betas=(0.9, 0.999), eps=1e-8, eps_hat=False):
    """One ``torch.optim`` step on a list of arrays, in place.

    Parameters
    ----------
    kind : {"sgd", "adam", "adamw"}
    params, grads : list of ndarray
    state : dict
        Optimizer state, created on first use: ``"step"`` and per-array ``"m"``/``"v"``.
    eps_hat : bool
        Adam's ``eps`` added to ``sqrt(v)`` before the bias correction
        (Kingma and Ba's efficient form, scikit-learn's and Keras's).
    """
    step = state["step"] = state.get("step", 0) + 1
    ms = state.setdefault("m", [np.zeros_like(p) for p in params])
    vs = state.setdefault("v", [np.zeros_like(p) for p in params])
    b1, b2 = betas
    for p, g, m, v in zip(params, grads, ms, vs):
        c = p.dtype.type
        if kind == "sgd":
            d = g + c(weight_decay) * p
            if momentum != 0:
                m *= c(momentum)
                m += d
                d = d + c(momentum) * m if nesterov else m
            p -= c(lr) * d
            continue
        if kind == "adamw":
            p *= c(1 - lr * weight_decay)
        else:
            g = g + c(weight_decay) * p
        m += c(1 - b1) * (g - m)
        v *= c(b2)
        v += c(1 - b2) * g * g
        step_size = c(lr / (1 - b1 ** step))
        bc2_sqrt = np.sqrt(1 - b2 ** step)
        p -= step_size * m / (np.sqrt(v) / c(bc2_sqrt) + c(eps / bc2_sqrt if eps_hat else eps))
