"""Small data sets for the demo, examples, tests and benchmarks; no network needed.

``load_digits`` reads the bundled UCI "Optical Recognition of Handwritten
Digits" test set (E. Alpaydin, C. Kaynak, 1998; UCI Machine Learning
Repository, CC BY 4.0): 1,797 images of 8x8 pixels with values 0..16.
The others are generated from a seed.
"""

from importlib import resources

import numpy as np


def load_digits(dtype=np.float32, scale=True):
    """The bundled handwritten digits.

    Parameters
    ----------
    dtype : numpy dtype, default numpy.float32
    scale : bool, default True
        Divide the pixel values (0..16) by 16 so that inputs lie in [0, 1].

    Returns
    -------
    X : ndarray, shape (1797, 64)
    y : ndarray of int64, shape (1797,)
        Digit labels 0..9.

    Examples
    --------
    >>> from fastbp.datasets import load_digits
    >>> X, y = load_digits()
    >>> X.shape, y.shape, int(y.max())
    ((1797, 64), (1797,), 9)
    """
    with resources.files("fastbp").joinpath("data/digits.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as data:
            X = data["images"].astype(dtype)
            y = data["target"].astype(np.int64)
    if scale:
        X /= dtype(16)
    return X, y


def train_test_split(X, y, test_fraction=0.25, seed=0):
    """Shuffle and split into ``X_train, X_test, y_train, y_test``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp.datasets import train_test_split
    >>> Xtr, Xte, ytr, yte = train_test_split(np.arange(8.0).reshape(4, 2), np.arange(4), 0.5)
    >>> Xtr.shape, Xte.shape
    ((2, 2), (2, 2))
    """
    n = len(X)
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]


def make_spirals(n_samples=1000, n_classes=2, noise=0.2, seed=0, dtype=np.float32):
    """Interleaved 2-D spirals, one arm per class.

    Returns
    -------
    X : ndarray, shape (n_samples, 2)
    y : ndarray of int64, shape (n_samples,)

    Examples
    --------
    >>> from fastbp.datasets import make_spirals
    >>> X, y = make_spirals(100, n_classes=3)
    >>> X.shape, sorted(set(y.tolist()))
    ((100, 2), [0, 1, 2])
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % n_classes
    r = rng.uniform(0.05, 1.0, n_samples)
    angle = 3.0 * np.pi * r + 2.0 * np.pi * y / n_classes + rng.normal(0, noise, n_samples)
    X = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    return X.astype(dtype), y.astype(np.int64)


def make_classification(n_samples, n_features, n_classes, seed=0, dtype=np.float32):
    """Gaussian class clusters in ``n_features`` dimensions (a synthetic medium-size task).

    Each class has a random mean; samples are that mean plus unit noise.

    Examples
    --------
    >>> from fastbp.datasets import make_classification
    >>> X, y = make_classification(50, 784, 10)
    >>> X.shape, X.dtype.name
    ((50, 784), 'float32')
    """
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1.0 / np.sqrt(n_features) * 3, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, n_samples)
    X = means[y] + rng.normal(0, 1.0, size=(n_samples, n_features)) * 0.5
    return X.astype(dtype), y.astype(np.int64)
