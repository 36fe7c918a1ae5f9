"""``fastbp.kernels.views``: the cheap reshaped views agree with NumPy's ``reshape``."""

import sys

import numba
import numpy as np
import pytest
from llvmlite import ir
from numba import types
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from fastbp.kernels.views import borrowed, flat_view, matrix_view


@intrinsic
def _meminfo_address(typingctx, arr):
    """The address of an array's meminfo (0 for none): what Numba counts references on."""
    def codegen(context, builder, sig, args):
        return builder.ptrtoint(make_array(sig.args[0])(context, builder, args[0]).meminfo, ir.IntType(64))

    return types.int64(arr), codegen


@numba.njit
def _matrix(vec, rows, cols):
    return matrix_view(vec, rows, cols)


@numba.njit
def _flat(mat):
    return flat_view(mat)


@numba.njit
def _write_through_matrix(vec, rows, cols, value):
    matrix_view(vec, rows, cols)[rows - 1, cols - 1] = value


@numba.njit
def _flat_of_column_block(mat):
    return flat_view(mat[:, 0:mat.shape[1]])  # typed as possibly non-contiguous


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 4), (0, 5), (7, 1), (2, 9)])
def test_matrix_view_is_numpys_reshape_of_the_front(dtype, rows, cols):
    vec = np.arange(rows * cols + 3).astype(dtype)
    view = _matrix(vec, rows, cols)
    assert view.shape == (rows, cols) and view.dtype == dtype and view.flags.c_contiguous
    np.testing.assert_array_equal(view, vec[:rows * cols].reshape(rows, cols))
    if rows * cols:
        assert np.shares_memory(view, vec)


def test_matrix_view_writes_through_to_the_vector():
    vec = np.zeros(12)
    _write_through_matrix(vec, 3, 4, 5.0)
    assert vec[11] == 5.0 and vec.sum() == 5.0


@pytest.mark.parametrize("rows, cols", [(4, 4), (-1, 2), (2, -1)])
def test_matrix_view_rejects_a_short_vector_or_negative_counts(rows, cols):
    with pytest.raises(ValueError, match="fewer than rows"):
        _matrix(np.zeros(10), rows, cols)


@pytest.mark.parametrize("shape", [(3, 4), (1, 7), (0, 3), (2, 3, 4)])
def test_flat_view_is_numpys_ravel(shape):
    mat = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    flat = _flat(mat)
    assert flat.shape == (mat.size,) and flat.flags.c_contiguous
    np.testing.assert_array_equal(flat, mat.ravel())
    if mat.size:
        assert np.shares_memory(flat, mat)


def test_flat_view_refuses_an_array_not_known_to_be_contiguous():
    with pytest.raises(TypeError, match="needs a C-contiguous array"):
        _flat_of_column_block(np.arange(12.0).reshape(3, 4))


@pytest.mark.parametrize("parallel", [False, True])
def test_stores_through_a_view_survive_dead_code_removal(parallel):
    """A store into a view that is never read again must still reach the viewed array.

    Numba's dead-code removal (run when a function is inlined at IR level or
    compiled with ``parallel=True``) drops such a store unless it knows the
    view aliases the array.
    """

    @numba.njit(inline="always")
    def view_of(vec, rows, cols):
        return matrix_view(vec, rows, cols)

    @numba.njit(parallel=parallel)
    def store(vec, rows, cols, value):
        view_of(vec, rows, cols)[rows - 1, cols - 1] = value
        flat_view(matrix_view(vec, rows, cols))[0] = value
        for i in numba.prange(rows):
            matrix_view(vec, rows, cols)[i, 1] = value

    vec = np.zeros(12)
    store(vec, 3, 4, 5.0)
    np.testing.assert_array_equal(np.flatnonzero(vec), [0, 1, 5, 9, 11])


@numba.njit
def _meminfo_of_views(vec, mat):
    own = (_meminfo_address(vec), _meminfo_address(mat[1]))
    vec = borrowed(vec)
    mat = borrowed(mat)
    return own, (_meminfo_address(vec), _meminfo_address(mat[1]), _meminfo_address(matrix_view(vec, 2, 2)))


def test_views_of_a_borrowed_array_have_no_meminfo_to_count():
    own, lent = _meminfo_of_views(np.zeros(6), np.zeros((3, 2)))
    assert all(address != 0 for address in own)
    assert lent == (0, 0, 0)


def test_borrowed_keeps_the_array_and_returns_other_values_as_they_are():
    @numba.njit
    def same(mat, count):
        m = borrowed(mat)
        return m.shape == mat.shape and m[1, 2] == mat[1, 2] and borrowed(count) == count and borrowed(None) is None

    assert same(np.arange(6, dtype=np.float32).reshape(2, 3), 7)


@pytest.mark.parametrize("parallel", [False, True])
def test_stores_through_a_borrowed_array_survive_dead_code_removal(parallel):
    @numba.njit(parallel=parallel)
    def store(vec, mat, value):
        vec = borrowed(vec)
        mat = borrowed(mat)
        vec[0] = value
        matrix_view(vec, 2, 3)[1, 1] = value
        mat[:, 0] = value
        for i in numba.prange(mat.shape[0]):
            row = mat[i]
            row[i] = value

    vec, mat = np.zeros(6), np.zeros((3, 3))
    store(vec, mat, 2.0)
    np.testing.assert_array_equal(np.flatnonzero(vec), [0, 4])
    np.testing.assert_array_equal(mat, 2.0 * (np.eye(3) + (np.arange(3) > 0)[:, None] * [1, 0, 0]))


def test_borrowing_a_value_that_is_not_an_array_keeps_its_references():
    """A tuple of arrays comes back as it is, with the reference its caller will drop (not one drop too many)."""

    @numba.njit
    def borrow(pair):
        same = borrowed(pair)
        return same[0].sum() + same[1].sum()

    pair = (np.ones(3), np.ones(4))
    counts = [sys.getrefcount(a) for a in pair]
    for _ in range(5):
        assert borrow(pair) == 7.0
    assert [sys.getrefcount(a) for a in pair] == counts
