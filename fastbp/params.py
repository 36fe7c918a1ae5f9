"""The flat parameter vector and its layer table.

All weights and biases of a network live in one contiguous vector ``theta``:
layer ``l`` stores its weights ``W`` row-major as ``(fan_in, fan_out)``
followed by its bias ``b``. Gradients and optimizer state use the same
layout, so saving, gradient checking and optimizer updates are single loops
over a vector, and per-layer arrays are views of it.
"""

import numpy as np

from .kernels.activations import ELU, GELU, LEAKY_RELU, RELU, SOFTPLUS
from .kernels.epoch import ACT, B_OFF, D_IN, D_OUT, N_COLS, W_OFF, WS_OFF

INITS = ("auto", "glorot_uniform", "he_uniform")
_RELU_FAMILY = (RELU, LEAKY_RELU, ELU, SOFTPLUS, GELU)


def offsets(sizes):
    """Return ``(w_offsets, b_offsets, n_params)`` of the flat layout for layer ``sizes``."""
    w_offs, b_offs = [], []
    off = 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w_offs.append(off)
        off += fan_in * fan_out
        b_offs.append(off)
        off += fan_out
    return w_offs, b_offs, off


def layer_table(sizes, act_codes, rows):
    """The int64 layer table the compiled drivers read (see ``fastbp.kernels.epoch``).

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first.
    act_codes : sequence of int
        One activation code per weight layer (the output layer's is ``IDENTITY``).
    rows : int
        Rows per workspace chunk; sets each layer's workspace offset.
    """
    w_offs, b_offs, _ = offsets(sizes)
    table = np.zeros((len(sizes) - 1, N_COLS), dtype=np.int64)
    ws = 0
    for l in range(len(sizes) - 1):
        table[l, D_IN] = sizes[l]
        table[l, D_OUT] = sizes[l + 1]
        table[l, W_OFF] = w_offs[l]
        table[l, B_OFF] = b_offs[l]
        table[l, ACT] = act_codes[l]
        table[l, WS_OFF] = ws
        ws += rows * sizes[l + 1]
    return table


def unflatten(vector, sizes):
    """Per-layer ``(Ws, bs)`` views of a flat vector (parameters, gradients or state)."""
    w_offs, b_offs, _ = offsets(sizes)
    Ws = [vector[w:w + i * o].reshape(i, o) for w, i, o in zip(w_offs, sizes[:-1], sizes[1:])]
    bs = [vector[b:b + o] for b, o in zip(b_offs, sizes[1:])]
    return Ws, bs


def initial_params(sizes, act_codes, init, rng, dtype):
    """A freshly initialised flat parameter vector; biases start at zero.

    ``init="auto"`` uses He-uniform, ``U(-sqrt(6/fan_in), sqrt(6/fan_in))``, for
    layers followed by an activation of the ReLU family (relu, leaky_relu, elu,
    softplus, gelu) and Glorot-uniform, ``U(-sqrt(6/(fan_in+fan_out)), ...)``,
    for the rest (tanh, sigmoid, and the linear output layer).
    """
    _, _, n_params = offsets(sizes)
    theta = np.zeros(n_params, dtype=dtype)
    Ws, _ = unflatten(theta, sizes)
    for W, code in zip(Ws, act_codes):
        fan_in, fan_out = W.shape
        scheme = init
        if scheme == "auto":
            scheme = "he_uniform" if code in _RELU_FAMILY else "glorot_uniform"
        if scheme == "he_uniform":
            limit = np.sqrt(6.0 / fan_in)
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
        W[...] = rng.uniform(-limit, limit, size=W.shape)
    return theta


def workspace_width(sizes, rows):
    """Elements of one chunk's Z/A/D workspace row for ``rows`` samples."""
    return rows * int(sum(sizes[1:]))
