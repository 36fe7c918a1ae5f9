"""The scalar activation helpers of ``fastbp/kernels/activations.py`` against ``fastbp.reference``.

``activation_value`` and ``activation_derivative`` are called from user ``@njit``
code, one element at a time, for every activation in float32 and float64; and
PyTorch's conventions at the kinks and for NaN hold there and through the layer kernels.
"""

import math

import numba
import numpy as np
import pytest
from conftest import DTYPES

from fastbp import kernels, reference

ACT_NAMES = list(kernels.ACTIVATIONS)


@numba.njit
def _scalar_activations(code, z, value, deriv):
    """Call the scalar helpers from user njit code, one element at a time."""
    for i in range(z.shape[0]):
        a = kernels.activation_value(code, z[i])
        value[i] = a
        deriv[i] = kernels.activation_derivative(code, z[i], a)


# 0, +-1e-3, +-1, +-3, +-25, and both sides of softplus's threshold (20).
Z_GRID = np.array([0.0, 1e-3, -1e-3, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 19.5, 20.0, 20.5, -20.0, 25.0, -25.0])


def _cancellation_scale(name, z):
    """Magnitude of the terms that cancel in the reference's own float32 formula, per element.

    Where a formula subtracts nearly equal numbers, a 1-ulp difference in an
    intermediate (e.g. tanh computed by a different libm, or an FMA from
    fastmath's ``contract``) legitimately becomes many ulps of the result:
    ``1 - tanh(z)**2`` near |tanh| = 1 (terms of size 1) and GELU's
    ``0.5 z (1 + tanh(u))`` near tanh(u) = -1 (terms of size |z|; its
    derivative also has ``(1 - t*t)`` times ``0.5 |z| k (1 + 3 c z^2)``).
    For such elements the bound gets ``4 * eps32 * scale`` of absolute slack;
    elsewhere the scale is 0 and the bound is a pure 4-ulp one. The reference
    formulas for the other activations (exp, log1p, expm1, products) do not
    cancel, so they get no slack.
    """
    z = np.abs(np.asarray(z, dtype=np.float64))
    zero = np.zeros_like(z)
    k, c = math.sqrt(2 / math.pi), 0.044715
    value = {"gelu": z}
    deriv = {"tanh": np.ones_like(z), "gelu": 0.5 + z * k * (1 + 3 * c * z * z)}
    return value.get(name, zero), deriv.get(name, zero)


def _assert_within_ulps(actual, desired, maxulp, slack, what):
    actual = np.asarray(actual)
    desired = np.asarray(desired, dtype=actual.dtype)
    assert actual.dtype == desired.dtype
    both_nan = np.isnan(actual) & np.isnan(desired)
    err = np.abs(actual.astype(np.float64) - desired.astype(np.float64))
    bound = maxulp * np.spacing(np.abs(desired)).astype(np.float64) + slack
    bad = ~both_nan & ~(err <= bound)
    assert not bad.any(), (f"{what}: z={Z_GRID[bad].tolist()} got {actual[bad].tolist()} "
                           f"expected {desired[bad].tolist()} ({(err[bad] / np.spacing(np.abs(desired[bad])))} ulps)")


@pytest.mark.parametrize("act", ACT_NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_scalar_activation_functions_match_reference(dtype, act):
    code = kernels.ACTIVATIONS[act]
    z = Z_GRID.astype(dtype)
    value = np.full_like(z, np.nan)
    deriv = np.full_like(z, np.nan)
    _scalar_activations(code, z, value, deriv)

    # The scalar helpers keep the argument's precision: float32 in, float32 out.
    for fn in (kernels.activation_value, kernels.activation_derivative):
        sigs = [s for s in fn.nopython_signatures if s.args[1] == numba.from_dtype(np.dtype(dtype))]
        assert sigs, f"{fn.__name__} was not compiled for {dtype.__name__}"
        assert all(s.return_type == numba.from_dtype(np.dtype(dtype)) for s in sigs), sigs

    ref_value = reference.activation(act, z)
    ref_deriv = reference.activation_derivative(act, z)
    assert ref_value.dtype == dtype and ref_deriv.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(value, ref_value, rtol=1e-10, atol=1e-12, err_msg="value")
        np.testing.assert_allclose(deriv, ref_deriv, rtol=1e-10, atol=1e-12, err_msg="derivative")
    else:
        # float32: at most 4 ulps from the reference evaluated in float32, plus
        # (only where the reference formula itself cancels) 4 eps of the cancelling terms.
        eps = float(np.finfo(np.float32).eps)
        value_scale, deriv_scale = _cancellation_scale(act, z)
        _assert_within_ulps(value, ref_value, 4, 4 * eps * value_scale, f"{act} value")
        _assert_within_ulps(deriv, ref_deriv, 4, 4 * eps * deriv_scale, f"{act} derivative")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_kink_conventions_and_nan(dtype):
    """PyTorch's conventions: relu'(0) = 0, leaky_relu'(0) = 0.01, relu(NaN) = NaN."""
    z = np.array([0.0, -0.0, np.nan], dtype=dtype)
    for name, expected_deriv_at_0 in [("relu", 0.0), ("leaky_relu", 0.01)]:
        value = np.empty_like(z)
        deriv = np.empty_like(z)
        _scalar_activations(kernels.ACTIVATIONS[name], z, value, deriv)
        assert value[0] == 0 and value[1] == 0
        assert deriv[0] == dtype(expected_deriv_at_0), (name, deriv[0])
        assert deriv[1] == dtype(expected_deriv_at_0), (name, deriv[1])
        assert np.isnan(value[2]), f"{name}(NaN) = {value[2]}"

    # The same conventions through the layer kernels.
    Z = np.array([[0.0, np.nan, 2.0]], dtype=dtype)
    for name, expected_row in [("relu", [0.0, 1.0]), ("leaky_relu", [0.01, 1.0])]:
        code = kernels.ACTIVATIONS[name]
        A = np.empty_like(Z)
        kernels.dense_forward(np.zeros((1, 1), dtype), np.zeros((1, 3), dtype), Z[0].copy(), code, np.empty_like(Z), A)
        assert A[0, 0] == 0 and np.isnan(A[0, 1]) and A[0, 2] == 2
        D = np.empty_like(Z)
        # D_next = [[1]] through W_next = ones((3, 1)) gives 1 * act'(Z).
        kernels.backprop_delta(np.ones((1, 1), dtype), np.ones((3, 1), dtype), Z, A, code, D)
        assert D[0, 0] == dtype(expected_row[0]), (name, D[0, 0])
        assert D[0, 2] == dtype(expected_row[1]), (name, D[0, 2])
