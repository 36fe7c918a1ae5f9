"""One place for fastbp's compilation and threading choices.

Every setting is read once from the environment when this module is first
imported; nothing here compiles anything.

Environment variables
---------------------
FASTBP_FASTMATH
    ``1`` (default) compiles the kernels with the LLVM flags ``reassoc``,
    ``contract`` and ``nsz``: float reductions may be re-associated (so they
    vectorise) and multiply-adds fused. ``nnan``/``ninf`` are never set, so
    NaN and Inf still propagate and divergence is still detected. ``0``
    compiles with strict IEEE semantics.
FASTBP_CACHE
    ``1`` (default) caches compiled kernels on disk (Numba's ``cache=True``).
    ``0`` turns caching off. Where no writable cache location exists the
    kernels fall back to in-memory compilation with a warning.
FASTBP_THREADING_LAYER
    The Numba threading layer fastbp selects for its parallel backend when
    the user has not set ``NUMBA_THREADING_LAYER`` themselves: ``auto``
    (default: ``tbb`` when its library can be loaded, else ``omp`` with a
    short spin count), or any layer name Numba accepts.
FASTBP_PARALLEL_MIN_WORK
    Multiply-adds per minibatch above which ``backend="auto"`` chooses the
    parallel backend (default 2,000,000).
FASTBP_CUDA_TILE, FASTBP_CUDA_THREADS, FASTBP_CUDA_MIN_WORK, FASTBP_CUDA_FASTMATH
    The CUDA backend's block sizes, its ``backend="auto"`` threshold and its
    fast-math switch; see the CUDA section at the end of this module.
"""

import contextlib
import ctypes
import hashlib
import os
import sys
import threading
import types
import warnings

import numba


def _flag(name, default):
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 0 or 1, got {value!r}")


FASTMATH = {"reassoc", "contract", "nsz"} if _flag("FASTBP_FASTMATH", "1") else False
CACHE = _flag("FASTBP_CACHE", "1")
THREADING_LAYER = os.environ.get("FASTBP_THREADING_LAYER", "auto").strip().lower()
PARALLEL_MIN_WORK = int(os.environ.get("FASTBP_PARALLEL_MIN_WORK", "2000000"))

_cache_warned = False
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_package_stamp = None


def package_stamp():
    """A hash of the CPU kernel sources (``kernels/*.py`` and this file): every CPU kernel's cache stamp.

    Numba stamps a cached function with its own source file only, so an edit
    to a helper in another module (an activation, say) would leave a stale
    kernel in the cache. Stamping every kernel with all the sources compiled
    code can depend on makes any such edit recompile everything. The CUDA
    modules (``kernels/cuda*.py``) are left out: no CPU kernel imports them.
    """
    global _package_stamp
    if _package_stamp is None:
        digest = hashlib.sha256()
        kernel_dir = os.path.join(_PACKAGE_DIR, "kernels")
        paths = [os.path.abspath(__file__)] + [os.path.join(kernel_dir, name)
                                               for name in sorted(os.listdir(kernel_dir))
                                               if name.endswith(".py") and not name.startswith("cuda")]
        for path in paths:
            with open(path, "rb") as f:
                digest.update(os.path.basename(path).encode() + b"\0" + f.read())
        _package_stamp = digest.hexdigest()
    return _package_stamp


