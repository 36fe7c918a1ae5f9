"""Cheap reshaped views of C-contiguous arrays, for use inside njit code.

``a.reshape(...)`` in Numba goes through a general no-copy check (a call that
normalises the shape and walks the strides). A training step takes some
twenty such views per minibatch, which counts on small networks. A
C-contiguous array needs none of that work: its view is its data pointer with
new shape and strides. ``matrix_view`` and ``flat_view`` build exactly that.
Both accept C-contiguous arrays only (as ``reshape`` in Numba does).
``borrowed`` strips an argument array of its reference count, so that the
views taken of it count none either (see its docstring).

Numba removes a store into an array as dead when it cannot see that the array
aliases a live one. It knows that ``reshape`` returns a view of its input, but
not these functions, so each is registered below as returning an alias of its
first argument (without that, ``matrix_view(v, r, c)[i, j] = x`` was dropped
once the call was inlined), and ``borrowed`` too. This uses Numba's private
``numba.core.ir_utils.alias_func_extensions`` (see the contributor notes).
"""

from numba import types
from numba.core import cgutils, ir_utils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array, populate_array


def _view_codegen(context, builder, sig, args, dims):
    """A C-contiguous view of ``args[0]``'s data with shape ``dims`` (LLVM ``intp`` values)."""
    src = make_array(sig.args[0])(context, builder, args[0])
    dst = make_array(sig.return_type)(context, builder)
    strides = [src.itemsize]
    for extent in reversed(dims[1:]):
        strides.insert(0, builder.mul(strides[0], extent))
    populate_array(dst, data=src.data, shape=cgutils.pack_array(builder, dims),
                   strides=cgutils.pack_array(builder, strides), itemsize=src.itemsize,
                   meminfo=src.meminfo, parent=src.parent)
    return impl_ret_borrowed(context, builder, sig.return_type, dst._getvalue())


@intrinsic
def _c_matrix(typingctx, vec, rows, cols):
    if not (isinstance(vec, types.Array) and vec.ndim == 1 and vec.layout == "C"):
        return None

    def codegen(context, builder, sig, args):
        dims = [context.cast(builder, args[i], sig.args[i], types.intp) for i in (1, 2)]
        return _view_codegen(context, builder, sig, args, dims)

    return vec.copy(ndim=2, layout="C")(vec, rows, cols), codegen


@intrinsic
def _c_flat(typingctx, mat):
    if not (isinstance(mat, types.Array) and mat.ndim >= 1 and mat.layout == "C"):
        return None

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        return _view_codegen(context, builder, sig, args, [src.nitems])

    return mat.copy(ndim=1, layout="C")(mat), codegen


def matrix_view(vec, rows, cols):
    """The first ``rows * cols`` elements of the 1-D array ``vec`` as a ``(rows, cols)`` C-contiguous view.

    Raises ``ValueError`` when ``vec`` holds fewer than ``rows * cols``
    elements or a count is negative.
    """
    return vec[:rows * cols].reshape((rows, cols))


@overload(matrix_view)
def _matrix_view_overload(vec, rows, cols):
    if not (isinstance(vec, types.Array) and vec.ndim == 1 and vec.layout == "C"):
        raise TypeError(f"matrix_view needs a C-contiguous 1-D array, got {vec}")

    def impl(vec, rows, cols):
        if rows < 0 or cols < 0 or rows * cols > vec.shape[0]:
            raise ValueError("matrix_view: the vector holds fewer than rows * cols elements")
        return _c_matrix(vec, rows, cols)

    return impl


def flat_view(mat):
    """All of ``mat`` as a 1-D view (C order), without the cost of ``reshape`` for C-contiguous arrays."""
    return mat.reshape(mat.size)


@overload(flat_view)
def _flat_view_overload(mat):
    if not (isinstance(mat, types.Array) and mat.layout == "C"):
        raise TypeError(f"flat_view needs a C-contiguous array, got {mat}")
    return lambda mat: _c_flat(mat)


def _aliases_first_argument(lhs, args, alias_map, arg_aliases):
    ir_utils._add_alias(lhs, args[0].name, alias_map, arg_aliases)


@intrinsic
def borrowed(typingctx, arr):
    """``arr`` itself, with no reference count: its views then cost no atomic instructions.

    Numba counts references to an array's memory, and every view (a slice,
    a row, ``matrix_view``) adds one and drops it again: two atomic
    instructions of some 20 cycles each, which added up to a third of a
    small network's training step. A borrowed array has a null meminfo (as
    Numba's ``carray`` has), so that neither it nor its views count
    anything. It does not keep its memory alive: borrow only arguments of
    the running function (its caller holds them), never return one, and
    assign it to a name of its own (``x = borrowed(x)``; Numba's alias
    analysis, which keeps stores into it alive, does not follow tuples). A
    value that is not an array is returned as it is. (An intrinsic, not an
    overload: an overload would compile a function for every array type.)
    """
    def codegen(context, builder, sig, args):
        if not isinstance(sig.args[0], types.Array):
            return impl_ret_borrowed(context, builder, sig.return_type, args[0])  # the caller owns a reference
        src = make_array(sig.args[0])(context, builder, args[0])
        dst = make_array(sig.return_type)(context, builder)
        populate_array(dst, data=src.data, shape=src.shape, strides=src.strides, itemsize=src.itemsize,
                       meminfo=None, parent=None)
        return dst._getvalue()

    return arr(arr), codegen


for _name in ("matrix_view", "flat_view", "_c_matrix", "_c_flat", "borrowed"):
    ir_utils.alias_func_extensions[(_name, __name__)] = _aliases_first_argument

