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
  smaller early in training; with ``epsilon=1e-8`` this is invisible;
- ``learning_rate="invscaling"`` / ``"adaptive"`` (SGD): scikit-learn's rate,
  set on the optimizer between epochs (``lr = rate / c``), with the momentum
  buffer rescaled by ``old_lr / new_lr`` when the rate changes, since
  scikit-learn's velocity keeps the step of the old rate; the trajectory is
  again exactly scikit-learn's;
- ``solver="lbfgs"``: scipy's L-BFGS-B with scikit-learn's options
  (``maxiter``, ``maxfun``, ``gtol=tol``) on fastbp's compiled full-batch loss
  and gradient (:meth:`fastbp.MLP.loss_and_grad` with ``l2 = alpha * c``), the
  gradient divided by ``c`` and the loss converted to scikit-learn's units,
  in scikit-learn's packing of the parameters, so that L-BFGS-B sees the
  numbers it sees in scikit-learn.

**dtype.** With ``dtype=None`` (the default) the estimators follow
scikit-learn: float32 input trains and predicts in float32, which is
fastbp's fast path, and any other input is converted to float64 (float64
stays float64) and trains in float64; ``solver="lbfgs"`` trains in float64,
as scikit-learn's does. ``dtype="float32"`` or ``"float64"`` forces that dtype.

``loss_curve_``, ``loss_`` and ``best_loss_`` are reported in
scikit-learn's units (fastbp's epoch loss divided by ``c``; for regression
with several outputs, scikit-learn reports half the mean over the outputs
while it descends half their sum, and the penalty part of that value is
computed from the weights at the end of the epoch).
"""

# Fail here, with one clear message, before the submodules import scikit-learn;
# validate_data is the newest scikit-learn name they use (scikit-learn >= 1.6).
try:
    import sklearn
    from sklearn.utils.validation import validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "fastbp.sklearn needs scikit-learn (>= 1.6), which is not installed: "
        f"{exc}. Install it with `pip install fastbp[sklearn]`."
    ) from exc
del sklearn, validate_data

from ._classifier import MLPClassifier  # noqa: E402  (after the check above)
from ._regressor import MLPRegressor  # noqa: E402

__all__ = ["MLPClassifier", "MLPRegressor"]
