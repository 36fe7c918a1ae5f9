"""The first layer's kernels for sparse input: a CSR matrix times dense weights, and its weight gradient.

A CSR matrix ``X`` of shape ``(N, d_in)`` is its three arrays ``indptr``
(int, ``(N + 1,)``), ``indices`` (int, ``(nnz,)``, the column of each stored
value) and ``data`` (float, ``(nnz,)``), as ``scipy.sparse.csr_matrix`` holds
them. ``rows`` (int64) picks the rows a call works on, in order: a
minibatch's sample ids, so that a shuffled epoch reads its rows where they
are, without gathering or densifying them. The dense arrays are as in
:mod:`.dense`: ``W (d_in, d_out)``, ``b (d_out,)``, ``Z, A, D (len(rows), d_out)``.

The work is proportional to the stored values: each stored ``x_ip`` adds
``x_ip * W[p]`` to its row of ``Z`` and ``x_ip * D[r]`` to row ``p`` of ``gW``.
The forward kernel's parallel variant splits the rows between threads; the
weight gradient scatters into ``gW``'s rows, so it has a serial form only.

The functions at the end are what the training driver's sparse variant uses
in place of its dense input helpers (see :mod:`.driver`): a chunk of rows is
``(indptr, indices, data, rows)``, ``rows`` a view of the epoch's order, so
sparse rows are read where they are, never gathered or densified.
"""

from numba import prange

from .activations import bias_activate
from .compile import jit, serial_and_parallel
from .dense import _column_sums, _span, _task_count
from .views import borrowed


@jit(inline="always")
def _check_csr(name, indptr, indices, rows, d_in, n_out):
    """Refuse rows outside ``X`` and stored columns outside ``W``, before anything is written."""
    if n_out != rows.shape[0]:
        raise ValueError(f"{name}: the outputs must have one row per entry of rows")
    for r in range(rows.shape[0]):
        i = rows[r]
        if i < 0 or i + 1 >= indptr.shape[0]:
            raise ValueError(f"{name}: rows holds a row index outside X")
        for q in range(indptr[i], indptr[i + 1]):
            if indices[q] < 0 or indices[q] >= d_in:
                raise ValueError(f"{name}: X has a column index beyond the rows of W (or gW)")



@jit(inline="always")
def _add_scaled(x, src, dst):
    """``dst += x * src`` for rows of one width: one stored value's contribution."""
    for j in range(dst.shape[0]):
        dst[j] += x * src[j]


@jit
def _forward_rows(indptr, indices, data, rows, W, Z, lo, hi):
    """Rows ``lo:hi`` of ``Z = X[rows] @ W``, one multiply-add pass over ``W[p]`` per stored value."""
    W = borrowed(W)
    Z = borrowed(Z)
    d_out = Z.shape[1]
    for r in range(lo, hi):
        z = Z[r]
        for j in range(d_out):
            z[j] = 0
        i = rows[r]
        for q in range(indptr[i], indptr[i + 1]):
            _add_scaled(data[q], W[indices[q]], z)


@jit
def _sparse_dense_forward(indptr, indices, data, rows, W, b, act, Z, A):
    """:func:`sparse_dense_forward` without its checks, serial: the training driver's first layer."""
    lo, hi = _span(0, 1, Z.shape[0])
    _forward_rows(indptr, indices, data, rows, W, Z, lo, hi)
    bias_activate(Z, b, A, act, lo, hi)


@jit
def _sparse_weight_gradient(indptr, indices, data, rows, D, gW, gb):
    """:func:`sparse_weight_gradient` without its checks: the training driver's first layer."""
    D = borrowed(D)
    gW = borrowed(gW)
    n, d_out = D.shape
    gW[:, :] = 0
    for r in range(n):
        d = D[r]
        i = rows[r]
        for q in range(indptr[i], indptr[i + 1]):
            _add_scaled(data[q], d, gW[indices[q]])
    lo, hi = _span(0, 1, d_out)  # not the literal 0: Numba would compile a literal-typed copy
    if n == 0:
        for j in range(d_out):
            gb[j] = 0
        return
    _column_sums(D, gb, lo, hi)


