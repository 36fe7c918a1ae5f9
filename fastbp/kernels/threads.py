"""Threads: the Numba threading layer of the parallel kernels, and the BLAS threads beside them.

The default OpenMP layer spins its idle threads after each parallel region,
and those spinning threads starve OpenBLAS when it runs next. TBB launches a
region as fast and does not spin, so :func:`configure_threading` prefers it;
without TBB, OpenMP is used with ``GOMP_SPINCOUNT`` lowered (unless already
set). :func:`blas_threads` limits the BLAS that Numba's ``np.dot`` calls
while fastbp's own threads run, so the two never oversubscribe the cores.
The performance page has the measurements behind both choices.
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
_blas_functions = None


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
        _blas_functions = ()
        try:
            import scipy
            import scipy.linalg.cython_blas  # noqa: F401  (loads the library)
        except ImportError:
            return None
        libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
        for path in sorted(glob.glob(os.path.join(libs, "*openblas*.so*"))):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("scipy_openblas_", "openblas_"):
                setter = getattr(lib, prefix + "set_num_threads", None)
                getter = getattr(lib, prefix + "get_num_threads", None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    _blas_functions = (setter, getter)
                    return _blas_functions
    return _blas_functions or None


@contextlib.contextmanager
def blas_threads(n):
    """Run the block with the BLAS behind Numba's ``np.dot`` limited to ``n`` threads.

    The serial backend uses one thread in all, and the parallel backend calls
    BLAS from each of its own threads, so inside training BLAS must not start
    threads of its own (they would oversubscribe the cores). Where SciPy's
    OpenBLAS cannot be found (another BLAS build), this does nothing.
    """
    functions = _find_blas_thread_functions()
    if functions is None:
        yield
        return
    setter, getter = functions
    before = getter()
    setter(n)
    try:
        yield
    finally:
        setter(before)
