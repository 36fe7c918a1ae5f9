"""The three hot loops of back-propagation, for the CPU.

Each kernel is a plain njit function: inputs first, preallocated outputs last;
it returns nothing and allocates nothing. Arrays are C-contiguous, all of one
float dtype (float32 or float64), batch-major:
``X (n, d_in)``, ``W (d_in, d_out)``, ``b (d_out,)``, ``Z, A, D (n, d_out)``.

The matrix products go to BLAS (``np.dot`` with an output array, which Numba
turns into a ``gemm`` call through SciPy): OpenBLAS beats hand-written loops at
every shape of interest. There are three exceptions, where a BLAS call's fixed
cost dominates the work:

- the weight gradient of a single row (batch 1) is an outer product, where
  ``gemm`` with ``k = 1`` loses to a plain loop;
- the backward product of at most ``_SMALL_PRODUCT`` multiply-adds is a plain loop;
- so is the forward product of a single row through at most ``_SMALL_PRODUCT``
  weights and ``_ROW_LOOP_INPUTS`` inputs. That loop is written as BLAS's batch
  kernels compute a row, one fused multiply-add per weight in the order of the
  inputs, so that a row alone rounds as it does in a batch (BLAS's own
  single-row call does not always; a dot-product loop, which rounds
  differently again, had made scikit-learn's subset-invariance check fail).
  With more inputs, or more rows, plain loops lose to BLAS.

The bias, the activation and its derivative are fused into one pass over each
output block afterwards. In the training driver, where OpenBLAS runs its
small-matrix kernels, the backward product ``D_next @ W_next.T`` avoids the
one operand arrangement those kernels serve slowly or not at all: a layer
with at most ``TRANSPOSED_OUTPUTS`` outputs multiplies a copy of ``W_next.T``
that the driver writes once per minibatch, and a wider one, at most
``_COPY_DELTAS_ROWS`` rows and ``_COPY_DELTAS_PRODUCT`` multiply-adds, a
copy of ``D_next.T`` (:func:`backward_product` decides; the public kernels,
which have no workspace, keep the transposed operand).

The unchecked kernels start by borrowing their arrays
(:func:`.views.borrowed`), so that their views (rows, flat ranges) count no
references: two atomic instructions per view, which were a third of a small
network's minibatch.

Every kernel has a serial form (``_dense_forward``) and a parallel variant
(``_dense_forward_parallel``) compiled from the same Python body: the parallel
variant splits those passes across threads with ``numba.prange``, in tasks of
at least ``_TASK_ELEMENTS`` elements (the product's threads are BLAS's own). A
parallel region costs microseconds to start, so work that fits in one task
runs inline in either form, without one. No two threads ever write the same
element. Shapes are checked on entry and a mismatch raises ``ValueError``.
The measurements behind each threshold are on the performance page.

Checked and unchecked
---------------------
The public kernels (``dense_forward`` and the rest, as exported by
:mod:`fastbp.kernels`) check their arguments first (:mod:`.checks`: types,
contiguity and dtypes when the call is compiled, the activation code and
outputs that share memory with inputs when it runs), then call the unchecked
kernel of the same name with a leading underscore (``dense_forward_parallel``
calls ``_dense_forward_parallel``). The compiled training driver calls the
unchecked kernels: its arrays are views it builds itself, and it calls a
kernel per layer and chunk of every minibatch. The checks cost a few
nanoseconds a call."""

import numpy as np
from numba import prange

from .activations import bias_activate, scale_by_derivative
from .checks import check_backprop_delta, check_dense_forward, check_weight_gradient
from .compile import jit, serial_and_parallel
from .layout import BACKWARD_COPY_DELTAS, BACKWARD_COPY_WEIGHTS, BACKWARD_TRANSPOSED
from .views import borrowed, flat_view, matrix_view

