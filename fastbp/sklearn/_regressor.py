"""scikit-learn's ``MLPRegressor`` on fastbp: squared error with a linear output layer, one or
several targets, ``partial_fit``, ``predict`` and the R^2 score.
"""

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import validate_data

from ._base import _INPUT_DTYPES, _BaseMLP, _store_params
from ._docs import _ATTRIBUTES_DOC, _PARAMS_DOC


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = """A multilayer-perceptron regressor: scikit-learn's ``MLPRegressor``, trained by fastbp.

    Squared error with a linear output layer, one unit per target. See
    :mod:`fastbp.sklearn` for how the parameters map onto fastbp's losses and
    optimizers.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        'poisson' is half the Poisson deviance with an exponential output (a
        log link), as in scikit-learn; it needs ``y >= 0``.""" + _PARAMS_DOC + """

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

    # Pickles and reprs name the public path, fastbp.sklearn.MLPRegressor, which the package re-exports.
    __module__ = "fastbp.sklearn"

    @property
    def _fastbp_loss(self):
        """fastbp's loss: mse for the squared error, poisson (exp output) for scikit-learn's poisson."""
        return "poisson" if self.loss == "poisson" else "mse"

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, backend="auto", dtype=None):
        _store_params(self, locals())

    def _check_params(self):
        if self.loss not in ("squared_error", "poisson"):
            raise ValueError(f"loss must be 'squared_error' or 'poisson', got {self.loss!r}")
        return super()._check_params()

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=_INPUT_DTYPES,
                             accept_sparse=("csr", "csc"), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson regression.")
        return X, y, y.reshape(len(y), -1)

    def _score_model(self, model, X, y, sample_weight):
        pred = model.decision_function(X).astype(np.float64)
        if self.loss == "poisson":
            with np.errstate(over="ignore"):
                pred = np.exp(pred)
        if not np.all(np.isfinite(pred)):
            return np.nan
        return r2_score(y, pred.ravel() if pred.shape[1] == 1 else pred, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data.

        Only for the stochastic solvers: with ``solver="lbfgs"`` the estimator
        has no ``partial_fit`` attribute (scikit-learn means the same, though
        its regressor's check misses a call and lets ``partial_fit`` run a
        whole L-BFGS fit).

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
            The predicted values: float32 for float32 input to a model with
            float32 parameters, float64 otherwise (as scikit-learn).
        """
        Z = self._forward(X)
        if self.loss == "poisson":  # the output layer holds the log of the mean
            Z = np.exp(Z)
        return Z.ravel() if Z.shape[1] == 1 else Z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
