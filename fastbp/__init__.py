"""fastbp: train small multilayer perceptrons fast.

Back-propagation's hot loops (dense forward pass, deltas, weight gradients)
are compiled with Numba; a whole training epoch runs in one compiled call.

Examples
--------
>>> import numpy as np, fastbp
>>> model = fastbp.MLP([4, 8, 3], activation="tanh", loss="softmax_cross_entropy", seed=0)
>>> model.n_params
67
"""

from .gradcheck import gradcheck
from .lbfgs import LBFGS
from .model import MLP, DivergedError
from .network import Network
from .optim import SGD, Adam, AdamW, Optimizer
from .plotting import plot_history

__version__ = "0.1.0"

__all__ = ["MLP", "SGD", "Adam", "AdamW", "LBFGS", "DivergedError", "Network", "Optimizer", "gradcheck", "plot_history",
           "__version__"]
