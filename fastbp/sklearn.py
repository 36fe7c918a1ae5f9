"""scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor`, trained by fastbp's kernels.

They take the parameters of :class:`sklearn.neural_network.MLPClassifier` and
:class:`sklearn.neural_network.MLPRegressor`, with the same names and the
same meanings, and expose the same fitted attributes, so that they can
replace scikit-learn's estimators in a ``Pipeline``, a ``GridSearchCV`` or
``cross_val_score``. They need scikit-learn (``pip install fastbp[sklearn]``);
``import fastbp`` alone never imports it.

**How scikit-learn's conventions map onto fastbp's.** fastbp's losses
follow PyTorch (mean over every output element), while scikit-learn's
gradients are those of a loss summed over the outputs and averaged over the
samples, with the squared error halved. fastbp's data
gradient is therefore a constant multiple ``c`` of scikit-learn's:

================================  ==============  ========================
problem                           fastbp loss     ``c``
================================  ==============  ========================
multiclass                        softmax CE      ``1``
binary / multilabel (k outputs)   BCE, k outputs  ``1 / k``
regression (k outputs)            mse             ``2 / k``
================================  ==============  ========================

To keep scikit-learn's meaning of every parameter, the estimators train
fastbp with ``l2 = alpha * c`` (so the penalised gradient is exactly ``c``
times scikit-learn's), and

- ``solver="sgd"``: ``lr = learning_rate_init / c``; with the same momentum,
  this gives exactly scikit-learn's trajectory (PyTorch's momentum buffer is
  scikit-learn's velocity divided by ``-lr``);
- ``solver="adam"``: ``lr = learning_rate_init`` and ``eps = epsilon * c``.
  Adam's step does not change when the gradient is scaled, except through
  ``eps``. One difference remains: scikit-learn adds ``epsilon`` to the
  uncorrected ``sqrt(v)``, PyTorch (and fastbp) to the bias-corrected one,
  which makes fastbp's effective ``epsilon`` ``sqrt(1 - beta_2**t)`` times
  smaller early in training; with ``epsilon=1e-8`` this is invisible.

``loss_curve_``, ``loss_`` and ``best_loss_`` are reported in
scikit-learn's units (fastbp's epoch loss divided by ``c``; for regression
with several outputs, scikit-learn reports half the mean over the outputs
while it descends half their sum, and the penalty part of that value is
computed from the weights at the end of the epoch).
"""

import numbers
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "fastbp.sklearn needs scikit-learn (>= 1.6), which is not installed: "
        f"{exc}. Install it with `pip install fastbp[sklearn]`."
    ) from exc

from . import training
from .kernels.losses import LOSSES, row_divisor
from .model import MLP, DivergedError

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names and fastbp's extra ones, mapped to fastbp's names.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                "leaky_relu": "leaky_relu", "elu": "elu", "softplus": "softplus", "gelu": "gelu"}
_DTYPES = {"float32": np.float32, "float64": np.float64}


def _check_real(name, value, low, high=None, low_open=False, high_open=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if (value <= low if low_open else value < low) or (
            high is not None and (value >= high if high_open else value > high)):
        interval = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}" + (
            ")" if high is None or high_open else "]")
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")


