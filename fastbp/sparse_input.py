"""Sparse inputs: a SciPy sparse matrix, checked once and held as the CSR arrays the kernels read."""

import sys

import numpy as np


def is_sparse(X):
    """Whether ``X`` is a SciPy sparse matrix or array (SciPy is imported only if already loaded)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


class CSRInput:
    """A sparse ``(n, d)`` input in CSR form: int64 ``indptr`` and ``indices``, ``data`` in the model dtype.

    Parameters
    ----------
    indptr, indices, data : ndarray
    shape : tuple of int

    Attributes
    ----------
    arrays : tuple
        ``(indptr, indices, data)``, as the compiled drivers take them.
    """

    def __init__(self, indptr, indices, data, shape):
        self.indptr, self.indices, self.data = indptr, indices, data
        self.shape = tuple(shape)
        self.dtype = data.dtype
        self.arrays = (indptr, indices, data)

    @classmethod
    def from_scipy(cls, X, n_features, dtype, what=""):
        """Check and convert a SciPy sparse matrix (CSR, CSC or any other format; CSC is converted).

        Raises
        ------
        ValueError
            For a shape that does not fit, no samples, or values that are
            not finite or beyond the range of ``dtype``.
        """
        name = f"{what}X"
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, {n_features}), got a sparse array of shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{name} is empty: it has 0 samples")
        if X.shape[1] != n_features:
            raise ValueError(f"{name} has {X.shape[1]} features but the model's input layer has {n_features}")
        csr = X.tocsr()
        if csr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be real-valued and numeric, got a sparse matrix of dtype {csr.dtype}")
        data = np.asarray(csr.data)
        if data.size and not np.all(np.isfinite(data)):
            raise ValueError(f"{name} contains NaN or Inf")
        limit = np.finfo(dtype).max
        if data.size and data.dtype.kind == "f" and np.abs(data).max() > limit:
            raise ValueError(f"{name} has values beyond the {np.dtype(dtype).name} range (max {limit:.3g}); "
                             "use dtype=np.float64 or rescale the features")
        indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
        indices = np.ascontiguousarray(csr.indices, dtype=np.int64)
        if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != indices.shape[0]:
            raise ValueError(f"{name} is not a well-formed CSR matrix (its indptr is not non-decreasing from 0)")
        if indices.size and (indices.min() < 0 or indices.max() >= n_features):
            raise ValueError(f"{name} has a column index outside [0, {n_features})")
        return cls(indptr, indices, np.ascontiguousarray(data, dtype=dtype), csr.shape)

    def dense_rows(self, rows):
        """Rows ``rows`` as a dense array (for the NumPy reference backend, a minibatch at a time)."""
        out = np.zeros((len(rows), self.shape[1]), dtype=self.dtype)
        for r, i in enumerate(rows):
            lo, hi = self.indptr[i], self.indptr[i + 1]
            np.add.at(out[r], self.indices[lo:hi], self.data[lo:hi])
        return out

    def __len__(self):
        return self.shape[0]
