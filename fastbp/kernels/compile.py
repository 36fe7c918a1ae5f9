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

Whether a function's code for some argument types is in the cache, without
compiling it, is read from Numba's private cache index
(``FunctionCache._index_key`` and ``IndexDataCacheFile._load_index``):
:func:`is_cached`, with which the trainers find a warmed-up general driver
(:mod:`.variants`). Without those internals it answers "not cached".

A cache file can be damaged (a full disk, a killed process, a copy gone
wrong), and Numba would then fail in every later process: unpickling errors,
``EOFError``, LLVM failing to parse the code. fastbp's kernels therefore keep
their cache through :class:`numba.core.caching.FunctionCache` subclasses of
their own: each data file carries a SHA-256 digest of its contents (so a
flipped byte is found before the code is loaded, not run), and an entry that
cannot be read is deleted, with one ``RuntimeWarning`` per process, and
compiled again.

The GIL
-------
Functions are compiled with ``nogil=True`` by default: a training epoch called
from Python releases the GIL while it runs, so other Python threads run
beside it and a busy one does not slow it down. The public kernels, which
Python may call many times on small arrays, keep the GIL (``jit(nogil=False)``).
:func:`fastbp.kernels.threads.install_region_launcher` keeps the parallel
regions inside fastbp's functions from waiting for the GIL; it is installed
when this module is imported, before anything is compiled.
"""

import glob
import hashlib
import os
import pickle
import threading
import types
import warnings

import numba

from .. import _settings
from .threads import install_region_launcher

_KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))
_PACKAGE_DIR = os.path.dirname(_KERNEL_DIR)
_cache_warned = False
_package_stamp = None
_damaged_cache_warned = False
_damaged_cache_lock = threading.Lock()
_cache_classes = None


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


class DamagedCacheFile(Exception):
    """A cache file of a fastbp kernel that cannot be read (an index that does not load, a data file whose digest
    does not match its contents)."""


_DATA_MAGIC = b"fastbp cached kernel, sha256\n"
_DIGEST_SIZE = 32


def _warn_damaged_cache(cache_path, exc):
    """One ``RuntimeWarning`` per process, naming the cache directory and the first error."""
    global _damaged_cache_warned
    with _damaged_cache_lock:
        if _damaged_cache_warned:
            return
        _damaged_cache_warned = True
    detail = (str(exc).strip().splitlines() or [""])[0][:200]
    warnings.warn(
        f"fastbp: dropped damaged compiled-kernel cache files in {cache_path} ({type(exc).__name__}: {detail}); "
        "compiling those kernels again and rewriting their cache entries.",
        RuntimeWarning,
        stacklevel=2,
    )


def _make_cache_classes():
    """fastbp's :class:`~numba.core.caching.FunctionCache` and index/data file subclasses (built on first use)."""
    from numba.core import caching

    class CheckedIndexDataCacheFile(caching.IndexDataCacheFile):
        """Numba's index and data files, with a digest in each data file and damage reported as one exception."""

        def _load_index(self):
            try:
                overloads = super()._load_index()
            except Exception as exc:  # any unpickling failure: EOFError, UnpicklingError, UnicodeDecodeError, ...
                raise DamagedCacheFile(f"{self._index_path}: {type(exc).__name__}: {exc}") from exc
            if not isinstance(overloads, dict):
                raise DamagedCacheFile(f"{self._index_path}: not an index")
            return overloads

        def _save_data(self, name, data):
            payload = self._dump(data)
            with self._open_for_write(self._data_path(name)) as f:
                f.write(_DATA_MAGIC + hashlib.sha256(payload).digest() + payload)

        def _load_data(self, name):
            path = self._data_path(name)
            with open(path, "rb") as f:
                raw = f.read()
            start = len(_DATA_MAGIC) + _DIGEST_SIZE
            payload = raw[start:]
            if raw[:len(_DATA_MAGIC)] != _DATA_MAGIC or hashlib.sha256(payload).digest() != raw[len(_DATA_MAGIC):start]:
                raise DamagedCacheFile(f"{path}: its digest does not match its contents")
            return pickle.loads(payload)

        def drop(self):
            """Delete this function's index and data files (what cannot be deleted is left)."""
            base = self._index_name[:-len(".nbi")]
            paths = [self._index_path] + glob.glob(os.path.join(glob.escape(self._cache_path),
                                                                glob.escape(base) + ".*.nbc"))
            for path in paths:
                try:
                    os.remove(path)
                except OSError:
                    pass

    class RecoveringFunctionCache(caching.FunctionCache):
        """A kernel's cache that drops a damaged entry and lets Numba compile it again."""

        def _load_overload(self, sig, target_context):
            try:
                return super()._load_overload(sig, target_context)
            except Exception as exc:  # damage shows as any error of unpickling, or of LLVM loading the code
                self._drop(exc)
                return None

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except DamagedCacheFile as exc:  # the index went bad after it was loaded
                self._drop(exc)
                try:
                    super().save_overload(sig, data)
                except DamagedCacheFile:
                    pass  # it could not be deleted: the kernel stays compiled in memory only

        def _drop(self, exc):
            _warn_damaged_cache(self._cache_path, exc)
            self._cache_file.drop()

    return CheckedIndexDataCacheFile, RecoveringFunctionCache


