"""``python -m fastbp warmup``: compile the common configurations into the on-disk kernel cache.

A Docker image, a CI job or a cluster worker can run it once at build time;
afterwards each configuration it covers starts warm in a fresh process (it
loads compiled code instead of compiling it). Warm-up compiles the general
variants of the drivers (:mod:`fastbp.kernels.variants`), which read the
activation, loss and optimizer at run time, as they read the batch size,
layer widths, sample weights and penalty: one small fit per dtype and backend,
with a validation set, a ``predict`` and a ``loss_and_grad``, compiles
everything those configurations run. A fit finds the general variant in the
cache and uses it, instead of compiling the variant of its own network.

The cache is the one Numba uses: ``NUMBA_CACHE_DIR`` when set, else
``__pycache__`` beside the installed sources (or a per-user directory where
those are read-only). Cache entries are stamped by the sources' content, not
their modification times, so a warm cache stays valid when the installed
files are copied (as ``COPY`` in a Dockerfile does) to the same place.
"""

import time

import numpy as np

from .model import MLP
from .optim import Adam
from .variant_choice import variants

DTYPES = ("float32", "float64")
BACKENDS = ("cpu", "parallel")


def warm_cache(dtypes=DTYPES, backends=BACKENDS, log=print):
    """Compile (or load) every kernel of ``fit``, ``predict`` and ``loss_and_grad`` for these settings.

    Parameters
    ----------
    dtypes : sequence of {"float32", "float64"}
    backends : sequence of {"cpu", "parallel"}
    log : callable
        Receives one progress line per configuration.

    Returns
    -------
    list of tuple
        ``(dtype, backend, seconds)`` for each configuration, in the order run.

    Examples
    --------
    >>> from fastbp.warmup import warm_cache
    >>> [(d, b) for d, b, _ in warm_cache(dtypes=["float64"], backends=["cpu"], log=lambda line: None)]
    [('float64', 'cpu')]
    """
    unknown = [d for d in dtypes if d not in DTYPES] + [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown dtype or backend {', '.join(map(repr, unknown))}: expected dtypes from "
                         f"{', '.join(DTYPES)} and backends from {', '.join(BACKENDS)}")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = rng.integers(0, 2, 40)
    done = []
    total = len(dtypes) * len(backends)
    for dtype in dtypes:
        for backend in backends:
            log(f"[{len(done) + 1}/{total}] {dtype}, backend {backend!r}: fit, predict, loss_and_grad ...")
            t0 = time.perf_counter()
            model = MLP([3, 4, 2], activation="relu", loss="softmax_cross_entropy", dtype=np.dtype(dtype), seed=0)
            with variants("general"):
                model.fit(X, y, epochs=1, batch_size=16, optimizer=Adam(), backend=backend, validation_data=(X, y))
                model.predict(X)
                model.loss_and_grad(X, y)
            seconds = time.perf_counter() - t0
            done.append((dtype, backend, seconds))
            log(f"      done in {seconds:.1f} s")
    return done