_TASK_ELEMENTS = 4096  # elements (or rows) per parallel task: smaller work is not worth a thread
_MAX_TASKS = 256
_MIN_COLUMNS = 16  # columns per task of the bias-gradient sum: one AVX-512 vector of float32
# Multiply-adds up to which backprop_delta's product, and dense_forward's product of one row, is a plain
# loop: below it, the fixed cost of a BLAS call is more than the work.
_SMALL_PRODUCT = 128
# Outputs up to which a layer's backward product runs on a transposed copy of its weights (see _backprop_delta):
# OpenBLAS's small-matrix gemm with a transposed operand took 1.05 us at 32x32x32 against 0.47 us without, while
# with wider layers the copy costs more than it saves (measured on the performance page).
TRANSPOSED_OUTPUTS = 32
# Rows and multiply-adds up to which a wider layer's backward product runs on a copy of D_next.T: OpenBLAS then
# takes its small-matrix kernel, not the packed path (digits' 32x64 by 64x128: 5.5-6.0 us against 8.0-9.9 us);
# beyond either bound the packed path was as fast or faster (measured on the performance page).
_COPY_DELTAS_ROWS = 64
_COPY_DELTAS_PRODUCT = 1_000_000
# Inputs up to which dense_forward's single-row product (of at most _SMALL_PRODUCT weights) is a loop:
# it runs one pass over the outputs per input, so with more inputs BLAS wins again.
_ROW_LOOP_INPUTS = 8


