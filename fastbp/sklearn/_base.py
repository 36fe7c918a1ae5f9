"""The code the two estimators share: :class:`_BaseMLP` (parameter checks, scikit-learn's
initialisation, the conversion to fastbp's units, training through :class:`fastbp.MLP`, early
stopping, ``fit``) and the scikit-learn-to-fastbp name tables.
"""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..kernels.layout import LOSSES, row_divisor
from ..model import MLP, DivergedError
from ..optim import SGD, Adam
from ..training import BACKENDS

# scikit-learn's activation names and fastbp's extra ones, mapped to fastbp's names.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                "leaky_relu": "leaky_relu", "elu": "elu", "softplus": "softplus", "gelu": "gelu"}

# fastbp's loss of each estimator, mapped to scikit-learn's name of the matching output
# activation (the fitted attribute out_activation_).
_OUT_ACTIVATIONS = {"softmax_cross_entropy": "softmax", "binary_cross_entropy": "logistic", "mse": "identity"}


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


def _store_params(estimator, values):
    """Set each constructor argument in ``values`` (an ``__init__``'s ``locals()``) as an attribute, unchanged.

    scikit-learn's convention: ``__init__`` stores its parameters and does
    nothing else; validation happens in ``fit``.
    """
    for name, value in values.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


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
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {self.backend!r}")
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
        if self.solver == "sgd":
            return SGD(lr=self.learning_rate_init / c, momentum=self.momentum,
                       nesterov=bool(self.nesterovs_momentum and self.momentum > 0))
        return Adam(lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon * c)

    def _sklearn_loss(self, loss, c, k, model, n_batches, total_weight):
        """fastbp's epoch loss in scikit-learn's units (see the notes of :mod:`fastbp.sklearn`)."""
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
        self.out_activation_ = _OUT_ACTIVATIONS[self._fastbp_loss]
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
