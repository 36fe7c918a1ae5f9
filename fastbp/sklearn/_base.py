"""The code the two estimators share: :class:`_BaseMLP` (parameter checks, scikit-learn's
initialisation, the conversion to fastbp's units, the dtype rule, training through
:class:`fastbp.MLP` by minibatches or by L-BFGS, early stopping, ``fit``), scikit-learn's
learning-rate schedules (:class:`_Schedule`) and its L-BFGS objective (:class:`_LbfgsObjective`).
"""

import numbers
import re
import warnings

import numpy as np
import scipy
import scipy.optimize
import scipy.sparse
import scipy.special
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import as_sample_weight
from ..kernels.layout import LOSSES, row_divisor
from ..model import MLP, DivergedError
from ..network import Network
from ..optim import SGD, Adam
from ..training import BACKENDS, FullBatchObjective

# scikit-learn's activation names and fastbp's extra ones, mapped to fastbp's names.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                "leaky_relu": "leaky_relu", "elu": "elu", "softplus": "softplus", "gelu": "gelu"}

# fastbp's loss of each estimator, mapped to scikit-learn's name of the matching output
# activation (the fitted attribute out_activation_).
_OUT_ACTIVATIONS = {"softmax_cross_entropy": "softmax", "binary_cross_entropy": "logistic", "mse": "identity",
                    "poisson": "exp"}

_STOCHASTIC_SOLVERS = ("sgd", "adam")
_SCHEDULES = ("constant", "invscaling", "adaptive")

# What scikit-learn's validate_data(dtype=...) keeps: float32 and float64 stay, anything else becomes float64.
_INPUT_DTYPES = (np.float64, np.float32)

# scikit-learn's message (its tests match it) when training ends with non-finite weights.
_NONFINITE = ("Solver produced non-finite parameter weights. The input data may contain large values and need to "
              "be preprocessed.")

# scipy >= 1.15 dropped L-BFGS-B's iprint option (scikit-learn passes it only to older versions).
_SCIPY_HAS_IPRINT = tuple(int(p) for p in re.match(r"(\d+)\.(\d+)", scipy.__version__).groups()) < (1, 15)


def _as_training_input(X, dtype):
    """``X`` in the training dtype: a C-contiguous array, or a CSR matrix (which fastbp's kernels read as it is)."""
    if scipy.sparse.issparse(X):
        return X.tocsr().astype(dtype, copy=False)
    return np.ascontiguousarray(X, dtype=dtype)


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


def _float_dtype(dtype):
    """``dtype`` if it is float32 or float64, else float64 (what the parameters of any other dtype are read as)."""
    dtype = np.dtype(dtype)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _pack(Ws, bs):
    """scikit-learn's packing of the parameters into one float64 vector: every weight matrix, then every bias."""
    return np.concatenate([np.ravel(a) for a in list(Ws) + list(bs)]).astype(np.float64, copy=False)


def _lbfgs_result(result, max_iter):
    """``n_iter_`` of an L-BFGS-B result, with scikit-learn's ``ConvergenceWarning`` when it did not converge."""
    n_iter = min(result.nit, max_iter)
    if result.status != 0:
        message = (f"lbfgs failed to converge after {n_iter} iteration(s) (status={result.status}):\n"
                   f"{result.message}\n")
        if n_iter == max_iter:
            message += ("\nIncrease the number of iterations to improve the convergence "
                        f"(max_iter={max_iter}).")
        message += ("\nYou might also want to scale the data as shown in:\n"
                    "    https://scikit-learn.org/stable/modules/preprocessing.html")
        warnings.warn(message, ConvergenceWarning, stacklevel=5)
    return n_iter


