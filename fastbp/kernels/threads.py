"""Threads: the Numba threading layer of the parallel kernels, the BLAS threads beside them, the GIL.

The default OpenMP layer spins its idle threads after each parallel region,
and those spinning threads starve OpenBLAS when it runs next. TBB launches a
region as fast and does not spin, so :func:`configure_threading` prefers it;
without TBB, OpenMP is used with ``GOMP_SPINCOUNT`` lowered (unless already
set). :func:`blas_threads` limits the BLAS that Numba's ``np.dot`` calls
while fastbp's own threads run, so the two never oversubscribe the cores.
The performance page has the measurements behind both choices.

Several Python threads may train at once. The BLAS thread count is one
setting for the whole process, so :func:`blas_threads` counts the trainings
in progress: the first to start saves the count and sets it, the last to
finish restores it. Parallel epochs themselves take turns
(:data:`parallel_epochs`): each already uses every core.

The GIL
-------
Numba launches every parallel region through a small generated kernel that
takes the GIL if the calling thread does not hold it, releases it for the
region, and takes it back afterwards. Taking the GIL while another Python
thread is busy waits for that thread's switch interval (5 ms by default), so
a parallel epoch of a few thousand regions ran many times slower next to a
busy thread. fastbp's training drivers are compiled with ``nogil=True`` (they
hold no GIL while they run), and :func:`install_region_launcher` makes the
regions in fastbp's own code release and retake the GIL only when the calling
thread holds it (``PyGILState_Check``), so without it they never wait for it.
This uses private Numba code generation (see the contributor notes).
"""

import contextlib
import ctypes
import glob
import os
import sys
import threading

import numba

from .. import _settings

_threading_lock = threading.Lock()
_threading_done = False
_blas_search_lock = threading.Lock()
_blas_functions = None  # (set_num_threads, get_num_threads), () where none was found, None before the search


def _preload_tbb():
    """Load the TBB library shipped by the ``tbb`` wheel so Numba's tbb layer can find it.

    pip installs ``libtbb.so.12`` into ``<prefix>/lib``, which is not on the
    loader's search path inside a virtual environment. Loading it globally
    first lets Numba's ``tbbpool`` extension resolve it by its soname.
    """
    if not sys.platform.startswith("linux"):
        return False
    for prefix in (sys.prefix, sys.base_prefix):
        path = os.path.join(prefix, "lib", "libtbb.so.12")
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return True
            except OSError:
                return False
    return False


def _tbb_usable():
    _preload_tbb()
    try:
        import numba.np.ufunc.tbbpool  # noqa: F401  (a private module: see the contributor notes)
    except ImportError:
        return False
    return True


def configure_threading():
    """Choose Numba's threading layer for fastbp's parallel code, once.

    TBB is preferred where its library loads: it starts a parallel region
    quickly and its idle threads do not spin, where OpenMP's spinning threads
    would slow down the OpenBLAS calls next to each region. Without TBB,
    OpenMP is used with ``GOMP_SPINCOUNT`` lowered (unless already set).

    A user who sets ``NUMBA_THREADING_LAYER`` keeps their choice. The choice
    only takes effect before the first parallel region of the process runs.

    Returns
    -------
    str
        The threading layer configured (``numba.config.THREADING_LAYER``).
    """
    global _threading_done
    with _threading_lock:
        if _threading_done:
            return numba.config.THREADING_LAYER
        _threading_done = True
        if "NUMBA_THREADING_LAYER" in os.environ:
            if numba.config.THREADING_LAYER in ("tbb", "default", "threadsafe"):
                _preload_tbb()  # so that a layer which may pick TBB finds the pip-installed library
            return numba.config.THREADING_LAYER
        layer = _settings.THREADING_LAYER
        if layer == "auto":
            layer = "tbb" if _tbb_usable() else "omp"
        elif layer == "tbb":
            _preload_tbb()
        if layer == "omp":
            os.environ.setdefault("GOMP_SPINCOUNT", "10000")
        numba.config.THREADING_LAYER = layer
        return layer


def _find_blas_thread_functions():
    """``(set_num_threads, get_num_threads)`` of the OpenBLAS that Numba's ``np.dot`` calls, or None.

    Numba calls BLAS through ``scipy.linalg.cython_blas``, which is SciPy's own
    OpenBLAS (``scipy.libs/libscipy_openblas*``), not NumPy's copy.
    """
    global _blas_functions
    if _blas_functions is None:
        with _blas_search_lock:  # two trainings starting at once must both find them
            if _blas_functions is None:
                _blas_functions = _search_blas_thread_functions()
    return _blas_functions or None


