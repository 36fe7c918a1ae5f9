"""Checks and conversions of user input, with errors that say what was expected and what came."""

import numbers

import numpy as np


def as_positive_int(name, value):
    """``value`` as an int >= 1, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _as_float_array(values, name, dtype):
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be read as a numeric array: {exc}") from None
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numeric; dtype {arr.dtype} could not be converted to float") from None
    return np.ascontiguousarray(arr, dtype=dtype)


def as_features(X, n_features, dtype, what=""):
    """Inputs as a C-contiguous ``(n, n_features)`` array of ``dtype``, finite, with ``n >= 1``."""
    name = f"{what}X"
    X = _as_float_array(X, name, dtype)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, {n_features}), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 samples")
    if X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features but the model's input layer has {n_features}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or Inf")
    return X


def as_targets(y, n, k, loss, dtype, what=""):
    """Targets as C-contiguous ``(n, k)`` rows of ``dtype``, checked against the loss.

    Softmax cross-entropy takes integer labels ``(n,)`` in ``[0, k)``, one-hot
    encoded here, or non-negative probability rows ``(n, k)``. Binary
    cross-entropy takes values in ``[0, 1]``; mse any finite values. With
    ``k == 1``, a 1-D ``y`` of length ``n`` is taken as a column.
    """
    name = f"{what}y"
    try:
        raw = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be read as an array: {exc}") from None
    if raw.ndim == 0 or raw.shape[0] != n:
        raise ValueError(f"{name} must have {n} rows, one per sample of {what}X, got shape {raw.shape}")
    if loss == "softmax_cross_entropy" and raw.ndim == 1:
        if raw.dtype.kind not in "biuf":
            raw = _as_float_array(raw, name, np.float64)
        if raw.dtype.kind == "b":
            raw = raw.astype(np.int64)  # False/True are the labels 0/1 (not a column mask)
        if raw.dtype.kind not in "iu":
            if raw.dtype.kind == "f" and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw)):
                raw = raw.astype(np.int64)
            else:
                raise TypeError(f"softmax_cross_entropy with 1-D {name} needs integer class labels, "
                                f"got dtype {raw.dtype}")
        if raw.min() < 0 or raw.max() >= k:
            raise ValueError(f"{name} labels must lie in [0, {k - 1}] for {k} outputs, "
                             f"got values from {raw.min()} to {raw.max()}")
        T = np.zeros((n, k), dtype=dtype)
        T[np.arange(n), raw] = 1
        return T
    T = _as_float_array(raw, name, dtype)
    if T.ndim == 1 and k == 1:
        T = T.reshape(n, 1)
    if T.ndim != 2 or T.shape[1] != k:
        expected = f"(n, {k})" + (" or (n,)" if k == 1 else "")
        if loss == "softmax_cross_entropy":
            expected += " one-hot/probability rows, or (n,) integer labels"
        raise ValueError(f"{name} must have shape {expected} for the {k}-wide output layer, got {raw.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name} contains NaN or Inf")
    if loss == "binary_cross_entropy" and (T.min() < 0 or T.max() > 1):
        raise ValueError(f"binary_cross_entropy needs {name} in [0, 1], got values from {T.min()} to {T.max()}")
    if loss == "softmax_cross_entropy" and T.min() < 0:
        raise ValueError(f"softmax_cross_entropy targets must be non-negative (one-hot or probabilities), "
                         f"got a minimum of {T.min()}")
    return T


def as_sample_weight(sample_weight, n, dtype):
    """Sample weights as a C-contiguous ``(n,)`` array of ``dtype``: finite, non-negative, not all zero.

    ``None`` stays ``None`` (every sample weighs 1).
    """
    if sample_weight is None:
        return None
    w = _as_float_array(sample_weight, "sample_weight", dtype)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},), one weight per sample, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or Inf")
    if w.min() < 0:
        raise ValueError(f"sample_weight must be non-negative, got a minimum of {w.min()}")
    if not w.any():
        raise ValueError("sample_weight is zero for every sample: there is nothing to learn from")
    return w


def as_penalty(name, value):
    """``value`` as a finite float >= 0, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite real number >= 0, got {value!r}")
    return float(value)
