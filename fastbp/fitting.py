"""The pieces of :meth:`fastbp.MLP.fit`'s loop: argument checks, the history, early stopping, interrupts."""

import contextlib
import numbers
import signal
import threading

import numpy as np

from . import training
from ._validation import as_positive_int
from .lbfgs import LBFGS
from .network import per_hidden_layer
from .optim import Optimizer
from .schedules import Schedule


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
    if optimizer is not None and not isinstance(optimizer, (Optimizer, LBFGS)):
        raise TypeError(f"optimizer must be a fastbp optimizer (SGD, Adam, AdamW, LBFGS), got {optimizer!r}")
    callbacks = _check_callbacks(callbacks)
    if patience is not None:
        patience = as_positive_int("patience", patience)
    if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) or not min_delta >= 0:
        raise ValueError(f"min_delta must be a real number >= 0, got {min_delta!r}")
    return val, epochs, batch_size, callbacks, patience


def _check_callbacks(callbacks):
    """``callbacks`` as a list of callables, or a ``TypeError`` that says what came."""
    if callbacks is None:
        return []
    if callable(callbacks):  # a single callback, not a list of them
        name = getattr(callbacks, "__name__", None)
        what = f"the function {name}" if name else f"a single {type(callbacks).__name__}"
        raise TypeError(f"callbacks must be a list of callables, got {what}; pass [{name or 'callback'}]")
    try:
        callbacks = list(callbacks)
    except TypeError:
        raise TypeError(f"callbacks must be a list of callables, got {type(callbacks).__name__} "
                        f"{callbacks!r:.60}") from None
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise TypeError(f"callbacks must be callables taking (epoch, logs); callbacks[{i}] is "
                            f"{type(cb).__name__} {cb!r:.60}")
    return callbacks


def callbacks_say_stop(callbacks, epoch, logs):
    """Call every callback as ``callback(epoch, logs)``; True when one of them asks to stop training.

    Every callback runs, each with its own copy of ``logs``. A callback asks
    to stop by returning True (a Python or NumPy bool); False (either kind)
    and None go on. Any other return value is a ``TypeError``: a value whose
    truth is a guess (a dict, a number) is more likely a mistake than a request.
    """
    results = [cb(epoch, dict(logs)) for cb in callbacks]
    stop = False
    for cb, result in zip(callbacks, results):
        if result is None:
            continue
        if not isinstance(result, (bool, np.bool_)):
            name = getattr(cb, "__name__", type(cb).__name__)
            raise TypeError(f"callback {name} returned {type(result).__name__} {result!r:.60}; a callback "
                            "returns True to stop training, or False or None to go on")
        stop = stop or bool(result)
    return stop


def divergence_message(epoch, diverged, theta, optimizer, X, check_state=True, T=None, loss=None):
    """Why epoch ``epoch`` (counted from 1) diverged, or None when it did not.

    An epoch diverged when the trainer says so (a non-finite minibatch loss),
    when a parameter is non-finite, or (with ``check_state``) when the
    optimizer's state is: a weight whose Adam ``v`` is Inf never moves again,
    while the loss and the weights stay finite. The message names the cause
    it can see: mse targets ``T`` whose squared error overflows the dtype, or
    gradients too large for it; otherwise the learning rate.
    """
    dtype = theta.dtype
    advice = " or use dtype=np.float64" if dtype == np.float32 else ""
    if diverged or not np.all(np.isfinite(theta)):
        largest = float(np.max(np.abs(T))) if loss == "mse" and T is not None else 0.0
        limit = float(np.sqrt(np.finfo(dtype).max))
        if largest > limit:
            return (f"training diverged in epoch {epoch}: the loss became non-finite because the mse targets are "
                    f"too large for {dtype.name}: y reaches {largest:.3g}, and the squared error of a target beyond "
                    f"{limit:.3g} overflows {dtype.name} (its maximum is {np.finfo(dtype).max:.3g}). The weights "
                    f"from before that epoch were kept. Rescale y (e.g. standardise it){advice}.")
        return (f"training diverged in epoch {epoch}: the loss became non-finite; the weights from before that "
                "epoch were kept. Try a smaller learning rate.")
    bad = optimizer.nonfinite_state() if check_state else []
    if not bad:
        return None
    return (f"training diverged in epoch {epoch}: the optimizer state ({' and '.join(bad)}) became non-finite, "
            f"which happens when the gradients are too large for {dtype.name} (the largest |X| is "
            f"{float(np.max(np.abs(X))):.3g}); the weights and optimizer state from before that epoch were kept. "
            f"To fix it, rescale the inputs (e.g. standardise X){advice}.")


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