def _search_blas_thread_functions():
    found = _openblas_library()
    if found is None:
        return ()
    lib, prefix = found
    setter = getattr(lib, prefix + "set_num_threads")
    getter = getattr(lib, prefix + "get_num_threads")
    setter.argtypes, setter.restype = [ctypes.c_int], None
    getter.argtypes, getter.restype = [], ctypes.c_int
    return (setter, getter)


def _openblas_library():
    """``(library, symbol prefix)`` of SciPy's OpenBLAS, the one Numba's ``np.dot`` calls, or None."""
    try:
        import scipy
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library)
    except ImportError:
        return None
    libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "*openblas*.so*"))):
        try:
            # PyDLL: called with the GIL held. A CDLL call releases the GIL and must take it back afterwards,
            # which beside a busy Python thread waits a switch interval, three times an epoch.
            lib = ctypes.PyDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            if getattr(lib, prefix + "set_num_threads", None) is not None and \
                    getattr(lib, prefix + "get_num_threads", None) is not None:
                return lib, prefix
    return None


# OpenBLAS's kernel sets with small-matrix gemm kernels (which skip packing the operands) on x86-64.
_SMALL_MATRIX_CORES = ("skylakex", "cooperlake", "sapphirerapids")
_small_matrix_blas = None


def blas_has_small_matrix_kernels():
    """Whether the OpenBLAS behind Numba's ``np.dot`` runs small-matrix ``gemm`` kernels here.

    OpenBLAS picks its kernels when it loads, from the processor, unless
    ``OPENBLAS_CORETYPE`` forces a set; it names the set it runs
    (``openblas_get_corename``). Its AVX-512 sets multiply small matrices
    without packing them, except with a transposed first operand (in
    column-major terms), which the training driver's backward products then
    avoid (see :func:`fastbp.kernels.dense.backward_product`). False for
    another BLAS, or one that does not say.
    """
    global _small_matrix_blas
    if _small_matrix_blas is None:
        found = _openblas_library()
        name = b""
        if found is not None:
            get = getattr(found[0], found[1] + "get_corename", None)
            if get is not None:
                get.argtypes, get.restype = [], ctypes.c_char_p
                name = get() or b""
        _small_matrix_blas = name.decode("ascii", "replace").lower() in _SMALL_MATRIX_CORES
    return _small_matrix_blas


#: Held around every parallel epoch: concurrent parallel fits take turns, one epoch at a time. Each epoch
#: already runs on every core, and Numba's workqueue threading layer aborts the process when two threads
#: launch parallel regions at once.
parallel_epochs = threading.RLock()

_blas_lock = threading.Lock()
_blas_users = 0  # trainings inside blas_threads right now, in all threads
_blas_saved = None  # the count the first of them found, restored by the last


@contextlib.contextmanager
def blas_threads(n):
    """Run the block with the BLAS behind Numba's ``np.dot`` limited to ``n`` threads.

    The serial backend uses one thread in all, and the parallel backend calls
    BLAS from each of its own threads, so inside training BLAS must not start
    threads of its own (they would oversubscribe the cores). Where SciPy's
    OpenBLAS cannot be found (another BLAS build), this does nothing.

    The count is one setting for the whole process, so the blocks of all
    threads are counted: the first to enter saves the count and sets ``n``,
    the last to leave restores the saved count. While blocks of several
    threads overlap, the count is the first one's ``n`` (fastbp always asks
    for 1), so no training sees it change under it.
    """
    global _blas_users, _blas_saved
    functions = _find_blas_thread_functions()
    if functions is None:
        yield
        return
    setter, getter = functions
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = getter()
            setter(n)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                setter(_blas_saved)
                _blas_saved = None


# ----------------------------------------------------------------------------- parallel regions and the GIL
_lowering = threading.local()  # .fastbp: the parfor being lowered now belongs to a fastbp function


def _is_fastbp_function(lowerer):
    modname = getattr(getattr(lowerer, "fndesc", None), "modname", None) or ""
    return modname == "fastbp" or modname.startswith("fastbp.")


