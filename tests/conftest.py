"""Helpers shared by the test modules: paths, tolerances, random arrays, data and model helpers.

Test modules import them by name (``from conftest import tol, rand``): pytest puts this folder on
``sys.path`` because it holds no ``__init__.py``. Importing this module imports no part of fastbp, so
the CUDA checks (``cuda_checks.py``, run in child processes with their own environment) can use it too.

``programs/`` holds the programs that some tests run in a child process (``sys.executable path
args``); they are not test modules, and pytest does not collect them.
"""

import pathlib

import numpy as np

try:
    from hypothesis import HealthCheck
except ImportError:  # an environment without hypothesis can still run the CUDA checks (``make gpu-check``)
    HealthCheck = None

collect_ignore = ["programs"]

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fastbp"
PROGRAMS = pathlib.Path(__file__).resolve().parent / "programs"

DTYPES = [np.float32, np.float64]
LOSSES = ("mse", "binary_cross_entropy", "softmax_cross_entropy")
#: The output width each loss's test models and data use.
OUT = {"mse": 2, "binary_cross_entropy": 3, "softmax_cross_entropy": 3}

#: Hypothesis runs derandomized and without an example database, so every run checks the same examples.
HYPOTHESIS_SETTINGS = None if HealthCheck is None else dict(
    deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------ arrays, tolerances
def tol(dtype):
    """Tolerances against the reference: float64 ~1e-10 relative, float32 ~1e-5 relative."""
    if dtype == np.float64:
        return dict(rtol=1e-10, atol=1e-12)
    return dict(rtol=1e-5, atol=1e-6)


def rand(rng, shape, dtype, scale=1.0):
    """A C-contiguous array of standard normal values times ``scale``, in ``dtype``."""
    return np.ascontiguousarray((scale * rng.standard_normal(shape)).astype(dtype))


def f64(a):
    return np.asarray(a, dtype=np.float64)


def flat(Ws, bs):
    """Per-layer arrays in the flat layout of ``MLP.theta`` (W row-major, then b, per layer)."""
    return np.concatenate([np.concatenate([W.ravel(), b.ravel()]) for W, b in zip(Ws, bs)])


# ------------------------------------------------------------------------------ data and models
def make_data(loss, n=100, d=5, k=None, seed=0, form="labels"):
    """Inputs and targets for ``loss``; ``form="onehot"`` gives one-hot rows for softmax."""
    k = OUT[loss] if k is None else k
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if loss == "mse":
        y = np.tanh(X[:, :k] * 1.5) + 0.1 * rng.standard_normal((n, k))
    elif loss == "binary_cross_entropy":
        y = (X[:, :k] + 0.3 * rng.standard_normal((n, k)) > 0).astype(np.float64)  # multi-label
    else:
        y = (np.argmax(X[:, :k] + 0.3 * rng.standard_normal((n, k)), axis=1)).astype(np.int64)
        if form == "onehot":
            y = np.eye(k)[y]
    return X, y


def as_rows(loss, y, k):
    """Targets as ``(n, k)`` float64 rows, as the reference takes them."""
    y = np.asarray(y)
    if loss == "softmax_cross_entropy" and y.ndim == 1:
        return np.eye(k)[y]
    return y.astype(np.float64).reshape(len(y), k)


def ref_weights(model):
    """The model's weights as float64 lists for the reference."""
    Ws, bs = model.get_weights()
    return [W.astype(np.float64) for W in Ws], [b.astype(np.float64) for b in bs]


def set_biases(model, value):
    Ws, bs = model.get_weights()
    model.set_weights(Ws, [np.full_like(b, value) for b in bs])


def twin(model_kwargs):
    """Two models made with the same arguments (so, with a seed, the same weights)."""
    import fastbp

    return fastbp.MLP(**model_kwargs), fastbp.MLP(**model_kwargs)