@jit(inline="always")
def _task_count(count):
    """Parallel tasks for ``count`` items of elementwise work: 1 below ``_TASK_ELEMENTS``, at most ``_MAX_TASKS``.

    (The thread count is not read here: ``numba.get_num_threads`` inside a
    function would keep it out of the on-disk cache.)
    """
    return max(1, min(_MAX_TASKS, count // _TASK_ELEMENTS))


@jit(inline="always")
def _outer_rows(a, d, gW, lo, hi):
    """Rows ``lo:hi`` of the outer product ``gW = a[:, None] * d[None, :]``."""
    for k in range(lo, hi):
        g = gW[k]
        ak = a[k]
        for j in range(d.shape[0]):
            g[j] = ak * d[j]


@jit(inline="always")
def _column_sums(D, gb, lo, hi):
    """Columns ``lo:hi`` of ``gb = D.sum(0)``, rows added in order."""
    g = gb[lo:hi]
    first = D[0, lo:hi]
    for j in range(hi - lo):
        g[j] = first[j]
    for i in range(1, D.shape[0]):
        row = D[i, lo:hi]
        for j in range(hi - lo):
            g[j] += row[j]


@jit(inline="always")
def _small_product_transposed(D, W, out):
    """``out = D @ W.T`` by plain loops, each element a dot product of two rows (``W.shape[1] >= 1``)."""
    for i in range(D.shape[0]):
        d = D[i]
        o = out[i]
        for k in range(W.shape[0]):
            w = W[k]
            s = d[0] * w[0]
            for j in range(1, W.shape[1]):
                s += d[j] * w[j]
            o[k] = s


@jit(inline="always")
def _row_product(x, W, z):
    """``z = x @ W`` for one row: a fused multiply-add per weight, inputs in order, as BLAS does a row of a batch."""
    d_out = z.shape[0]
    for j in range(d_out):
        z[j] = 0
    for k in range(x.shape[0]):
        xk = x[k]
        w = W[k]
        for j in range(d_out):
            z[j] += xk * w[j]


@jit(inline="always")
def _span(t, tasks, count):
    """Task ``t``'s half-open range when ``count`` items are split into ``tasks`` tasks."""
    size = -(-count // tasks)
    lo = min(t * size, count)
    return lo, min(lo + size, count)


def _dense_forward(X, W, b, act, Z, A):
    """``dense_forward`` without its argument checks (see the module docstring): ``Z = X @ W + b``, ``A = act(Z)``."""
    X = borrowed(X)
    W = borrowed(W)
    b = borrowed(b)
    Z = borrowed(Z)
    A = borrowed(A)
    n, d_in = X.shape
    d_out = W.shape[1]
    if W.shape[0] != d_in or b.shape[0] != d_out:
        raise ValueError("dense_forward: W must be (d_in, d_out) and b (d_out,) for X of shape (n, d_in)")
    if Z.shape[0] != n or Z.shape[1] != d_out or A.shape[0] != n or A.shape[1] != d_out:
        raise ValueError("dense_forward: Z and A must be (n, d_out)")
    if n == 1 and d_in <= _ROW_LOOP_INPUTS and d_in * d_out <= _SMALL_PRODUCT:
        _row_product(X[0], W, Z[0])
    else:
        np.dot(X, W, Z)
    tasks = min(_task_count(n * d_out), n)
    if tasks == 1:  # no parallel region to start for one task (it costs microseconds)
        lo, hi = _span(0, 1, n)  # not the literals 0, n: Numba would compile a second, literal-typed copy
        bias_activate(Z, b, A, act, lo, hi)
    else:
        for t in prange(tasks):
            lo, hi = _span(t, tasks, n)
            bias_activate(Z, b, A, act, lo, hi)


def _backprop_delta(D_next, W_next, Z, A, act, D, W_next_T, D_next_T):
    """``backprop_delta`` without its argument checks: ``D = (D_next @ W_next.T) * act'(Z)``.

    ``W_next_T`` is None, or ``W_next.T`` as a flat C-ordered vector of
    ``d_next * d`` elements, or an empty vector for none. ``D_next_T`` is
    None, or a flat workspace of at least ``n * d_next`` elements that must
    not overlap the other arrays, or an empty vector for none. Given the first,
    the product multiplies it; given the second, ``D_next.T`` is copied into
    it first and the product reads that copy; given neither, ``W_next.T`` as
    it is. The training driver chooses (:func:`backward_product`): OpenBLAS's
    small-matrix kernels multiply without a transposed operand at up to twice
    the speed.
    """
    D_next = borrowed(D_next)
    W_next = borrowed(W_next)
    Z = borrowed(Z)
    A = borrowed(A)
    D = borrowed(D)
    n, d = D.shape
    d_next = W_next.shape[1]
    if W_next.shape[0] != d or D_next.shape[0] != n or D_next.shape[1] != d_next:
        raise ValueError("backprop_delta: D_next must be (n, d_next) and W_next (d, d_next) for D of shape (n, d)")
    if Z.shape[0] != n or Z.shape[1] != d or A.shape[0] != n or A.shape[1] != d:
        raise ValueError("backprop_delta: Z and A must have the shape of D, (n, d)")
    if n * d * d_next <= _SMALL_PRODUCT and d_next > 0:
        _small_product_transposed(D_next, W_next, D)
    elif W_next_T is not None and W_next_T.shape[0] > 0:
        np.dot(D_next, matrix_view(W_next_T, d_next, d), D)  # (a vector shorter than d_next * d raises)
    elif D_next_T is not None and D_next_T.shape[0] > 0:
        DT = matrix_view(D_next_T[:n * d_next], d_next, n)  # (a vector shorter than n * d_next raises)
        for i in range(n):
            row = D_next[i]
            for j in range(d_next):
                DT[j, i] = row[j]
        np.dot(DT.T, W_next.T, D)
    else:
        np.dot(D_next, W_next.T, D)
    size = n * d
    tasks = _task_count(size)
    flat_d, flat_z, flat_a = flat_view(D), flat_view(Z), flat_view(A)
    if tasks == 1:
        scale_by_derivative(flat_d, flat_z, flat_a, act)
    else:
        for t in prange(tasks):
            lo, hi = _span(t, tasks, size)
            scale_by_derivative(flat_d[lo:hi], flat_z[lo:hi], flat_a[lo:hi], act)


def _weight_gradient(A_prev, D, gW, gb):
    """``weight_gradient`` without its argument checks: ``gW = A_prev.T @ D``, ``gb = D.sum(0)``."""
    A_prev = borrowed(A_prev)
    D = borrowed(D)
    gW = borrowed(gW)
    gb = borrowed(gb)
    n, d_in = A_prev.shape
    d_out = D.shape[1]
    if D.shape[0] != n or gW.shape[0] != d_in or gW.shape[1] != d_out or gb.shape[0] != d_out:
        raise ValueError("weight_gradient: need A_prev (n, d_in), D (n, d_out), gW (d_in, d_out), gb (d_out,)")
    if n == 1:  # an outer product: a plain loop beats gemm with k = 1
        tasks = min(_task_count(d_in * d_out), d_in)
        if tasks == 1:
            lo, hi = _span(0, 1, d_in)
            _outer_rows(A_prev[0], D[0], gW, lo, hi)
        else:
            for t in prange(tasks):
                lo, hi = _span(t, tasks, d_in)
                _outer_rows(A_prev[0], D[0], gW, lo, hi)
    else:
        np.dot(A_prev.T, D, gW)
    if n == 0:
        gb[:] = 0
        return
    tasks = max(1, min(_task_count(n * d_out), d_out // _MIN_COLUMNS))  # whole vectors of columns per task
    if tasks == 1:
        lo, hi = _span(0, 1, d_out)
        _column_sums(D, gb, lo, hi)
    else:
        for t in prange(tasks):
            lo, hi = _span(t, tasks, d_out)
            _column_sums(D, gb, lo, hi)


def backward_product(rows, d_in, d_out, small_matrix_blas):
    """How the training driver runs a layer's backward product ``D @ W.T``: a ``layout.BACKWARD_*`` code.

    Parameters
    ----------
    rows : int
        Rows per chunk (the product's ``n``).
    d_in, d_out : int
        The layer's widths (``W`` is ``(d_in, d_out)``; ``D`` is ``(n, d_out)``).
    small_matrix_blas : bool
        Whether BLAS runs small-matrix kernels
        (:func:`.threads.blas_has_small_matrix_kernels`). Without them the
        transposed operand was as fast as either copy, or faster, at every
        shape measured, so no copy is made.
    """
    if not small_matrix_blas:
        return BACKWARD_TRANSPOSED
    if d_out <= TRANSPOSED_OUTPUTS:
        return BACKWARD_COPY_WEIGHTS
    if rows <= _COPY_DELTAS_ROWS and rows * d_in * d_out <= _COPY_DELTAS_PRODUCT:
        return BACKWARD_COPY_DELTAS
    return BACKWARD_TRANSPOSED


_dense_forward, _dense_forward_parallel = serial_and_parallel(_dense_forward)
_backprop_delta, _backprop_delta_parallel = serial_and_parallel(_backprop_delta)
_weight_gradient, _weight_gradient_parallel = serial_and_parallel(_weight_gradient)


# ----------------------------------------------------------------------------- the public, checked kernels
# They keep the GIL when called from Python (nogil=False): Python may call them many times on small arrays, where
# releasing and retaking the GIL costs more than it gains (see compile.jit).
@jit(nogil=False)
def dense_forward(X, W, b, act, Z, A):
    """Dense layer forward pass: ``Z = X @ W + b``, ``A = act(Z)``.

    Parameters
    ----------
    X : ndarray, shape (n, d_in)
        The layer's input (the previous layer's activations).
    W : ndarray, shape (d_in, d_out)
        Weights.
    b : ndarray, shape (d_out,)
        Bias.
    act : int
        Activation code, e.g. ``fastbp.kernels.RELU``.
    Z : ndarray, shape (n, d_out)
        Output: the pre-activation.
    A : ndarray, shape (n, d_out)
        Output: the activation. May be the same array as ``Z``.

    Raises
    ------
    TypeError
        When the call is compiled: an argument that is not a C-contiguous
        float32/float64 array of its number of dimensions, arrays of two
        dtypes, a read-only output, or an ``act`` that is not an integer.
    ValueError
        ``act`` is not an activation code; ``Z`` or ``A`` shares memory with an
        input (or ``A`` overlaps ``Z`` without being ``Z``); a shape mismatch.
        Nothing is written.

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import kernels
    >>> X = np.array([[1.0, 2.0]]); W = np.array([[1.0, -1.0], [0.5, -0.5]]); b = np.zeros(2)
    >>> Z = np.empty((1, 2)); A = np.empty((1, 2))
    >>> kernels.dense_forward(X, W, b, kernels.RELU, Z, A)
    >>> Z, A
    (array([[ 2., -2.]]), array([[2., 0.]]))
    """
    check_dense_forward(X, W, b, act, Z, A)
    _dense_forward(X, W, b, act, Z, A)


@jit(nogil=False)
def dense_forward_parallel(X, W, b, act, Z, A):
    """:func:`dense_forward` with its elementwise passes split across threads (same arguments, same results)."""
    check_dense_forward(X, W, b, act, Z, A)
    _dense_forward_parallel(X, W, b, act, Z, A)


@jit(nogil=False)
def backprop_delta(D_next, W_next, Z, A, act, D):
    """Back-propagate a delta through a layer: ``D = (D_next @ W_next.T) * act'(Z)``.

    ``D_next`` is the delta of the layer above, ``W_next`` its weights; ``Z`` and
    ``A = act(Z)`` are this layer's pre-activation and activation. The
    derivative reads ``Z`` or ``A``, whichever the activation needs.

    Parameters
    ----------
    D_next : ndarray, shape (n, d_next)
    W_next : ndarray, shape (d, d_next)
    Z : ndarray, shape (n, d)
    A : ndarray, shape (n, d)
    act : int
        This layer's activation code.
    D : ndarray, shape (n, d)
        Output: this layer's delta. Must not share memory with any input.

    Raises
    ------
    TypeError, ValueError
        As for :func:`dense_forward`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import kernels
    >>> D_next = np.array([[1.0, 2.0]]); W_next = np.array([[1.0, 1.0], [3.0, -1.0]])
    >>> Z = np.array([[0.5, -0.5]]); A = np.maximum(Z, 0); D = np.empty((1, 2))
    >>> kernels.backprop_delta(D_next, W_next, Z, A, kernels.RELU, D)
    >>> D
    array([[3., 0.]])
    """
    check_backprop_delta(D_next, W_next, Z, A, act, D)
    _backprop_delta(D_next, W_next, Z, A, act, D, None, None)


@jit(nogil=False)
def backprop_delta_parallel(D_next, W_next, Z, A, act, D):
    """:func:`backprop_delta` with its elementwise pass split across threads (same arguments, same results)."""
    check_backprop_delta(D_next, W_next, Z, A, act, D)
    _backprop_delta_parallel(D_next, W_next, Z, A, act, D, None, None)


@jit(nogil=False)
def weight_gradient(A_prev, D, gW, gb):
    """Weight and bias gradients of a layer: ``gW = A_prev.T @ D``, ``gb = D.sum(0)``.

    Parameters
    ----------
    A_prev : ndarray, shape (n, d_in)
        The layer's input.
    D : ndarray, shape (n, d_out)
        The layer's delta, ``dJ/dZ`` (already carrying the mean-reduction factor).
    gW : ndarray, shape (d_in, d_out)
        Output: weight gradient (overwritten, not accumulated).
    gb : ndarray, shape (d_out,)
        Output: bias gradient (overwritten). ``gW`` and ``gb`` must not share
        memory with the inputs or with each other.

    Raises
    ------
    TypeError, ValueError
        As for :func:`dense_forward`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import kernels
    >>> A_prev = np.array([[1.0, 2.0], [3.0, 4.0]]); D = np.array([[1.0], [-1.0]])
    >>> gW = np.empty((2, 1)); gb = np.empty(1)
    >>> kernels.weight_gradient(A_prev, D, gW, gb)
    >>> gW.ravel(), gb
    (array([-2., -2.]), array([0.]))
    """
    check_weight_gradient(A_prev, D, gW, gb)
    _weight_gradient(A_prev, D, gW, gb)


@jit(nogil=False)
def weight_gradient_parallel(A_prev, D, gW, gb):
    """:func:`weight_gradient` with its outer product and bias sums split across threads (same arguments, same
    results)."""
    check_weight_gradient(A_prev, D, gW, gb)
    _weight_gradient_parallel(A_prev, D, gW, gb)