def _build_region_kernel(library, ctx, info, sig, inner_ndim):
    """Numba's ``build_gufunc_kernel`` for a parfor of fastbp's, without waiting for the GIL.

    The same kernel as Numba's (it hands the region to the threading layer's
    ``numba_parallel_for``), except for the GIL: Numba's version takes it
    (``PyGILState_Ensure``), releases it for the region and takes it back,
    which waits for any busy Python thread twice per region when the caller
    runs without the GIL. Here the GIL is released and retaken only when the
    calling thread holds it, as when a user's own jitted code (compiled
    without ``nogil``) calls a parallel kernel; the region's threads take it
    themselves, as before, only to raise an error.
    """
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.np.ufunc.wrappers import _wrapper_info

    byte_ptr_t = ir.PointerType(ir.IntType(8))
    byte_ptr_ptr_t = ir.PointerType(byte_ptr_t)
    intp_t = ctx.get_value_type(types.intp)
    intp_ptr_t = ir.PointerType(intp_t)
    fnty = ir.FunctionType(ir.VoidType(), [byte_ptr_ptr_t, intp_ptr_t, intp_ptr_t, byte_ptr_t])
    wrapperlib = ctx.codegen().create_library("parallelgufuncwrapper")
    mod = wrapperlib.create_ir_module("parallel.gufunc.wrapper")
    lfunc = ir.Function(mod, fnty, name=f".kernel.{id(info.env)}_{info.name}")
    builder = ir.IRBuilder(lfunc.append_basic_block(""))
    args, dimensions, steps, data = lfunc.args
    pyapi = ctx.get_python_api(builder)

    int_t = ir.IntType(32)
    gil_check = cgutils.get_or_insert_function(mod, ir.FunctionType(int_t, []), "PyGILState_Check")
    held = builder.icmp_unsigned("!=", builder.call(gil_check, []), ir.Constant(int_t, 0))
    saved = cgutils.alloca_once_value(builder, ir.Constant(pyapi.voidptr, None))
    with builder.if_then(held):
        builder.store(pyapi.save_thread(), saved)

    array_count = len(sig.args)
    if not isinstance(sig.return_type, types.NoneType):
        array_count += 1
    parallel_for = cgutils.get_or_insert_function(
        mod, ir.FunctionType(ir.VoidType(), [byte_ptr_t] * 5 + [intp_t] * 3), "numba_parallel_for")
    inner = cgutils.get_or_insert_function(mod, fnty, info.name)
    wrapperlib.add_linking_library(info.library)
    get_num_threads = cgutils.get_or_insert_function(mod, ir.FunctionType(ir.IntType(types.intp.bitwidth), []),
                                                     "get_num_threads")
    num_threads = builder.call(get_num_threads, [])
    innerargs = [builder.bitcast(x, byte_ptr_t) for x in (args, dimensions, steps, data)]
    builder.call(parallel_for, [builder.bitcast(inner, byte_ptr_t)] + innerargs
                 + [intp_t(inner_ndim), intp_t(array_count), num_threads])

    with builder.if_then(held):
        pyapi.restore_thread(builder.load(saved))
    builder.ret_void()

    wrapperlib.add_ir_module(mod)
    wrapperlib.add_linking_library(library)
    return _wrapper_info(library=wrapperlib, name=lfunc.name, env=info.env)


def install_region_launcher():
    """Make the parallel regions of fastbp's own functions launch without waiting for the GIL.

    Wraps two private Numba functions, for the parfors of functions defined
    in fastbp's modules only: ``numba.parfors.parfor_lowering.call_parallel_gufunc``
    (to know whose parfor is being lowered) and
    ``numba.np.ufunc.parallel.build_gufunc_kernel`` (to build it with
    :func:`_build_region_kernel`). Every other function's parfors, a user's
    included, compile as Numba builds them. Where either function is missing,
    nothing is changed. Idempotent; compilation itself is not started.
    """
    try:
        from numba.np.ufunc import parallel
        from numba.parfors import parfor_lowering
    except ImportError:
        return False
    call = getattr(parfor_lowering, "call_parallel_gufunc", None)
    build = getattr(parallel, "build_gufunc_kernel", None)
    if call is None or build is None:
        return False
    if getattr(build, "_fastbp_wrapped", False):
        return True

    def call_parallel_gufunc(lowerer, *args, **kwargs):
        outer = getattr(_lowering, "fastbp", False)
        _lowering.fastbp = _is_fastbp_function(lowerer)
        try:
            return call(lowerer, *args, **kwargs)
        finally:
            _lowering.fastbp = outer

    def build_gufunc_kernel(library, ctx, info, sig, inner_ndim):
        if getattr(_lowering, "fastbp", False):
            return _build_region_kernel(library, ctx, info, sig, inner_ndim)
        return build(library, ctx, info, sig, inner_ndim)

    call_parallel_gufunc._fastbp_wrapped = build_gufunc_kernel._fastbp_wrapped = True
    call_parallel_gufunc.__wrapped__, build_gufunc_kernel.__wrapped__ = call, build
    parfor_lowering.call_parallel_gufunc = call_parallel_gufunc
    parallel.build_gufunc_kernel = build_gufunc_kernel
    return True
