"""How fastbp compiles its kernels: the decorators, their serial/parallel pairs, and the on-disk cache.

Every CPU kernel is compiled through :func:`jit` (or :func:`serial_and_parallel`),
so that the flags (fast math, caching) come from :mod:`fastbp._settings` and
from nowhere else.

The cache
---------
Numba stamps a cached function with its own source file only, so an edit to
a helper in another module (an activation, say) would leave a stale kernel in
the cache. fastbp therefore puts its own cache locators in front of Numba's,
for fastbp's files only, and stamps every kernel with a hash of all the
sources compiled code can depend on (:func:`package_stamp`): any such edit
recompiles everything. This uses a private Numba list,
``numba.core.caching.CacheImpl._locator_classes`` (see the contributor notes).
"""

import hashlib
import os
import types
import warnings

import numba

from .. import _settings

_KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))
_PACKAGE_DIR = os.path.dirname(_KERNEL_DIR)
_cache_warned = False
_package_stamp = None


def package_stamp():
    """A hash of the CPU kernel sources: every CPU kernel's cache stamp.

    It covers the settings module and every ``kernels/*.py`` file; the CUDA
    package (``kernels/cuda/``) is left out, as no CPU kernel imports it.
    """
    global _package_stamp
    if _package_stamp is None:
        digest = hashlib.sha256()
        kernel_dir = os.path.join(_PACKAGE_DIR, "kernels")
        paths = [os.path.join(_PACKAGE_DIR, "_settings.py")] + [
            os.path.join(kernel_dir, name) for name in sorted(os.listdir(kernel_dir)) if name.endswith(".py")]
        for path in paths:
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                digest.update(os.path.basename(path).encode() + b"\0" + f.read())
        _package_stamp = digest.hexdigest()
    return _package_stamp


def _install_cache_locators():
    """Put package-stamped variants of Numba's cache locators first, for fastbp's files only."""
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


if _settings.CACHE:
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
    options = dict(fastmath=_settings.FASTMATH, parallel=parallel, inline=inline, error_model="numpy")
    if _settings.CACHE:
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


def serial_and_parallel(func):
    """Compile one Python body twice: as a serial kernel and as its ``prange``-parallel variant.

    Parameters
    ----------
    func : callable
        A function whose parallel loops use ``numba.prange``.

    Returns
    -------
    serial, parallel : numba dispatchers
        ``serial`` runs ``prange`` as ``range``; ``parallel`` runs it on
        threads. The parallel variant is compiled from a copy of ``func``
        named ``<name>_parallel`` so that the two never share a cache entry
        (Numba's cache index does not record the ``parallel`` flag).
    """
    copy = types.FunctionType(func.__code__, func.__globals__, func.__name__ + "_parallel",
                              func.__defaults__, func.__closure__)
    copy.__qualname__ = func.__qualname__ + "_parallel"
    copy.__doc__ = func.__doc__
    copy.__module__ = func.__module__
    return jit(func), jit(copy, parallel=True)