def sparse_dense_forward(indptr, indices, data, rows, W, b, act, Z, A):
    """``Z = X[rows] @ W + b`` and ``A = act(Z)`` for a CSR matrix ``X``.

    Parameters
    ----------
    indptr, indices, data : ndarray
        The CSR arrays of ``X`` (``scipy.sparse.csr_matrix`` attributes).
    rows : ndarray of int64, shape (n,)
        The rows of ``X`` to use, in order.
    W : ndarray, shape (d_in, d_out)
    b : ndarray, shape (d_out,)
    act : int
        Activation code, e.g. ``fastbp.kernels.RELU``.
    Z, A : ndarray, shape (n, d_out)
        Outputs; ``A`` may be ``Z``.

    Raises
    ------
    ValueError
        When ``rows`` points outside ``X``, ``X`` has a column beyond ``W``'s
        rows, or a shape does not fit; nothing is written then.

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp.kernels import RELU, sparse_dense_forward
    >>> indptr, indices, data = np.array([0, 1, 3]), np.array([1, 0, 2]), np.array([2.0, 1.0, -1.0])
    >>> W = np.arange(6.0).reshape(3, 2); b = np.zeros(2); Z = np.empty((2, 2)); A = np.empty((2, 2))
    >>> sparse_dense_forward(indptr, indices, data, np.array([1, 0]), W, b, RELU, Z, A)
    >>> Z  # rows [1, 0, -1] and [0, 2, 0] of X times W
    array([[-4., -4.],
           [ 4.,  6.]])
    """
    n, d_out = Z.shape
    _check_csr("sparse_dense_forward", indptr, indices, rows, W.shape[0], n)
    if b.shape[0] != d_out or W.shape[1] != d_out or A.shape[0] != n or A.shape[1] != d_out:
        raise ValueError("sparse_dense_forward: W must be (d_in, d_out), b (d_out,), Z and A (n, d_out)")
    tasks = max(1, min(_task_count(max(indptr[-1], 1) * d_out), n))
    for t in prange(tasks):
        lo, hi = _span(t, tasks, n)
        _forward_rows(indptr, indices, data, rows, W, Z, lo, hi)
        bias_activate(Z, b, A, act, lo, hi)


def sparse_weight_gradient(indptr, indices, data, rows, D, gW, gb):
    """``gW = X[rows].T @ D`` and ``gb = D.sum(0)`` for a CSR matrix ``X``.

    Parameters
    ----------
    indptr, indices, data : ndarray
        The CSR arrays of ``X``.
    rows : ndarray of int64, shape (n,)
    D : ndarray, shape (n, d_out)
        The first layer's delta.
    gW : ndarray, shape (d_in, d_out)
        Output (overwritten).
    gb : ndarray, shape (d_out,)
        Output (overwritten).

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp.kernels import sparse_weight_gradient
    >>> indptr, indices, data = np.array([0, 1, 3]), np.array([1, 0, 2]), np.array([2.0, 1.0, -1.0])
    >>> D = np.array([[1.0], [10.0]]); gW = np.empty((3, 1)); gb = np.empty(1)
    >>> sparse_weight_gradient(indptr, indices, data, np.array([0, 1]), D, gW, gb)
    >>> gW.ravel(), gb
    (array([ 10.,   2., -10.]), array([11.]))
    """
    n, d_out = D.shape
    _check_csr("sparse_weight_gradient", indptr, indices, rows, gW.shape[0], n)
    if gW.shape[1] != d_out or gb.shape[0] != d_out:
        raise ValueError("sparse_weight_gradient: gW must be (d_in, d_out) and gb (d_out,) for D of shape (n, d_out)")
    _sparse_weight_gradient(indptr, indices, data, rows, D, gW, gb)


sparse_dense_forward, sparse_dense_forward_parallel = serial_and_parallel(sparse_dense_forward)
sparse_weight_gradient = jit(sparse_weight_gradient)


# ----------------------------------------------------------------------------- the driver's input helpers, CSR
@jit(inline="always")
def n_samples(X):
    """Rows of the CSR matrix ``X = (indptr, indices, data)``."""
    return X[0].shape[0] - 1


@jit(inline="always")
def take_rows(X, order, lo, hi, in_order, buf):
    """A chunk of the epoch's rows ``order[lo:hi]``: the CSR arrays and a view of the order."""
    return (X[0], X[1], X[2], order[lo:hi])


@jit(inline="always")
def rows_in_order(X, rows, lo, hi):
    """Rows ``lo:hi`` in order, ``rows`` being ``0..n-1``."""
    return (X[0], X[1], X[2], rows[lo:hi])


@jit(inline="always")
def chunk_rows(xv):
    """Rows of a chunk."""
    return xv[3].shape[0]


@jit(inline="always")
def first_forward(xv, W, b, act, Z, A):
    """The first layer's forward pass of a chunk."""
    _sparse_dense_forward(xv[0], xv[1], xv[2], xv[3], W, b, act, Z, A)


@jit(inline="always")
def first_weight_gradient(xv, D, gW, gb):
    """The first layer's weight gradient of a chunk."""
    _sparse_weight_gradient(xv[0], xv[1], xv[2], xv[3], D, gW, gb)


#: The names the training driver's sparse variant binds to these helpers.
DRIVER_INPUTS = ("n_samples", "take_rows", "rows_in_order", "chunk_rows", "first_forward", "first_weight_gradient")
