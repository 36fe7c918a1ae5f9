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


def as_bool(name, value):
    """``value`` as a bool: ``True`` or ``False`` (NumPy's ``bool_`` too); anything else is a ``TypeError``.

    Truthiness is not enough: ``shuffle="no"`` is a non-empty string, so it
    would read as ``True``.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _describe(arr):
    """What an array is, for an error message: ``a scalar`` or ``a 1-D array of shape (5,)``."""
    if arr.ndim == 0:
        return "a scalar"
    return f"a {arr.ndim}-D array of shape {arr.shape}"


def _as_ndarray(values, name):
    """``values`` read as an ndarray, refusing what NumPy would silently read wrong (None, masked arrays)."""
    if values is None:
        raise TypeError(f"{name} must be an array, got None")
    if np.ma.isMaskedArray(values):
        raise TypeError(f"{name} is a masked array: masked arrays are not supported (their mask would be "
                        "ignored); fill or drop the masked values and pass a plain array")
    try:
        return np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be read as a numeric array: {exc}") from None


def _numeric(arr, name):
    """``arr`` if real and numeric (bool, int, float), other dtypes converted to float64; else a ``TypeError``."""
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    if kind in "mM":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype} (dates or durations); convert them to "
                        "numbers first, e.g. seconds from a reference time")
    if kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError, OverflowError):
            raise TypeError(f"{name} must be numeric; dtype {arr.dtype} could not be converted to float") from None
    return arr


def _to_dtype(arr, name, dtype):
    """Numeric ``arr`` as a C-contiguous array of ``dtype``, all finite, or a ``ValueError`` saying why not.

    Finiteness is judged before the conversion, so a finite value that only
    overflows in ``dtype`` (``1e39`` in float32) is reported as out of range,
    not as NaN or Inf.
    """
    dtype = np.dtype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not np.all(np.isfinite(out)):
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or Inf")
        largest = float(np.max(np.abs(arr.astype(np.float64, copy=False))))
        advice = "use dtype=np.float64 or rescale it" if dtype == np.float32 else "rescale it"
        raise ValueError(f"{name} has values beyond the {dtype.name} range (largest magnitude {largest:.3g}, "
                         f"the {dtype.name} maximum is {np.finfo(dtype).max:.3g}); {advice}")
    return out


def _number(value):
    """A value of a label array for an error message: ``7`` for integers, ``1e+20`` for floats."""
    if isinstance(value, (numbers.Integral, np.integer, np.bool_)):
        return str(int(value))
    return f"{float(value):g}"


def as_features(X, n_features, dtype, what=""):
    """Inputs as a C-contiguous ``(n, n_features)`` array of ``dtype``, finite, with ``n >= 1``."""
    name = f"{what}X"
    expected = f"2-D (n_samples, {n_features})"
    if X is None:
        raise TypeError(f"{name} must be {expected}, got None")
    arr = _numeric(_as_ndarray(X, name), name)
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 1:
            hint = "; for a single sample use X.reshape(1, -1)" + (
                ", for one feature per sample X.reshape(-1, 1)" if n_features == 1 else "")
        raise ValueError(f"{name} must be {expected}, got {_describe(arr)}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 samples")
    if arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features but the model's input layer has {n_features}")
    return _to_dtype(arr, name, dtype)


def as_targets(y, n, k, loss, dtype, what=""):
    """Targets as C-contiguous ``(n, k)`` rows of ``dtype``, checked against the loss.

    Softmax cross-entropy takes integer labels ``(n,)`` in ``[0, k)``, one-hot
    encoded here, or non-negative probability rows ``(n, k)``, used as given
    (not normalised, as ``torch.nn.CrossEntropyLoss`` uses them). Binary
    cross-entropy takes values in ``[0, 1]``; mse any finite values. With
    ``k == 1``, a 1-D ``y`` of length ``n`` is taken as a column.
    """
    name = f"{what}y"
    dtype = np.dtype(dtype)
    if y is None:
        raise TypeError(f"{name} must be an array of targets, one per sample of {what}X, got None")
    raw = _as_ndarray(y, name)
    if raw.ndim == 0 or raw.shape[0] != n:
        got = "a scalar" if raw.ndim == 0 else f"shape {raw.shape}"
        raise ValueError(f"{name} must have {n} rows, one per sample of {what}X, got {got}")
    if loss == "softmax_cross_entropy" and raw.ndim == 1:
        raw = _numeric(raw, name)
        if raw.dtype.kind == "b":
            raw = raw.astype(np.int64)  # False/True are the labels 0/1 (not a column mask)
        if raw.dtype.kind == "f" and not (np.all(np.isfinite(raw)) and np.all(raw == np.round(raw))):
            raise TypeError(f"softmax_cross_entropy with 1-D {name} needs integer class labels, "
                            f"got dtype {raw.dtype}")
        lo, hi = raw.min(), raw.max()
        if lo < 0 or hi >= k:  # checked before any conversion to int64, which would wrap values beyond its range
            raise ValueError(f"{name} labels must lie in [0, {k - 1}] for {k} outputs, "
                             f"got values from {_number(lo)} to {_number(hi)}")
        T = np.zeros((n, k), dtype=dtype)
        T[np.arange(n), raw.astype(np.int64)] = 1
        return T
    arr = _numeric(raw, name)
    if arr.ndim == 1 and k == 1:
        arr = arr.reshape(n, 1)
    if arr.ndim != 2 or arr.shape[1] != k:
        expected = f"(n, {k})" + (" or (n,)" if k == 1 else "")
        if loss == "softmax_cross_entropy":
            expected += " one-hot/probability rows, or (n,) integer labels"
        raise ValueError(f"{name} must have shape {expected} for the {k}-wide output layer, got {raw.shape}")
    T = _to_dtype(arr, name, dtype)
    if loss == "binary_cross_entropy" and (T.min() < 0 or T.max() > 1):
        raise ValueError(f"binary_cross_entropy needs {name} in [0, 1], got values from {T.min()} to {T.max()}")
    if loss == "poisson" and T.min() < 0:
        raise ValueError(f"poisson needs non-negative targets (counts or rates), got a minimum of {T.min()}")
    if loss == "softmax_cross_entropy" and T.min() < 0:
        raise ValueError(f"softmax_cross_entropy targets must be non-negative (one-hot or probabilities), "
                         f"got a minimum of {T.min()}")
    return T


def as_sample_weight(sample_weight, n, dtype):
    """Sample weights as a C-contiguous ``(n,)`` array of ``dtype``: finite, non-negative, not all zero.

    ``None`` stays ``None`` (every sample weighs 1). A positive weight that
    ``dtype`` can only hold as a subnormal number or zero is an error: the
    minibatch mean divides by the weights' sum, which would overflow.
    """
    if sample_weight is None:
        return None
    dtype = np.dtype(dtype)
    raw = _numeric(_as_ndarray(sample_weight, "sample_weight"), "sample_weight")
    if raw.ndim != 1 or raw.shape[0] != n:
        got = "a scalar" if raw.ndim == 0 else f"shape {raw.shape}"
        raise ValueError(f"sample_weight must have shape ({n},), one weight per sample, got {got}")
    w = _to_dtype(raw, "sample_weight", dtype)
    if w.min() < 0:
        raise ValueError(f"sample_weight must be non-negative, got a minimum of {w.min()}")
    tiny = np.finfo(dtype).tiny
    lost = (raw > 0) & (w < tiny)
    if lost.any():
        advice = "rescale them (e.g. divide them by their mean) or use dtype=np.float64" if dtype == np.float32 \
            else "rescale them (e.g. divide them by their mean)"
        raise ValueError(f"sample_weight has positive values as small as {float(raw[lost].min()):.3g}, below the "
                         f"smallest normal {dtype.name} number ({tiny:.3g}): in {dtype.name} they become subnormal "
                         f"or 0 and the weighted mean overflows. Only the ratios of the weights matter, so "
                         f"{advice}")
    if not w.any():
        raise ValueError("sample_weight is zero for every sample: there is nothing to learn from")
    return w


def as_penalty(name, value):
    """``value`` as a finite float >= 0, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite real number >= 0, got {value!r}")
    return float(value)
