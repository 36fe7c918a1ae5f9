"""fastbp's settings, read once from the environment when this module is first imported.

Nothing here compiles or loads anything; the modules that act on a setting
(:mod:`fastbp.kernels.compile`, :mod:`fastbp.kernels.threads`, the CUDA
package, the backend choice in :mod:`fastbp.training`) read it from here.

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
FASTBP_VARIANTS
    Which compiled variant of the drivers fits and predictions run (see
    :mod:`fastbp.kernels.variants`): ``auto`` (default: the network's own,
    which compiles only its activations, loss and optimizer, unless the
    general one is compiled already or another network's variant is),
    ``network`` (always the network's own) or ``general`` (always the one
    that serves every network). The two agree to a few ulps, not always bit
    for bit: processes that must give bit-identical results should set the
    same value other than ``auto``.
FASTBP_CUDA_TILE
    Edge of the square tiles of the CUDA matrix-product kernels: a block has
    ``CUDA_TILE ** 2`` threads and two ``CUDA_TILE x CUDA_TILE`` tiles of
    shared memory (default 16, at most 32).
FASTBP_CUDA_THREADS
    Threads per block of the one-dimensional CUDA kernels (row-wise loss,
    reductions, optimizer update, gathers); a power of two up to 1024, for the
    tree reductions (default 256).
FASTBP_CUDA_MIN_WORK
    Multiply-adds per minibatch from which ``backend="auto"`` uses a CUDA GPU
    when one is present (default 50,000,000: a first estimate, not yet
    measured on a GPU).
FASTBP_CUDA_FASTMATH
    ``1`` compiles the CUDA kernels with CUDA fast math (flush-to-zero,
    approximate division and square root); ``0`` (default) keeps IEEE
    division and square root, closer to the CPU results.
"""

import os


def _flag(name, default):
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 0 or 1, got {value!r}")


def _positive_int(name, default):
    raw = os.environ.get(name, str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


def _choice(name, default, choices):
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


FASTMATH = {"reassoc", "contract", "nsz"} if _flag("FASTBP_FASTMATH", "1") else False
CACHE = _flag("FASTBP_CACHE", "1")
THREADING_LAYER = os.environ.get("FASTBP_THREADING_LAYER", "auto").strip().lower()
PARALLEL_MIN_WORK = int(os.environ.get("FASTBP_PARALLEL_MIN_WORK", "2000000"))
VARIANT_CHOICES = ("auto", "network", "general")
VARIANTS = _choice("FASTBP_VARIANTS", "auto", VARIANT_CHOICES)

CUDA_TILE = _positive_int("FASTBP_CUDA_TILE", 16)
CUDA_THREADS = _positive_int("FASTBP_CUDA_THREADS", 256)
CUDA_MIN_WORK = _positive_int("FASTBP_CUDA_MIN_WORK", 50_000_000)
CUDA_FASTMATH = _flag("FASTBP_CUDA_FASTMATH", "0")

if CUDA_TILE * CUDA_TILE > 1024:
    raise ValueError(f"FASTBP_CUDA_TILE must be at most 32 (a block holds at most 1024 threads), got {CUDA_TILE}")
if CUDA_THREADS > 1024 or CUDA_THREADS & (CUDA_THREADS - 1):
    raise ValueError(f"FASTBP_CUDA_THREADS must be a power of two up to 1024, got {CUDA_THREADS}")
