"""scikit-learn's ``MLPClassifier`` on fastbp: labels and their binarisation, the softmax or
logistic outputs, ``partial_fit`` with ``classes``, ``predict``, ``predict_proba`` and accuracy.
"""

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import validate_data

from ._base import _INPUT_DTYPES, _BaseMLP, _store_params
from ._docs import _ATTRIBUTES_DOC, _PARAMS_DOC


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = """A multilayer-perceptron classifier: scikit-learn's ``MLPClassifier``, trained by fastbp.

    Multiclass problems use a softmax output and cross-entropy; binary
    problems one logistic output unit (as scikit-learn), multilabel problems
    one logistic unit per label. See :mod:`fastbp.sklearn` for how the
    parameters map onto fastbp's losses and optimizers.

    Parameters
    ----------""" + _PARAMS_DOC + """

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.""" + _ATTRIBUTES_DOC + """

    Examples
    --------
    >>> from fastbp.datasets import load_digits, train_test_split
    >>> from fastbp.sklearn import MLPClassifier
    >>> X, y = load_digits()
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, seed=0)
    >>> clf = MLPClassifier(hidden_layer_sizes=(64,), tol=1e-3, random_state=0).fit(X_train, y_train)
    >>> clf.predict_proba(X_test).shape
    (449, 10)
    >>> bool(clf.score(X_test, y_test) > 0.95)
    True
    """

    # Pickles and reprs name the public path, fastbp.sklearn.MLPClassifier, which the package re-exports.
    __module__ = "fastbp.sklearn"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, backend="auto", dtype=None):
        _store_params(self, locals())

    @property
    def _fastbp_loss(self):
        lb = getattr(self, "_label_binarizer", None)
        return "softmax_cross_entropy" if lb is not None and lb.y_type_ == "multiclass" else "binary_cross_entropy"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=_INPUT_DTYPES,
                             accept_sparse=("csr", "csc"), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        return X, y, self._label_binarizer.transform(y)

    def _score_model(self, model, X, y, sample_weight):
        Z = model.decision_function(X).astype(np.float64)
        if not np.all(np.isfinite(Z)):
            return np.nan
        return accuracy_score(y, self._labels(Z), sample_weight=sample_weight)

    def _proba(self, Z):
        if self._label_binarizer.y_type_ == "multiclass":
            Z = Z - Z.max(axis=1, keepdims=True)
            P = np.exp(Z)
            P /= P.sum(axis=1, keepdims=True)
            return P
        return 1.0 / (1.0 + np.exp(-Z))

    def _labels(self, Z):
        P = self._proba(Z)
        return self._label_binarizer.inverse_transform(P.ravel() if P.shape[1] == 1 else P)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data.

        Only for the stochastic solvers: with ``solver="lbfgs"`` the estimator
        has no ``partial_fit`` attribute, as in scikit-learn.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            The target labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.
        classes : array-like of shape (n_classes,), default=None
            All the classes across the calls to ``partial_fit``; required on
            the first call (except for multilabel targets).

        Returns
        -------
        self : object
            The updated estimator.
        """
        if not hasattr(self, "classes_"):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            elif classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            else:
                self._label_binarizer.fit(classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(np.asarray(classes), self.classes_):
            raise ValueError(f"`classes={np.asarray(classes)!r}` is not the same as on the last call to "
                             f"partial_fit, was: {self.classes_!r}")
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            The predicted classes.
        """
        return self._labels(self._forward(X))

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probabilities of the classes in the order of ``classes_`` (for
            multilabel targets, of each label).
        """
        P = self._proba(self._forward(X))
        if P.shape[1] == 1:
            return np.hstack([1.0 - P, P])
        return P

    def predict_log_proba(self, X):
        """Logarithm of the probability estimates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        P = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(P, out=P)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