def _guard_cache(dispatcher):
    """Give a fastbp dispatcher's on-disk cache fastbp's checked, recovering classes (Numba's own stay as they are)."""
    global _cache_classes
    try:
        from numba.core import caching
    except ImportError:
        return
    cache = getattr(dispatcher, "_cache", None)
    if type(cache) is not getattr(caching, "FunctionCache", None):
        return
    locator = getattr(getattr(cache, "_impl", None), "locator", None)
    if not type(locator).__name__.startswith("Fastbp") or type(cache._cache_file) is not caching.IndexDataCacheFile:
        return
    if _cache_classes is None:
        _cache_classes = _make_cache_classes()
    cache._cache_file.__class__, cache.__class__ = _cache_classes


if _settings.CACHE:
    _install_cache_locators()
install_region_launcher()


def jit(func=None, *, parallel=False, inline="never", nogil=True):
    """Compile ``func`` with fastbp's flags (fastmath, cache, nogil) in nopython mode.

    Parameters
    ----------
    func : callable, optional
        The Python function to compile. Without it, returns a decorator.
    parallel : bool, default False
        Compile with ``parallel=True`` so that ``numba.prange`` loops run on
        threads. With ``False`` the same body runs serially.
    inline : {"never", "always"}, default "never"
        Numba IR inlining, for small helpers called from the kernels.
    nogil : bool, default True
        Release the GIL while the function runs when it is called from
        Python (it matters for that outermost call only). ``False`` is for
        functions that Python calls many times on small work, the public
        kernels: releasing the GIL costs a little on every call, and beside
        a busy Python thread taking it back waits a switch interval.

    Returns
    -------
    numba.core.registry.CPUDispatcher
        The compiled dispatcher (compilation itself happens on first call).
    """
    if func is None:
        return lambda f: jit(f, parallel=parallel, inline=inline, nogil=nogil)
    # no_cfunc_wrapper: no C-callable wrapper, which only a first-class function value of the kernel (a function
    # stored in a tuple, say) would use, and whose compilation every cold start paid. (Numba's no_cpython_wrapper
    # would save more for the inner passes, but a Python call of such a function crashes the interpreter.)
    options = dict(fastmath=_settings.FASTMATH, parallel=parallel, inline=inline, error_model="numpy", nogil=nogil,
                   no_cfunc_wrapper=True)
    if _settings.CACHE:
        try:
            dispatcher = numba.njit(cache=True, **options)(func)
            _guard_cache(dispatcher)
            return dispatcher
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


def argument_types(args):
    """The Numba types a dispatcher compiles ``args`` for (a key of its ``overloads``), or None.

    Parameters
    ----------
    args : sequence
        Arguments as a call from Python passes them.

    Returns
    -------
    tuple of numba types, or None
        None when an argument has no Numba type.
    """
    from numba.core.typing.typeof import Purpose, typeof

    try:
        found = tuple(typeof(a, Purpose.argument) for a in args)
    except ValueError:  # Numba cannot type it
        return None
    return None if any(t is None for t in found) else found


def is_cached(dispatcher, argtypes):
    """Whether ``dispatcher``'s on-disk cache holds code for the argument types ``argtypes``.

    Parameters
    ----------
    dispatcher : numba dispatcher
    argtypes : tuple of numba types
        As :func:`argument_types` gives them.

    Returns
    -------
    bool
        Read from the index file at each call (the caller keeps its answer).
    """
    try:  # Numba's private cache index (see the module docstring); absent or unreadable: not cached
        cache = dispatcher._cache
        return cache._index_key(argtypes, dispatcher.targetctx.codegen()) in cache._cache_file._load_index()
    except Exception:
        return False


def specialised(func, suffix, **bindings):
    """A copy of the Python function ``func`` named ``<name><suffix>``, with some of its globals rebound.

    The copy has its own name, so that once compiled it gets its own cache
    entries (Numba's cache index knows a function by its name, not by the
    globals it was compiled with).

    Parameters
    ----------
    func : function
        A plain Python function (``dispatcher.py_func`` for a compiled one).
    suffix : str
        Appended to its name and qualified name.
    **bindings
        Global names of ``func`` and what they mean in the copy.

    Returns
    -------
    function
        The copy, not compiled.
    """
    namespace = func.__globals__
    if bindings:
        namespace = dict(namespace)
        namespace.update(bindings)
    copy = types.FunctionType(func.__code__, namespace, func.__name__ + suffix, func.__defaults__, func.__closure__)
    copy.__qualname__ = func.__qualname__ + suffix
    copy.__doc__ = func.__doc__
    copy.__module__ = func.__module__
    return copy


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
    return jit(func), jit(specialised(func, "_parallel"), parallel=True)
