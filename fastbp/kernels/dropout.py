"""Dropout masks from a counter-based generator: reproducible from the seed, equal on every backend.

Each element's keep-or-drop decision is a pure function of ``(seed, step,
row, layer, unit)``: the 64-bit key is mixed by the SplitMix64 finalizer,
once per field, and the top 53 bits give a uniform ``u`` in ``[0, 1)``; the
unit is kept when ``u >= p``. There is no generator state to share between
threads, so the serial and parallel backends, which split a minibatch's rows
between threads, draw the same masks, and :mod:`fastbp.reference` computes
them with the same arithmetic in NumPy. ``step`` is the optimizer step being
computed (from 1) and ``row`` the row's position in its minibatch.

A kept unit is scaled by ``1 / (1 - p)`` (``torch.nn.Dropout``'s inverted
dropout), so nothing changes at inference.
"""

import numpy as np

from .compile import jit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@jit(inline="always")
def _mix(z):
    """SplitMix64's finalizer of a uint64."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@jit(inline="always")
def row_key(seed, step, row, layer):
    """The part of the key shared by the units of one row of one layer (a uint64)."""
    z = _mix(np.uint64(seed) + _GOLDEN)
    z = _mix(z ^ np.uint64(step))
    z = _mix(z ^ np.uint64(row))
    return z ^ (np.uint64(layer) << np.uint64(32))


@jit(inline="always")
def unit_uniform(key, unit):
    """The uniform draw in ``[0, 1)`` of ``unit`` under a row's ``key``."""
    return float(_mix(key ^ np.uint64(unit)) >> np.uint64(11)) * _TO_UNIT


@jit
def apply_mask(src, dst, p, scale, seed, step, row0, layer):
    """``dst = src * mask * scale``, the mask drawn for rows ``row0 + i`` of ``layer``; ``dst`` may be ``src``.

    ``scale`` is ``1 / (1 - p)``, computed by the caller: computed here, fast
    math could fold the multiplication into a division, which rounds
    differently from NumPy's product.
    """
    scale = src.dtype.type(scale)
    zero = src.dtype.type(0.0)
    for i in range(src.shape[0]):
        key = row_key(seed, step, row0 + i, layer)
        s = src[i]
        d = dst[i]
        for j in range(s.shape[0]):
            d[j] = s[j] * scale if unit_uniform(key, j) >= p else zero