def _check_int(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")


class _BaseMLP(BaseEstimator):
    """Shared training and prediction code of the two estimators."""

    _fastbp_loss = None  # set by the subclasses

    # ------------------------------------------------------------ parameters
    def _check_params(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}") from None
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
                raise ValueError(f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes!r}")
        if not isinstance(self.activation, str) or self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if self.solver == "lbfgs":
            raise ValueError("solver='lbfgs' is not supported by fastbp, which trains by minibatches; "
                             "use solver='adam' or solver='sgd'")
        if self.solver not in ("sgd", "adam"):
            raise ValueError(f"solver must be 'sgd' or 'adam', got {self.solver!r}")
        if self.learning_rate != "constant":
            raise ValueError(f"only learning_rate='constant' is supported, got {self.learning_rate!r}")
        _check_real("alpha", self.alpha, 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_int("batch_size", self.batch_size)
        _check_real("learning_rate_init", self.learning_rate_init, 0.0, low_open=True)
        _check_int("max_iter", self.max_iter)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            _check_bool(name, getattr(self, name))
        _check_real("tol", self.tol, 0.0)
        _check_real("momentum", self.momentum, 0.0, 1.0)
        _check_real("validation_fraction", self.validation_fraction, 0.0, 1.0)
        _check_real("beta_1", self.beta_1, 0.0, 1.0)
        _check_real("beta_2", self.beta_2, 0.0, 1.0)
        _check_real("epsilon", self.epsilon, 0.0, low_open=True)
        if not (isinstance(self.n_iter_no_change, numbers.Real) and self.n_iter_no_change == np.inf):
            _check_int("n_iter_no_change", self.n_iter_no_change)
        if self.backend not in training.BACKENDS:
            raise ValueError(f"backend must be one of {list(training.BACKENDS)}, got {self.backend!r}")
        return sizes, self._dtype()

    def _dtype(self):
        try:
            dt = np.dtype(self.dtype)
        except TypeError:
            dt = None
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return dt

    # --------------------------------------------------------------- scaling
    def _grad_scale(self, k):
        """``c``: fastbp's data gradient divided by scikit-learn's, for ``k`` outputs.

        fastbp averages each row's loss over ``row_divisor`` values (``k`` for
        mse and binary cross-entropy, 1 for softmax), scikit-learn sums it; and
        fastbp's mse has no 1/2, so its gradient carries a factor 2.
        """
        return (2.0 if self._fastbp_loss == "mse" else 1.0) / row_divisor(LOSSES[self._fastbp_loss], k)

    def _make_optimizer(self, c):
        from .optim import SGD, Adam

        if self.solver == "sgd":
            return SGD(lr=self.learning_rate_init / c, momentum=self.momentum,
                       nesterov=bool(self.nesterovs_momentum and self.momentum > 0))
        return Adam(lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon * c)

    def _sklearn_loss(self, loss, c, k, model, n_batches, total_weight):
        """fastbp's epoch loss in scikit-learn's units (see the module notes)."""
        if self._fastbp_loss != "mse" or k == 1:
            return loss / c
        Ws, _ = model.get_weights()
        penalty = 0.5 * self.alpha * sum(float(np.dot(W.ravel(), W.ravel())) for W in Ws) * n_batches / total_weight
        return loss / 2.0 + (1.0 - 1.0 / k) * penalty

    # --------------------------------------------------------------- weights
    def _initialize(self, units, rs, dtype):
        """scikit-learn's initialisation, drawn from ``rs`` in scikit-learn's order."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(units)
        self.n_outputs_ = units[-1]
        self.out_activation_ = {"softmax_cross_entropy": "softmax", "binary_cross_entropy": "logistic",
                                "mse": "identity"}[self._fastbp_loss]
        self.coefs_, self.intercepts_ = [], []
        factor = 2.0 if self.activation == "logistic" else 6.0
        for fan_in, fan_out in zip(units[:-1], units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            self.coefs_.append(rs.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
            self.intercepts_.append(rs.uniform(-bound, bound, fan_out).astype(dtype))
        self._best_coefs = [W.copy() for W in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._optimizer = None
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _model(self, dtype=None, seed=None):
        """A fastbp :class:`~fastbp.MLP` holding the current ``coefs_`` and ``intercepts_``.

        ``seed`` seeds the model's shuffling (its initial weights are replaced).
        """
        units = [self.coefs_[0].shape[0]] + [W.shape[1] for W in self.coefs_]
        dtype = self._dtype() if dtype is None else dtype
        model = MLP(units, activation=_ACTIVATIONS[self.activation], loss=self._fastbp_loss, dtype=dtype,
                    seed=seed)
        if len(self.intercepts_) != len(self.coefs_):
            raise ValueError(f"coefs_ and intercepts_ must have one array per layer, got "
                             f"{len(self.coefs_)} and {len(self.intercepts_)}")
        model.set_weights([np.ascontiguousarray(W, dtype=dtype) for W in self.coefs_],
                          [np.ascontiguousarray(b, dtype=dtype) for b in self.intercepts_])
        return model

    def _forward(self, X):
        """Output-layer pre-activations (float64) for validated inputs."""
        check_is_fitted(self, "coefs_")
        dtype = self._dtype()
        X = validate_data(self, X, dtype=dtype, reset=False)
        return self._model(dtype).decision_function(X).astype(np.float64)

    # -------------------------------------------------------------- training
    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden, dtype = self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y, Y = self._validate_input(X, y, incremental, reset=first_pass, dtype=dtype)
        n, k = X.shape[0], Y.shape[1]
        if sample_weight is not None:
            sample_weight = self._check_sample_weight(sample_weight, n)
        units = [X.shape[1]] + hidden + [k]
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(units, rs, dtype)
        else:
            have = [self.coefs_[0].shape[0]] + [W.shape[1] for W in self.coefs_]
            if have != units:
                raise ValueError(f"the fitted network has layer sizes {have}, but this data and "
                                 f"hidden_layer_sizes need {units}; fit with warm_start=False to start afresh")
        c = self._grad_scale(k)
        if not incremental or getattr(self, "_optimizer", None) is None:
            self._optimizer = self._make_optimizer(c)

        X_val = y_val = sw_val = None
        if self.early_stopping:
            stratify = Y if (isinstance(self, ClassifierMixin) and k == 1) else None
            train, val = train_test_split(np.arange(n), random_state=rs, test_size=self.validation_fraction,
                                          stratify=stratify)
            if val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            X_val, y_val = X[val], y[val]
            sw_val = None if sample_weight is None else sample_weight[val]
            X, Y = X[train], Y[train]
            sample_weight = None if sample_weight is None else sample_weight[train]
        n_train = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                              stacklevel=3)
            batch_size = int(np.clip(self.batch_size, 1, n_train))
        n_batches = -(-n_train // batch_size)

        model = self._model(dtype, seed=int(rs.randint(np.iinfo(np.int32).max)))  # shuffling from random_state
        total_weight = n_train if sample_weight is None else float(sample_weight.sum())

        self.n_iter_ = 0
        stopped = []

        def on_epoch(epoch, logs):
            self.n_iter_ += 1
            self.t_ += n_train
            self.loss_ = self._sklearn_loss(logs["loss"], c, k, model, n_batches, total_weight)
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement_count(model, X_val, y_val, sw_val)
            if self._no_improvement_count > self.n_iter_no_change:
                if self.verbose:
                    what = "Validation score" if self.early_stopping else "Training loss"
                    print(f"{what} did not improve more than tol={self.tol:f} for "
                          f"{self.n_iter_no_change} consecutive epochs. Stopping.")
                stopped.append(True)
                return True
            return False

        try:
            model.fit(X, Y, epochs=1 if incremental else self.max_iter, batch_size=batch_size,
                      optimizer=self._optimizer, shuffle=self.shuffle, backend=self.backend,
                      callbacks=[on_epoch], sample_weight=sample_weight, l2=self.alpha * c)
        except DivergedError as exc:
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                             "values and need to be preprocessed, or learning_rate_init is too large.") from exc
        self.coefs_, self.intercepts_ = model.get_weights()
        if self.early_stopping:
            self.coefs_ = [W.copy() for W in self._best_coefs]
            self.intercepts_ = [b.copy() for b in self._best_intercepts]
        if not incremental and not stopped and self.n_iter_ == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                          "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=3)
        return self

    def _update_no_improvement_count(self, model, X_val, y_val, sw_val):
        if self.early_stopping:
            score = self._score_model(model, X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs, self._best_intercepts = model.get_weights()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    @staticmethod
    def _check_sample_weight(sample_weight, n):
        try:
            sw = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sample_weight must be numeric, got {sample_weight!r}: {exc}") from None
        if sw.ndim == 0:
            sw = np.full(n, float(sw))
        if sw.ndim != 1 or sw.shape[0] != n:
            raise ValueError(f"sample_weight.shape == {sw.shape}, expected ({n},)!")
        if not np.all(np.isfinite(sw)):
            raise ValueError("sample_weight contains NaN or Inf")
        if np.any(sw < 0):
            raise ValueError("Negative values in data passed to sample_weight")
        return np.ascontiguousarray(sw)

    # ---------------------------------------------------------- public API
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights: each sample's loss and gradient is
            multiplied by its weight, and each minibatch's mean divides by its
            weight sum, as in scikit-learn.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


_PARAMS_DOC = """
    hidden_layer_sizes : int or sequence of int, default=(100,)
        The number of neurons of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Hidden-layer activation (fastbp also accepts 'leaky_relu', 'elu',
        'softplus' and 'gelu').
    solver : {'adam', 'sgd'}, default='adam'
        'lbfgs' is not supported (a clear ValueError).
    alpha : float, default=0.0001
        Strength of the L2 penalty ``0.5 * alpha * ||W||^2 / n_batch`` on the
        weights (not the biases), as in scikit-learn.
    batch_size : int or 'auto', default='auto'
        Minibatch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant'}, default='constant'
        Only the constant schedule is supported.
    learning_rate_init : float, default=0.001
        The step size, in scikit-learn's units (see the module notes).
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Shuffle the samples in each epoch.
    random_state : int, RandomState instance or None, default=None
        Draws the initial weights (scikit-learn's scheme and order), the
        validation split and the seed of the shuffling.
    tol : float, default=1e-4
        Training stops when the loss (or the validation score, with early
        stopping) has not improved by at least ``tol`` for more than
        ``n_iter_no_change`` consecutive epochs.
    verbose : bool, default=False
        Print the loss after each epoch.
    warm_start : bool, default=False
        Continue from the fitted weights on the next ``fit``.
    momentum : float, default=0.9
        SGD momentum, in ``[0, 1)``.
    nesterovs_momentum : bool, default=True
        Nesterov momentum for SGD (when ``momentum > 0``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when its score
        stops improving; the best weights are kept.
    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates, in ``[0, 1)``.
    epsilon : float, default=1e-8
        Adam's numerical-stability term.
    n_iter_no_change : int, default=10
        Epochs without an improvement of ``tol`` before stopping.
    backend : {'auto', 'cpu', 'parallel', 'numpy'}, default='auto'
        fastbp's training backend (see :meth:`fastbp.MLP.fit`).
    dtype : {'float32', 'float64'}, default='float32'
        Parameter and computation dtype of fastbp's kernels."""

_ATTRIBUTES_DOC = """
    loss_ : float
        The loss of the last epoch, in scikit-learn's units.
    best_loss_ : float or None
        The lowest ``loss_`` reached (None with early stopping).
    loss_curve_ : list of float
        ``loss_`` of every epoch.
    validation_scores_ : list of float or None
        The validation score of every epoch, with early stopping.
    best_validation_score_ : float or None
        The best validation score, with early stopping.
    t_ : int
        Number of training samples seen.
    coefs_ : list of ndarray
        ``coefs_[i]`` is the ``(fan_in, fan_out)`` weight matrix of layer ``i``.
    intercepts_ : list of ndarray
        ``intercepts_[i]`` is the bias vector of layer ``i``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names seen during fit, when X had string column names.
    n_iter_ : int
        Number of epochs run by the last ``fit`` (1 after ``partial_fit``).
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        The output activation."""


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

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, backend="auto", dtype="float32"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.dtype = dtype

    @property
    def _fastbp_loss(self):
        lb = getattr(self, "_label_binarizer", None)
        return "softmax_cross_entropy" if lb is not None and lb.y_type_ == "multiclass" else "binary_cross_entropy"

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = validate_data(self, X, y, multi_output=True, dtype=dtype, reset=reset)
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
        Y = np.ascontiguousarray(self._label_binarizer.transform(y), dtype=dtype)
        return X, y, Y

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

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data.

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


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = """A multilayer-perceptron regressor: scikit-learn's ``MLPRegressor``, trained by fastbp.

    Squared error with a linear output layer, one unit per target. See
    :mod:`fastbp.sklearn` for how the parameters map onto fastbp's losses and
    optimizers.

    Parameters
    ----------
    loss : {'squared_error'}, default='squared_error'
        The only loss supported ('poisson' is not).""" + _PARAMS_DOC + """

    Attributes
    ----------""" + _ATTRIBUTES_DOC + """

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp.sklearn import MLPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (500, 3))
    >>> y = X[:, 0] - 2 * X[:, 1] * X[:, 2]
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=500,
    ...                    random_state=0).fit(X, y)
    >>> bool(reg.score(X, y) > 0.9)
    True
    """

    _fastbp_loss = "mse"

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, backend="auto", dtype="float32"):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.dtype = dtype

    def _check_params(self):
        if self.loss != "squared_error":
            raise ValueError(f"loss must be 'squared_error' (the only loss fastbp's regressor supports), "
                             f"got {self.loss!r}")
        return super()._check_params()

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=dtype, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = np.ascontiguousarray(y.reshape(len(y), -1), dtype=dtype)
        return X, y, Y

    def _score_model(self, model, X, y, sample_weight):
        pred = model.decision_function(X).astype(np.float64)
        if not np.all(np.isfinite(pred)):
            return np.nan
        return r2_score(y, pred.ravel() if pred.shape[1] == 1 else pred, sample_weight=sample_weight)

    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predict with the multilayer perceptron.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values (float64).
        """
        Z = self._forward(X)
        return Z.ravel() if Z.shape[1] == 1 else Z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