def _install_cache_locators():
    """Put package-stamped twins of Numba's cache locators first, for fastbp's files only."""
    try:
        from numba.core import caching
    except ImportError:  # a Numba without this internal module: its own locators still work
        return

    def stamped(base):
        class Locator(base):
            @classmethod
            def from_function(cls, py_func, py_file):
                if not os.path.abspath(py_file).startswith(_PACKAGE_DIR + os.sep):
                    return None
                return super().from_function(py_func, py_file)

            def get_source_stamp(self):
                return package_stamp()

        Locator.__name__ = Locator.__qualname__ = "Fastbp" + base.__name__
        return Locator

    bases = [getattr(caching, name, None) for name in
             ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")]
    classes = getattr(getattr(caching, "CacheImpl", None), "_locator_classes", None)
    if None in bases or not isinstance(classes, list) or any(c.__name__.startswith("Fastbp") for c in classes):
        return
    classes[:0] = [stamped(base) for base in bases]


if CACHE:
    _install_cache_locators()


def jit(func=None, *, parallel=False, inline="never"):
    """Compile ``func`` with fastbp's flags (fastmath, cache) in nopython mode.

    Parameters
    ----------
    func : callable, optional
        The Python function to compile. Without it, returns a decorator.
    parallel : bool, default False
        Compile with ``parallel=True`` so that ``numba.prange`` loops run on
        threads. With ``False`` the same body runs serially.
    inline : {"never", "always"}, default "never"
        Numba IR inlining, for small helpers called from the kernels.

    Returns
    -------
    numba.core.registry.CPUDispatcher
        The compiled dispatcher (compilation itself happens on first call).
    """
    if func is None:
        return lambda f: jit(f, parallel=parallel, inline=inline)
    options = dict(fastmath=FASTMATH, parallel=parallel, inline=inline, error_model="numpy")
    if CACHE:
        try:
            return numba.njit(cache=True, **options)(func)
        except RuntimeError as exc:  # no writable cache location for this install
            global _cache_warned
            if not _cache_warned:
                warnings.warn(
                    f"fastbp: Numba cannot cache compiled kernels here ({exc}); compiling in memory. "
                    "Set NUMBA_CACHE_DIR to a writable directory to keep compiled kernels.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                _cache_warned = True
    return numba.njit(cache=False, **options)(func)


_threading_lock = threading.Lock()
_threading_done = False


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


def configure_threading():
    """Choose Numba's threading layer for fastbp's parallel code, once.

    The default OpenMP layer spins its idle threads after each parallel region,
    and those spinning threads starve OpenBLAS: measured here, a 256x256 matmul
    right after a ``prange`` region took 8 ms instead of 0.6 ms. TBB launches a
    region as fast (1.5 us) and does not spin, so it is preferred. Without TBB,
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
        layer = THREADING_LAYER
        if layer == "auto":
            layer = "tbb" if _tbb_usable() else "omp"
        elif layer == "tbb":
            _preload_tbb()
        if layer == "omp":
            os.environ.setdefault("GOMP_SPINCOUNT", "10000")
        numba.config.THREADING_LAYER = layer
        return layer


def _tbb_usable():
    _preload_tbb()
    try:
        import numba.np.ufunc.tbbpool  # noqa: F401
    except ImportError:
        return False
    return True


def twins(func):
    """Compile one Python body as a serial and a ``prange``-parallel kernel.

    Parameters
    ----------
    func : callable
        A function whose parallel loops use ``numba.prange``.

    Returns
    -------
    serial, parallel : numba dispatchers
        ``serial`` runs ``prange`` as ``range``; ``parallel`` runs it on
        threads. The parallel twin is compiled from a copy of ``func`` named
        ``<name>_parallel`` so that the two twins never share a cache entry
        (Numba's cache index does not record the ``parallel`` flag).
    """
    copy = types.FunctionType(func.__code__, func.__globals__, func.__name__ + "_parallel",
                              func.__defaults__, func.__closure__)
    copy.__qualname__ = func.__qualname__ + "_parallel"
    copy.__doc__ = func.__doc__
    copy.__module__ = func.__module__
    return jit(func), jit(copy, parallel=True)


_blas_functions = None


def _find_blas_thread_functions():
    """``(set_num_threads, get_num_threads)`` of the OpenBLAS that Numba's ``np.dot`` calls, or None.

    Numba calls BLAS through ``scipy.linalg.cython_blas``, which is SciPy's own
    OpenBLAS (``scipy.libs/libscipy_openblas*``), not NumPy's copy.
    """
    global _blas_functions
    if _blas_functions is None:
        _blas_functions = ()
        try:
            import glob

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


# ----------------------------------------------------------------------------- CUDA
# Read here like every other setting, so that tests can shrink the blocks through the environment.
# Nothing in this section imports numba.cuda: fastbp.kernels.cuda does, and only when asked for.

def _positive_int(name, default):
    raw = os.environ.get(name, str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


#: Edge of the square tiles of the CUDA matrix-product kernels: a block has ``CUDA_TILE ** 2``
#: threads and two ``CUDA_TILE x CUDA_TILE`` tiles of shared memory (``FASTBP_CUDA_TILE``, default 16).
CUDA_TILE = _positive_int("FASTBP_CUDA_TILE", 16)
#: Threads per block of the one-dimensional CUDA kernels (row-wise loss, reductions, optimizer
#: update, gathers); a power of two, for the tree reductions (``FASTBP_CUDA_THREADS``, default 256).
CUDA_THREADS = _positive_int("FASTBP_CUDA_THREADS", 256)
#: Multiply-adds per minibatch from which ``backend="auto"`` uses a CUDA GPU when one is present
#: (``FASTBP_CUDA_MIN_WORK``, default 50,000,000: a first estimate, not yet measured on a GPU).
CUDA_MIN_WORK = _positive_int("FASTBP_CUDA_MIN_WORK", 50_000_000)
#: ``1`` compiles the CUDA kernels with CUDA fast math (flush-to-zero, approximate division and
#: square root); ``0`` (default) keeps IEEE division and square root, closer to the CPU results.
CUDA_FASTMATH = _flag("FASTBP_CUDA_FASTMATH", "0")

if CUDA_TILE * CUDA_TILE > 1024:
    raise ValueError(f"FASTBP_CUDA_TILE must be at most 32 (a block holds at most 1024 threads), got {CUDA_TILE}")
if CUDA_THREADS > 1024 or CUDA_THREADS & (CUDA_THREADS - 1):
    raise ValueError(f"FASTBP_CUDA_THREADS must be a power of two up to 1024, got {CUDA_THREADS}")


def cuda_jit_options(device=False):
    """Keyword arguments for ``numba.cuda.jit``: fastbp's CUDA compilation flags.

    Parameters
    ----------
    device : bool, default False
        ``True`` for a device function. Device functions are inlined into
        their callers at the Numba IR level (``inline="always"``): the shared
        activation, loss and optimizer math then compiles as part of each
        kernel, and no separately compiled device function exists.

    Returns
    -------
    dict
    """
    if device:
        return {"device": True, "inline": "always"}
    return {"fastmath": CUDA_FASTMATH}