#: The losses whose epochs report an accuracy.
CLASSIFICATION_LOSSES = ("binary_cross_entropy", "softmax_cross_entropy")


def check_dropout(dropout, n_hidden):
    """``dropout`` as one probability in ``[0, 1)`` per hidden layer: a number for all, or a sequence of them."""
    values = per_hidden_layer(dropout, n_hidden, lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
                              f"dropout must be a probability or a list of one per hidden layer, got {dropout!r}",
                              "dropout needs one probability per hidden layer ({n_hidden}), got {got}")
    for p in values:
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probabilities must lie in [0, 1), got {dropout!r}")
    return [float(p) for p in values]


def check_schedule(lr_schedule):
    """``lr_schedule`` as a :class:`fastbp.schedules.Schedule`, or None."""
    if lr_schedule is not None and not isinstance(lr_schedule, Schedule):
        raise TypeError(f"lr_schedule must be a schedule of fastbp.schedules (e.g. StepLR(10)), got {lr_schedule!r}")
    return lr_schedule


def check_monitor(schedule, validation, classify):
    """Refuse, before training, a ``ReduceLROnPlateau`` that watches a figure the epochs will not report."""
    monitor = getattr(schedule, "monitor", None)
    if monitor is None:
        return
    keys = ["loss"] + (["accuracy"] if classify else [])
    keys += [f"val_{k}" for k in keys] if validation else []
    if monitor not in keys:
        raise ValueError(f"ReduceLROnPlateau monitors {monitor!r}, which the epochs will not report "
                         f"(they report {keys})")


def check_clip(clip_grad_norm):
    """``clip_grad_norm`` as a float > 0, or None."""
    if clip_grad_norm is None:
        return None
    if (isinstance(clip_grad_norm, bool) or not isinstance(clip_grad_norm, numbers.Real)
            or not 0 < clip_grad_norm < float("inf")):
        raise ValueError(f"clip_grad_norm must be a finite number > 0 or None, got {clip_grad_norm!r}")
    return float(clip_grad_norm)


@contextlib.contextmanager
def deferred_interrupt():
    """Hold Ctrl-C until the training loop reaches a point where the model is consistent.

    Yields a function that raises ``KeyboardInterrupt`` when Ctrl-C was
    pressed since the block began; the loop calls it between the calls of an
    epoch, where no update is half applied. Outside the main thread (where no
    signal arrives) and where SIGINT has no Python handler, nothing changes.
    """
    pressed = []
    previous = None
    installed = False
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is \
            signal.default_int_handler:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
        installed = True

    def check():
        if pressed:
            pressed.clear()
            raise KeyboardInterrupt

    try:
        yield check
    finally:
        if installed:
            signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt


def early_stopping_message(ep, stopper, best_epoch):
    """What ``verbose`` says when early stopping ends training after epoch ``ep``."""
    what = (f"early stopping after epoch {ep}: {stopper.monitor} has not improved by more than {stopper.min_delta:g} "
            f"for {stopper.patience} epochs")
    if stopper.restore_best_weights and best_epoch is not None:
        return f"{what}; restored the weights of epoch {best_epoch} ({stopper.monitor} {stopper.best:.4f})"
    return f"{what}; kept the weights of epoch {ep}"
