"""The float32 exp and tanh approximations against NumPy (fastbp/kernels/fastmath.py)."""

import numba
import numpy as np
import pytest

from fastbp.kernels.fastmath import fast_exp, fast_tanh


@numba.njit
def _apply_exp(x, out):
    for i in range(x.size):
        out[i] = fast_exp(x[i])


@numba.njit
def _apply_tanh(x, out):
    for i in range(x.size):
        out[i] = fast_tanh(x[i])


def _ulps(got, exact):
    """Error in float32 ulps of the exact (float64) value."""
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / spacing


def _run(kernel, x):
    out = np.empty_like(x)
    kernel(x, out)
    return out


def test_exp_float32_within_5_ulps():
    x = np.linspace(-87.0, 88.0, 1_000_001, dtype=np.float32)
    assert _ulps(_run(_apply_exp, x), np.exp(x.astype(np.float64))).max() <= 5


@pytest.mark.parametrize("lo,hi", [(-10.0, 10.0), (-0.6, 0.6), (-1e-3, 1e-3), (-1e-30, 1e-30)])
def test_tanh_float32_within_2_ulps(lo, hi):
    x = np.linspace(lo, hi, 400_001, dtype=np.float32)
    exact = np.tanh(x.astype(np.float64))
    nonzero = exact != 0
    assert _ulps(_run(_apply_tanh, x)[nonzero], exact[nonzero]).max() <= 2


def test_special_values_float32():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 100.0, -100.0], dtype=np.float32)
    t = _run(_apply_tanh, x)
    assert np.isnan(t[0]) and t[1] == 1 and t[2] == -1 and t[3] == 0 and t[5] == 1 and t[6] == -1
    e = _run(_apply_exp, x)
    assert np.isnan(e[0]) and e[1] == np.inf and e[3] == 1 and e[5] == np.inf
    assert 0 <= e[2] < 2e-38 and 0 <= e[6] < 2e-38


def test_float32_stays_float32():
    _run(_apply_exp, np.ones(2, np.float32))
    sig = [s for s in _apply_exp.signatures if s[0].dtype == numba.float32][0]
    assert sig[1].dtype == numba.float32


def test_float64_uses_the_c_library():
    x = np.linspace(-30, 30, 10_001)
    np.testing.assert_allclose(_run(_apply_exp, x), np.exp(x), rtol=1e-15)
    np.testing.assert_allclose(_run(_apply_tanh, x), np.tanh(x), rtol=1e-15, atol=1e-300)
