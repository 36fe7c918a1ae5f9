"""The contract between host code and compiled code: every integer code and index they share.

Compiled code cannot take Python objects, so a network, a loss and an
optimizer reach it as integers and plain arrays. This module is the one place
those integers are defined; the CPU driver, the CUDA code, the trainers, the
optimizers and the model all import them from here.

Layer table
    An int64 array of shape ``(L, N_COLS)``, one row per weight layer: its
    widths ``D_IN`` and ``D_OUT``, the offsets ``W_OFF`` and ``B_OFF`` of its
    weights (row-major ``(d_in, d_out)``) and bias in the flat parameter vector,
    its activation code ``ACT``, the offset ``WS_OFF`` of its block in the
    per-chunk workspaces and ``BACKWARD``, how the training driver runs its
    backward product ``D @ W.T`` (one of the ``BACKWARD_*`` codes below;
    :func:`fastbp.kernels.dense.backward_product` chooses it).
    :class:`fastbp.network.Network` builds it.
Epoch statistics
    A float64 array of ``N_STATS`` values that a training epoch fills, indexed
    by the ``S_*`` constants.
Optimizers
    The rule codes ``SGD``, ``ADAM``, ``ADAMW`` and a float64 array of
    ``N_HYPER`` hyperparameters indexed by the ``H_*`` constants.
Activations and losses
    Integer codes, with :data:`ACTIVATIONS` / :data:`LOSSES` mapping names to
    codes and :data:`ACTIVATION_NAMES` / :data:`LOSS_NAMES` codes to names.
Mean reduction
    :func:`row_divisor`, shared by compiled and host code.
"""

from numba.extending import overload

# ----------------------------------------------------------------------------- layer table
D_IN = 0
D_OUT = 1
W_OFF = 2
B_OFF = 3
ACT = 4
WS_OFF = 5
BACKWARD = 6
N_COLS = 7

# How a layer's backward product D @ W.T runs in the training driver (the BACKWARD column):
BACKWARD_TRANSPOSED = 0  # gemm with W.T as the transposed operand it is
BACKWARD_COPY_WEIGHTS = 1  # on a copy of W.T, written once per minibatch (driver.transpose_weights)
BACKWARD_COPY_DELTAS = 2  # on a copy of D.T, written into the layer's dead Z block just before the product

# ----------------------------------------------------------------------------- epoch statistics
S_LOSS = 0      # sum over rows of the unscaled loss
S_CORRECT = 1   # correct predictions (see losses.count_correct_row)
S_SEEN = 2      # samples processed before stopping
S_DIVERGED = 3  # 1.0 when a minibatch loss was not finite (no step taken for it)
S_WEIGHT = 4    # sum of the sample weights seen (the sample count when unweighted)
N_STATS = 5

# ----------------------------------------------------------------------------- optimizers
SGD = 0
ADAM = 1
ADAMW = 2

H_LR = 0
H_MOMENTUM = 1
H_WEIGHT_DECAY = 2
H_BETA1 = 3
H_BETA2 = 4
H_EPS = 5
H_NESTEROV = 6
H_EPS_HAT = 7  # 1.0: eps added before Adam's second-moment bias correction (scikit-learn, Keras)
N_HYPER = 8

# ----------------------------------------------------------------------------- activations
IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
ELU = 5
SOFTPLUS = 6
GELU = 7

#: Activation names accepted by the model, mapped to their kernel codes.
ACTIVATIONS = {
    "identity": IDENTITY,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
    "softplus": SOFTPLUS,
    "gelu": GELU,
}

#: Activation names by code.
ACTIVATION_NAMES = {code: name for name, code in ACTIVATIONS.items()}

# ----------------------------------------------------------------------------- losses
MSE = 0
BINARY_CROSS_ENTROPY = 1
SOFTMAX_CROSS_ENTROPY = 2
POISSON = 3

#: Loss names accepted by the model, mapped to their kernel codes.
LOSSES = {
    "mse": MSE,
    "binary_cross_entropy": BINARY_CROSS_ENTROPY,
    "softmax_cross_entropy": SOFTMAX_CROSS_ENTROPY,
    "poisson": POISSON,
}

#: Loss names by code.
LOSS_NAMES = {code: name for name, code in LOSSES.items()}


def row_divisor(loss, k):
    """How many values each row's loss sum is averaged over, for ``k`` outputs.

    ``k`` for mse, binary cross-entropy and poisson (their means run over
    every element), 1 for softmax cross-entropy (a mean over rows). A minibatch's
    mean-reduction divisor is its weight sum (its row count when unweighted)
    times this. Callable from host code and from compiled code alike.
    """
    return 1 if loss == SOFTMAX_CROSS_ENTROPY else k


@overload(row_divisor)
def _row_divisor_overload(loss, k):
    return row_divisor
