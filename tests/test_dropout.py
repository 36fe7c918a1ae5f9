"""Dropout masks (fastbp/kernels/dropout.py) against the NumPy reference's, and their statistics."""

import numpy as np
import pytest

from fastbp import reference
from fastbp.kernels import dropout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_kernel_masks_equal_the_reference(dtype, p):
    A = np.random.default_rng(0).standard_normal((33, 17)).astype(dtype)
    out = np.empty_like(A)
    dropout.apply_mask(A, out, p, 1 / (1 - p), 2024, 5, 0, 1)
    np.testing.assert_array_equal(out, A * reference.dropout_mask(2024, 5, 33, 1, 17, p, np.dtype(dtype)))
    assert out.dtype == dtype


def test_rows_of_a_chunk_get_the_mask_of_their_position_in_the_minibatch():
    """A thread's chunk of rows lo:hi draws what the whole minibatch draws for those rows."""
    A = np.ones((20, 9))
    whole, part = np.empty_like(A), np.empty_like(A[7:13])
    dropout.apply_mask(A, whole, 0.4, 1 / 0.6, 1, 3, 0, 2)
    dropout.apply_mask(A[7:13], part, 0.4, 1 / 0.6, 1, 3, 7, 2)
    np.testing.assert_array_equal(part, whole[7:13])


def test_masks_change_with_each_key_and_drop_the_right_fraction():
    masks = [reference.dropout_mask(seed, step, 300, layer, 300, 0.3, np.dtype(np.float64))
             for seed, step, layer in [(0, 1, 0), (1, 1, 0), (0, 2, 0), (0, 1, 1)]]
    for i in range(len(masks)):
        assert abs((masks[i] == 0).mean() - 0.3) < 0.01  # 90,000 draws: the standard error is 0.0015
        for j in range(i):
            assert (masks[i] != masks[j]).mean() > 0.3
    kept = masks[0][masks[0] != 0]
    assert np.all(kept == 1 / 0.7)  # inverted dropout: the expectation of a unit is unchanged


def test_in_place_masking():
    D = np.random.default_rng(1).standard_normal((8, 5))
    expected = D * reference.dropout_mask(9, 4, 8, 0, 5, 0.5, np.dtype(np.float64))
    dropout.apply_mask(D, D, 0.5, 2.0, 9, 4, 0, 0)
    np.testing.assert_array_equal(D, expected)