class _Schedule:
    """scikit-learn's learning-rate bookkeeping for the stochastic solvers, around a fastbp optimizer.

    It mirrors the parts of scikit-learn's ``SGDOptimizer`` and
    ``AdamOptimizer`` that are not the update itself: ``learning_rate`` (in
    scikit-learn's units), ``iteration_ends`` (``"invscaling"``:
    ``learning_rate_init / (t + 1) ** power_t`` after each epoch, ``t`` the
    samples seen) and ``trigger_stopping`` (``"adaptive"``: divide by 5 instead
    of stopping, until the rate is at most 1e-6). Adam, as in scikit-learn,
    keeps ``learning_rate_init`` and always stops.

    :meth:`sync` hands the rate to the fastbp optimizer (``lr = learning_rate /
    c``), which reads it when a ``fit`` call starts. When the rate changes, the
    SGD momentum buffer is rescaled by ``old_lr / new_lr``: scikit-learn keeps
    the velocity ``v = -lr * buffer`` of the old rate, PyTorch's rule (and
    fastbp's) multiplies the whole buffer by the new one.
    """

    def __init__(self, estimator, c):
        self.solver = estimator.solver
        self.lr_schedule = estimator.learning_rate if self.solver == "sgd" else "constant"
        self.learning_rate_init = estimator.learning_rate_init
        self.learning_rate = float(estimator.learning_rate_init)
        self.power_t = estimator.power_t
        self.c = c
        if self.solver == "sgd":
            self.optimizer = SGD(lr=self.learning_rate / c, momentum=estimator.momentum,
                                 nesterov=bool(estimator.nesterovs_momentum and estimator.momentum > 0))
        else:
            self.optimizer = Adam(lr=estimator.learning_rate_init, betas=(estimator.beta_1, estimator.beta_2),
                                  eps=estimator.epsilon * c, eps_hat=True)

    def _fastbp_lr(self):
        return self.learning_rate / self.c if self.solver == "sgd" else self.learning_rate_init

    def changed(self):
        """Whether ``learning_rate`` moved since the last :meth:`sync`."""
        return self._fastbp_lr() != self.optimizer.lr

    def sync(self):
        """Set the fastbp optimizer's rate from ``learning_rate`` (before a ``fit`` call)."""
        new, old = self._fastbp_lr(), self.optimizer.lr
        if new == old:
            return
        opt = self.optimizer
        if getattr(opt, "momentum", 0.0) > 0 and opt.m is not None:
            opt.m *= old / new
        opt.lr = new

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """True to stop; with ``"adaptive"``, divide the rate by 5 instead while it is above 1e-6."""
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(f"{msg} Setting learning rate to {self.learning_rate:f}")
        return False


class _SampleOrder:
    """scikit-learn's epoch orders, as a stand-in for the shuffling generator of a :class:`~fastbp.MLP`.

    scikit-learn shuffles its index vector again each epoch with
    ``sklearn.utils.shuffle`` and the estimator's ``random_state``, so that
    each order is a permutation of the last one. :meth:`fastbp.MLP.fit` asks
    its generator for ``permutation(n)`` once an epoch; this object answers
    with scikit-learn's next order, so the two trajectories are the same.
    """

    def __init__(self, n, random_state):
        self.order = np.arange(n, dtype=np.int64)
        self.random_state = random_state

    def permutation(self, n):
        """The next epoch's order of the ``n`` training samples."""
        if n != self.order.shape[0]:
            raise ValueError(f"this order is for {self.order.shape[0]} samples, not {n}")
        # What ``shuffle(self.order, random_state=self.random_state)`` does (sklearn.utils.resample without
        # replacement), without its parameter validation, which took a fifth of a digits fit's time.
        # tests/test_sklearn.py holds the trajectories to scikit-learn's.
        indices = np.arange(n)
        check_random_state(self.random_state).shuffle(indices)
        self.order = self.order[indices]
        return self.order


class _LbfgsObjective:
    """scikit-learn's L-BFGS objective on fastbp's kernels: ``packed -> (loss, gradient)``.

    ``packed`` is scikit-learn's float64 vector (every weight matrix, then
    every bias). Each call writes it into the fastbp model's parameters and
    evaluates the full-batch loss and gradient with ``l2 = alpha * c``
    (a :class:`fastbp.training.FullBatchObjective`, made once: the data are
    checked and the workspaces allocated once); the gradient is divided by
    ``c`` and the loss converted to scikit-learn's units. For regression with ``k > 1`` outputs
    this reproduces scikit-learn exactly, including its mismatch: the loss is
    half the *mean* squared error over the outputs, the gradient that of half
    their *sum* (scikit-learn hands L-BFGS-B both).
    """

    def __init__(self, estimator, model, X, Y, sample_weight, c):
        self.model, self.c = model, c
        self.l2 = estimator.alpha * c
        k = Y.shape[1]
        # scikit-learn's reported squared error is 1/k of the loss it differentiates (see the class notes).
        self.extra_penalty = 0.0
        if estimator._fastbp_loss == "mse" and k > 1:
            total = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
            self.extra_penalty = (1.0 - 1.0 / k) * 0.5 * estimator.alpha / total
        # scikit-learn's poisson loss is half the Poisson deviance, whose y log(y) - y part fastbp's
        # (torch's PoissonNLLLoss) leaves out: a constant, but L-BFGS-B's stopping rule sees it.
        self.offset = _poisson_offset(Y, sample_weight) if estimator._fastbp_loss == "poisson" else 0.0
        self.Ws, self.bs = model.network.unflatten(model.theta)  # views: writing them writes the parameters
        self.n_coefs = sum(W.size for W in self.Ws)
        X, T = model.network.check_data(X, Y)  # once, not at every evaluation
        sw = as_sample_weight(sample_weight, X.shape[0], model.dtype)
        self.full_batch = FullBatchObjective(model.network, model.theta, X, T, sw, self.l2)

    def set(self, packed):
        """Write scikit-learn's packed vector into the model's parameters."""
        start = 0
        for a in self.Ws + self.bs:
            a[...] = packed[start:start + a.size].reshape(a.shape)
            start += a.size

    def __call__(self, packed):
        self.set(packed)
        loss, flat_grad = self.full_batch()
        gWs, gbs = self.model.network.unflatten(flat_grad)
        grad = _pack(gWs, gbs) / self.c
        if self.extra_penalty:
            coefs = packed[:self.n_coefs]
            return loss / 2.0 + self.extra_penalty * float(np.dot(coefs, coefs)), grad
        return loss / self.c + self.offset, grad


