"""Full-batch L-BFGS for :meth:`fastbp.MLP.fit`, on SciPy's L-BFGS-B.

``torch.optim.LBFGS`` is PyTorch's full-batch quasi-Newton optimizer; this is
fastbp's, with SciPy's implementation and stopping rules (those of
scikit-learn's ``solver="lbfgs"``) instead of PyTorch's. Each function
evaluation is the whole data set's mean loss and gradient, computed by the
compiled kernels in blocks of rows
(:class:`fastbp.training.FullBatchObjective`); SciPy keeps the curvature
pairs and runs the line search in float64.
"""

import numpy as np

from ._validation import as_positive_int
from .optim import _check_number


class LBFGS:
    """Limited-memory BFGS on the whole training set (SciPy's L-BFGS-B), as an optimizer for :meth:`MLP.fit`.

    Pass it as ``fit(X, y, epochs=N, optimizer=fastbp.LBFGS())``: each epoch
    of the history is one L-BFGS iteration (one or more function
    evaluations, each a pass over all of ``X``), ``epochs`` caps the
    iterations, and ``batch_size`` and ``shuffle`` play no part. Training
    stops earlier when SciPy's convergence test holds; :attr:`converged` and
    :attr:`message` say why it stopped. Callbacks, validation data, early
    stopping, ``sample_weight``, ``l2``, verbose output and Ctrl-C work as
    with the minibatch optimizers. A later ``fit`` starts a new L-BFGS run
    from the model's current weights (the curvature memory is not kept).

    Parameters
    ----------
    tol : float, default 1e-5
        Stop when the largest gradient component is at most ``tol``
        (SciPy's ``gtol``; scikit-learn's ``tol`` for lbfgs).
    ftol : float, default 2.220446049250313e-09
        Stop when the loss falls by less than ``ftol`` relative to its size
        in an iteration (SciPy's ``ftol``).
    max_fun : int, default 15000
        Most loss-and-gradient evaluations in one ``fit``.
    history_size : int, default 10
        Curvature pairs kept (SciPy's ``maxcor``).

    Attributes
    ----------
    n_iter : int
        Iterations of the last ``fit``.
    n_fun : int
        Loss-and-gradient evaluations of the last ``fit``.
    converged : bool or None
        Whether the last ``fit`` stopped by the convergence test (False when
        it ran out of epochs or evaluations or was stopped; None before any).
    message : str or None
        SciPy's reason for stopping, or fastbp's when a callback, early
        stopping or the epoch count ended the run.

    Notes
    -----
    The options are not PyTorch's (``lr``, ``max_iter`` per step,
    ``tolerance_grad``, ``tolerance_change``, ``line_search_fn``): a step of
    ``torch.optim.LBFGS`` runs several iterations, while here one ``fit``
    runs one L-BFGS-B minimisation with SciPy's strong-Wolfe line search.
    A float32 model is evaluated in float32 and SciPy's float64 iterate is
    rounded to float32 at each evaluation.

    Examples
    --------
    >>> import fastbp
    >>> fastbp.LBFGS(tol=1e-6)
    LBFGS(tol=1e-06, ftol=2.220446049250313e-09, max_fun=15000, history_size=10)
    """

    name = "lbfgs"
    _arg_names = ("tol", "ftol", "max_fun", "history_size")

    def __init__(self, tol=1e-5, ftol=2.220446049250313e-09, max_fun=15000, history_size=10):
        self.tol = _check_number("tol", tol)
        self.ftol = _check_number("ftol", ftol)
        self.max_fun = as_positive_int("max_fun", max_fun)
        self.history_size = as_positive_int("history_size", history_size)
        self.n_iter = 0
        self.n_fun = 0
        self.converged = None
        self.message = None

    def state_copy(self):
        """Nothing: no state is kept from one ``fit`` to the next (early stopping calls this)."""
        return None

    def restore_state(self, state):
        """Nothing to restore (see :meth:`state_copy`)."""

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._arg_names)
        return f"{type(self).__name__}({args})"

    def minimize(self, objective, theta, max_iter, on_iteration):
        """Run L-BFGS-B from ``theta`` for at most ``max_iter`` iterations, writing each iterate into ``theta``.

        Parameters
        ----------
        objective : callable
            ``objective() -> (loss, grad)`` at the current ``theta`` (a
            :class:`fastbp.training.FullBatchObjective`).
        theta : ndarray
            The model's parameters, updated in place; at the end they hold
            the last accepted iterate.
        max_iter : int
        on_iteration : callable
            ``on_iteration(iteration, loss) -> stop``, called after each
            iteration with the parameters of that iteration in ``theta``; a
            true value ends the run there.
        """
        import scipy.optimize  # here, not at the top: it adds a quarter of a second to every import of fastbp

        evaluations = 0
        stopped_by = None
        accepted = theta.copy()  # the last accepted iterate: the line search evaluates trial points in theta

        def fun(x):
            nonlocal evaluations
            evaluations += 1
            theta[...] = x
            loss, grad = objective()
            return loss, grad.astype(np.float64)

        def callback(intermediate_result):
            nonlocal stopped_by
            theta[...] = intermediate_result.x
            accepted[...] = theta
            if on_iteration(self.n_iter + 1, float(intermediate_result.fun)):
                stopped_by = "stopped by a callback or early stopping"
                self.n_iter += 1
                raise StopIteration
            self.n_iter += 1

        self.n_iter, self.n_fun, self.converged, self.message = 0, 0, None, None
        options = {"maxiter": max_iter, "maxfun": self.max_fun, "gtol": self.tol, "ftol": self.ftol,
                   "maxcor": self.history_size}
        try:
            result = scipy.optimize.minimize(fun, theta.astype(np.float64), jac=True, method="L-BFGS-B",
                                             options=options, callback=callback)
        except BaseException:  # Ctrl-C or an error inside an evaluation: back to the last accepted iterate
            theta[...] = accepted
            raise
        finally:
            self.n_fun = evaluations
        if stopped_by is None:
            theta[...] = result.x
        self.converged = stopped_by is None and result.status == 0
        self.message = stopped_by or (f"stopped after {max_iter} epochs (iterations)" if result.nit >= max_iter
                                      and not self.converged else str(result.message))
        return result
