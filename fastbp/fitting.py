"""The pieces of :meth:`fastbp.MLP.fit`'s loop: argument checks, the history, early stopping, progress lines."""

import numbers

import numpy as np

from . import training
from ._validation import as_positive_int
from .optim import Optimizer


def check_fit_arguments(network, validation_data, epochs, batch_size, backend, optimizer, callbacks, patience,
                        min_delta):
    """Check ``fit``'s arguments (after the data); return ``(val, epochs, batch_size, callbacks, patience)``.

    ``val`` is the checked ``(X_val, T_val)`` pair or None, ``callbacks`` a list.
    """
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        val = network.check_data(*validation_data, what="validation ")
    epochs = as_positive_int("epochs", epochs)
    batch_size = as_positive_int("batch_size", batch_size)
    if backend not in training.BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {list(training.BACKENDS)}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a fastbp optimizer (SGD, Adam, AdamW), got {optimizer!r}")
    callbacks = list(callbacks or [])
    if not all(callable(cb) for cb in callbacks):
        raise TypeError("callbacks must be callables taking (epoch, logs)")
    if patience is not None:
        patience = as_positive_int("patience", patience)
    if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) or not min_delta >= 0:
        raise ValueError(f"min_delta must be a real number >= 0, got {min_delta!r}")
    return val, epochs, batch_size, callbacks, patience


def new_history(backend, classify, validation):
    """An empty history: a list per figure ``fit`` records, and the resolved ``backend`` name."""
    history = {"loss": [], "samples_per_second": [], "backend": backend}
    if classify:
        history["accuracy"] = []
    if validation:
        history["val_loss"] = []
        if classify:
            history["val_accuracy"] = []
    return history


class EarlyStopping:
    """Stop when the monitored loss has not improved by more than ``min_delta`` for ``patience`` epochs.

    Without ``patience`` (None) it never stops anything. With
    ``restore_best_weights`` it keeps a copy of the parameters and optimizer
    state of the best epoch, which :meth:`restore` puts back.
    """

    def __init__(self, patience, min_delta, restore_best_weights, monitor):
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best_weights = restore_best_weights
        self.monitor = monitor
        self.best = np.inf
        self.waited = 0
        self.best_theta = None
        self.best_state = None

    @property
    def active(self):
        """Whether early stopping was asked for."""
        return self.patience is not None

    def update(self, logs, theta, optimizer):
        """Record an epoch's ``logs``; return True when training should stop."""
        if not self.active:
            return False
        if logs[self.monitor] < self.best - self.min_delta:
            self.best, self.waited = logs[self.monitor], 0
            if self.restore_best_weights:
                self.best_theta, self.best_state = theta.copy(), optimizer.state_copy()
            return False
        self.waited += 1
        return self.waited >= self.patience

    def restore(self, theta, optimizer):
        """Put the best epoch's parameters and optimizer state back, when they were kept."""
        if self.best_theta is not None:
            theta[...] = self.best_theta
            optimizer.restore_state(self.best_state)


def progress_line(ep, epochs, logs):
    """One line of ``verbose`` output: the epoch, each figure of ``logs`` and samples per second."""
    parts = [f"epoch {ep:>{len(str(epochs))}}/{epochs}"]
    for key, value in logs.items():
        if key == "samples_per_second":
            parts.append(f"{value:,.0f} samples/s")
        else:
            parts.append(f"{key} {value:.4f}")
    return "  ".join(parts)