def _poisson_offset(Y, sample_weight):
    """The weighted mean over samples of ``sum_j (y log y - y)``, which scikit-learn's poisson loss adds."""
    Y = np.asarray(Y, dtype=np.float64)
    per_sample = (scipy.special.xlogy(Y, Y) - Y).sum(axis=1)
    return float(np.average(per_sample, weights=sample_weight))


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
        if not isinstance(self.solver, str) or self.solver not in ("lbfgs",) + _STOCHASTIC_SOLVERS:
            raise ValueError("solver must be 'sgd' or 'adam' (minibatches) or 'lbfgs' (full batch), "
                             f"got {self.solver!r}")
        if not isinstance(self.learning_rate, str) or self.learning_rate not in _SCHEDULES:
            raise ValueError(f"learning_rate must be one of {list(_SCHEDULES)}, got {self.learning_rate!r}")
        _check_real("alpha", self.alpha, 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_int("batch_size", self.batch_size)
        _check_real("learning_rate_init", self.learning_rate_init, 0.0, low_open=True)
        _check_real("power_t", self.power_t, 0.0)
        _check_int("max_iter", self.max_iter)
        _check_int("max_fun", self.max_fun)
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
        self._forced_dtype()
        return sizes

    def _forced_dtype(self):
        """The ``dtype`` parameter as a NumPy dtype, or None (follow the input)."""
        if self.dtype is None:
            return None
        try:
            dt = np.dtype(self.dtype)
        except TypeError:
            dt = None
        if dt not in (np.float32, np.float64):
            raise ValueError("dtype must be 'float32' or 'float64' (or None, to follow the input as scikit-learn "
                             f"does), got {self.dtype!r}")
        return dt

    def _training_dtype(self, X_dtype, first_pass):
        """The dtype of the parameters and of the computation of this ``fit`` (see the notes on ``dtype``)."""
        forced = self._forced_dtype()
        if forced is not None:
            return forced
        if self.solver == "lbfgs":  # scipy's L-BFGS-B works in float64, as does scikit-learn's lbfgs
            return np.dtype(np.float64)
        if first_pass:
            return np.dtype(X_dtype)
        return _float_dtype(np.asarray(self.coefs_[0]).dtype)  # continue in the dtype of the fitted weights

    # --------------------------------------------------------------- scaling
    def _grad_scale(self, k):
        """``c``: fastbp's data gradient divided by scikit-learn's, for ``k`` outputs.

        fastbp averages each row's loss over ``row_divisor`` values (``k`` for
        mse and binary cross-entropy, 1 for softmax), scikit-learn sums it; and
        fastbp's mse has no 1/2, so its gradient carries a factor 2.
        """
        return (2.0 if self._fastbp_loss == "mse" else 1.0) / row_divisor(LOSSES[self._fastbp_loss], k)

    def _sklearn_loss(self, loss, c, k, model, n_batches, total_weight):
        """fastbp's epoch loss in scikit-learn's units (see the notes of :mod:`fastbp.sklearn`)."""
        if self._fastbp_loss == "poisson":
            return loss / c + self._poisson_offset
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
        self._optimizer = None
        if self.solver in _STOCHASTIC_SOLVERS:  # scikit-learn sets none of these for lbfgs
            self._initialize_stochastic()

    def _initialize_stochastic(self):
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _model(self, dtype):
        """A fastbp :class:`~fastbp.MLP` of ``dtype`` holding the current ``coefs_`` and ``intercepts_``."""
        units = [self.coefs_[0].shape[0]] + [W.shape[1] for W in self.coefs_]
        network = Network(units, _ACTIVATIONS[self.activation], self._fastbp_loss, dtype)
        model = MLP._unfilled(network, seed=0, init="auto")  # no initial weights drawn: set_weights fills them
        if len(self.intercepts_) != len(self.coefs_):
            raise ValueError(f"coefs_ and intercepts_ must have one array per layer, got "
                             f"{len(self.coefs_)} and {len(self.intercepts_)}")
        model.set_weights([np.ascontiguousarray(W, dtype=dtype) for W in self.coefs_],
                          [np.ascontiguousarray(b, dtype=dtype) for b in self.intercepts_])
        return model

    def _forward(self, X):
        """Output-layer pre-activations for validated inputs, in the dtype scikit-learn would return.

        That is NumPy's promotion of the input's and the parameters' dtypes
        (float32 only when both are float32). The computation runs in that
        dtype too, unless the ``dtype`` parameter forces another.
        """
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, dtype=_INPUT_DTYPES, accept_sparse=("csr", "csc"), reset=False)
        out = np.result_type(X.dtype, _float_dtype(np.asarray(self.coefs_[0]).dtype))
        forced = self._forced_dtype()
        dtype = out if forced is None else forced
        return self._model(dtype).decision_function(X).astype(out, copy=False)

    # -------------------------------------------------------------- training
    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden = self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y, Y = self._validate_input(X, y, incremental, reset=first_pass)
        dtype = self._training_dtype(X.dtype, first_pass)
        X = _as_training_input(X, dtype)
        Y = np.ascontiguousarray(Y, dtype=dtype)
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
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, sample_weight, c, dtype)
        else:
            self._fit_stochastic(X, y, Y, sample_weight, c, k, rs, dtype, incremental)
        return self

    def _fit_lbfgs(self, X, Y, sample_weight, c, dtype):
        """scikit-learn's ``_fit_lbfgs``: scipy's L-BFGS-B on the full-batch loss, with its options."""
        model = self._model(dtype)
        objective = _LbfgsObjective(self, model, X, Y, sample_weight, c)
        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        if _SCIPY_HAS_IPRINT:
            options["iprint"] = 1 if (self.verbose is True or self.verbose >= 1) else -1
        result = scipy.optimize.minimize(objective, _pack(self.coefs_, self.intercepts_), method="L-BFGS-B",
                                         jac=True, options=options)
        self.n_iter_ = _lbfgs_result(result, self.max_iter)
        self.loss_ = result.fun
        objective.set(result.x)
        Ws, bs = model.network.unflatten(model.theta)
        self.coefs_, self.intercepts_ = [W.copy() for W in Ws], [b.copy() for b in bs]
        if not all(np.isfinite(a).all() for a in self.coefs_ + self.intercepts_):
            raise ValueError(_NONFINITE)

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight=None, *workspaces):
        """scikit-learn's private L-BFGS objective, with its signature: ``(loss, gradient)`` at ``packed_coef_inter``.

        ``y`` holds the training targets as scikit-learn trains on them
        (binarised labels for a classifier); the workspace arguments of
        scikit-learn's version are accepted and unused. scikit-learn's test of
        its gradients calls this method; :meth:`fit` uses the same objective.
        """
        check_is_fitted(self, "coefs_")
        dtype = self._forced_dtype()
        if dtype is None:
            dtype = _float_dtype(np.asarray(self.coefs_[0]).dtype)
        X = _as_training_input(X, dtype)
        Y = np.ascontiguousarray(np.asarray(y, dtype=dtype).reshape(X.shape[0], -1))
        if sample_weight is not None:
            sample_weight = self._check_sample_weight(sample_weight, X.shape[0])
        objective = _LbfgsObjective(self, self._model(dtype), X, Y, sample_weight, self._grad_scale(Y.shape[1]))
        return objective(np.asarray(packed_coef_inter, dtype=np.float64))

    def _fit_stochastic(self, X, y, Y, sample_weight, c, k, rs, dtype, incremental):
        """scikit-learn's ``_fit_stochastic``: epochs of minibatch SGD or Adam through :meth:`fastbp.MLP.fit`.

        One ``fit`` call runs as many epochs as it can; a new call starts only
        where the learning rate changes (every epoch with ``"invscaling"``,
        after each division with ``"adaptive"``), so that the optimizer reads
        the new rate. The optimizer's state, the shuffling and the bookkeeping
        continue across the calls.
        """
        if not hasattr(self, "loss_curve_"):  # the first stochastic fit after a warm-started lbfgs one
            self._initialize_stochastic()
        previous = getattr(self, "_optimizer", None)
        if not incremental or not isinstance(previous, (_Schedule, SGD, Adam)):
            self._optimizer = _Schedule(self, c)
        elif not isinstance(previous, _Schedule):  # pickled before the schedules: keep its optimizer's state
            self._optimizer = _Schedule(self, c)
            self._optimizer.optimizer = previous
        schedule = self._optimizer
        n = X.shape[0]
        X_val = y_val = sw_val = None
        if self.early_stopping:
            # as scikit-learn: stratified for a binary problem, on its boolean label column
            stratify = Y.astype(bool) if (isinstance(self, ClassifierMixin) and k == 1) else None
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
                              stacklevel=4)
            batch_size = int(np.clip(self.batch_size, 1, n_train))
        n_batches = -(-n_train // batch_size)

        model = self._model(dtype)
        # from here on the weights live in the model alone (views), not in a second copy beside it
        self.coefs_, self.intercepts_ = model.network.unflatten(model.theta)
        if self.shuffle:
            model._rng = _SampleOrder(n_train, rs)  # scikit-learn's shuffles, drawn from the same random_state
        total_weight = n_train if sample_weight is None else float(sample_weight.sum())
        self._poisson_offset = _poisson_offset(Y, sample_weight) if self._fastbp_loss == "poisson" else 0.0
        last_epoch = 1 if incremental else self.max_iter
        self.n_iter_ = 0
        stopped = False

        def end_epoch(loss, diverged=False):
            """scikit-learn's bookkeeping after an epoch; True when training stops."""
            self.n_iter_ += 1
            self.loss_ = loss
            self.t_ += n_train
            self.loss_curve_.append(loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            if self.early_stopping:
                score = np.nan if diverged else self._score_model(model, X_val, y_val, sw_val)
                self._update_no_improvement_count(score, model)
            else:
                self._update_no_improvement_count(None, model)
            schedule.iteration_ends(self.t_)
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if self.early_stopping else "Training loss"
                msg = (f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} "
                       "consecutive epochs.")
                if schedule.trigger_stopping(msg, self.verbose):
                    return True
                self._no_improvement_count = 0
            if not incremental and self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                              "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=2)
            return False

        def on_epoch(epoch, logs):
            nonlocal stopped
            stopped = end_epoch(self._sklearn_loss(logs["loss"], c, k, model, n_batches, total_weight))
            return stopped or schedule.changed()  # a new rate needs a new fit call

        while not stopped and self.n_iter_ < last_epoch:
            schedule.sync()
            epochs_before = self.n_iter_
            try:
                model.fit(X, Y, epochs=last_epoch - self.n_iter_, batch_size=batch_size,
                          optimizer=schedule.optimizer, shuffle=self.shuffle, backend=self.backend,
                          callbacks=[on_epoch], sample_weight=sample_weight, l2=self.alpha * c)
            except DivergedError as exc:
                if not self.early_stopping:
                    raise ValueError(_NONFINITE) from exc
                # scikit-learn trains on with non-finite weights: every later epoch's loss and validation score
                # is NaN, which never counts as "no improvement", and the best weights are restored at the end.
                while not stopped and self.n_iter_ < last_epoch:
                    stopped = end_epoch(np.nan, diverged=True)
            if self.n_iter_ == epochs_before:  # no epoch ran (cannot happen with fastbp.MLP.fit as it is)
                break
        if self.early_stopping:
            self.coefs_ = [W.copy() for W in self._best_coefs]
            self.intercepts_ = [b.copy() for b in self._best_intercepts]
        else:
            self.coefs_, self.intercepts_ = model.network.unflatten(model.theta)

    def _update_no_improvement_count(self, score, model):
        """scikit-learn's count of epochs without improvement; ``score`` is the validation score (early stopping)."""
        if self.early_stopping:
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

    def _check_solver(self):
        """scikit-learn's condition for ``partial_fit`` to exist: a stochastic solver."""
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver} is not "
                                 "stochastic.")
        return True

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
        tags.input_tags.sparse = True  # CSR (and CSC, converted) reach the kernels as they are
        return tags
