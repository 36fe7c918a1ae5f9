"""Peer implementations of the same training epoch: NumPy, scikit-learn, PyTorch (eager) and JAX.

Every runner trains the same network from the same initial weights on the
same data, with plain SGD, softmax cross-entropy, minibatches taken in order
and the last partial minibatch kept. A runner is a class with

- ``__init__(workload, Ws, bs)``: build the model from the initial weights;
  raises ``ImportError`` when the peer is not installed;
- ``set_weights(Ws, bs)``: put the network back to the given weights;
- ``epoch()``: one training epoch;
- ``weights()``: the current ``(Ws, bs)`` as NumPy arrays shaped like fastbp's.

Peers are optional and never dependencies of fastbp; each is imported only
when its runner is built.
"""

import functools

import numpy as np

from .. import training
from ..model import MLP
from ..optim import SGD


class FastbpRunner:
    """fastbp itself, on one backend (``cpu``, ``parallel``, ``auto``, ``cuda`` or ``numpy``).

    As the peers convert the data to their own arrays once, before any timing,
    the data is validated and converted once here too, and each epoch is one
    call of the backend's trainer (what ``fit`` runs per epoch). On ``cuda``
    the data, weights and optimizer state stay on the GPU between epochs, as
    in ``fit``; an epoch ends when its statistics are back on the host.
    Building it raises ``CudaUnavailableError`` when ``cuda`` cannot run.
    """

    def __init__(self, workload, Ws, bs, backend):
        self.model = MLP(workload.layers, activation=workload.activation, loss="softmax_cross_entropy",
                         dtype=np.float32)
        self.optimizer = SGD(lr=workload.lr)
        self.optimizer.bind(self.model.n_params, self.model.dtype)
        self.X, self.T = self.model.network.check_data(workload.X, workload.y)
        self.order = np.arange(len(self.X))
        self.resolved = training.choose_backend(backend, workload.layers, workload.batch)
        self.device = "cuda" if self.resolved == "cuda" else "cpu"
        self.batch = workload.batch
        self.trainer = None
        self.set_weights(Ws, bs)

    def set_weights(self, Ws, bs):
        self.model.set_weights(Ws, bs)
        self.optimizer.reset(self.model.n_params, self.model.dtype)
        if self.trainer is None or self.trainer_on_device:
            # The CUDA trainer copies the weights and the optimizer state to the GPU when it is built, and
            # the data here, before any timing (in fit, the first epoch copies it).
            self.trainer = training.make_trainer(self.resolved, self.model.network, self.model.theta,
                                                 self.optimizer, self.batch)
            if self.trainer_on_device:
                self.trainer.upload(self.X, self.T)

    @property
    def trainer_on_device(self):
        return getattr(self.trainer, "on_device", False)

    def epoch(self):
        self.trainer.run_epoch(self.X, self.T, self.order)

    def weights(self):
        if self.trainer_on_device:
            self.trainer.fetch()
        return self.model.get_weights()


class TorchRunner:
    """PyTorch eager mode: ``nn.Sequential`` of ``Linear`` layers, ``CrossEntropyLoss``, ``optim.SGD``.

    ``device="cuda"`` (the ``torch-cuda`` peer) keeps the model and the data
    on PyTorch's first CUDA device, and an epoch ends with
    ``torch.cuda.synchronize()``; it raises ``ImportError`` when PyTorch has
    no CUDA device.
    """

    def __init__(self, workload, Ws, bs, device="cpu"):
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise ImportError("this PyTorch has no CUDA device")
        self.torch = torch
        self.device = device
        act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[workload.activation]
        layers = []
        for l, W in enumerate(Ws):
            layers.append(torch.nn.Linear(*W.shape))
            if l < len(Ws) - 1:
                layers.append(act())
        self.net = torch.nn.Sequential(*layers).to(device)
        self.set_weights(Ws, bs)
        self.loss = torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.net.parameters(), lr=workload.lr)
        self.X = torch.from_numpy(workload.X).to(device)
        self.y = torch.from_numpy(workload.y).to(device)
        self.batch = workload.batch

    def set_weights(self, Ws, bs):
        lins = [m for m in self.net if isinstance(m, self.torch.nn.Linear)]
        with self.torch.no_grad():
            for lin, W, b in zip(lins, Ws, bs):
                lin.weight.copy_(self.torch.from_numpy(W.T.copy()))  # copy_ moves it to the layer's device
                lin.bias.copy_(self.torch.from_numpy(b.copy()))

    def epoch(self):
        n = self.X.shape[0]
        for start in range(0, n, self.batch):
            xb, yb = self.X[start:start + self.batch], self.y[start:start + self.batch]
            self.opt.zero_grad(set_to_none=True)
            self.loss(self.net(xb), yb).backward()
            self.opt.step()
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def weights(self):
        lins = [m for m in self.net if isinstance(m, self.torch.nn.Linear)]
        return ([m.weight.detach().cpu().numpy().T.copy() for m in lins],
                [m.bias.detach().cpu().numpy().copy() for m in lins])


class JaxRunner:
    """JAX: the whole epoch jitted, full minibatches under ``lax.scan`` plus a jitted step for the remainder.

    It runs on JAX's default device (a GPU when JAX has one), named by :attr:`device`; on a GPU with
    float32 matrix products in full float32 (``jax_default_matmul_precision="highest"``), not TF32.
    """

    def __init__(self, workload, Ws, bs):
        import jax
        import jax.numpy as jnp

        act = {"tanh": jnp.tanh, "relu": jax.nn.relu}[workload.activation]
        lr = workload.lr

        def loss_fn(params, xb, yb):
            h = xb
            for W, b in params[:-1]:
                h = act(h @ W + b)
            W, b = params[-1]
            logits = h @ W + b
            logp = jax.nn.log_softmax(logits)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

        def step(params, batch):
            xb, yb = batch
            grads = jax.grad(loss_fn)(params, xb, yb)
            return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), None

        n, batch = workload.X.shape[0], workload.batch
        full = (n // batch) * batch
        self.Xs = jnp.asarray(workload.X[:full].reshape(-1, batch, workload.X.shape[1]))
        self.ys = jnp.asarray(workload.y[:full].reshape(-1, batch).astype(np.int32))
        self.rest = None
        if full < n:
            self.rest = (jnp.asarray(workload.X[full:]), jnp.asarray(workload.y[full:].astype(np.int32)))

        @jax.jit
        def scan_epoch(params, Xs, ys):
            params, _ = jax.lax.scan(step, params, (Xs, ys))
            return params

        self.scan_epoch = scan_epoch
        self.step = jax.jit(lambda params, xb, yb: step(params, (xb, yb))[0])
        self.jnp = jnp
        self.device = jax.default_backend()
        if self.device != "cpu":
            # Full float32 products, as the other implementations do: on recent NVIDIA GPUs JAX's default
            # precision multiplies float32 matrices in TF32.
            jax.config.update("jax_default_matmul_precision", "highest")
        self.set_weights(Ws, bs)

    def set_weights(self, Ws, bs):
        self.params = [(self.jnp.asarray(W), self.jnp.asarray(b)) for W, b in zip(Ws, bs)]

    def epoch(self):
        params = self.scan_epoch(self.params, self.Xs, self.ys)
        if self.rest is not None:
            params = self.step(params, *self.rest)
        self.params = params
        self.params[-1][1].block_until_ready()

    def weights(self):
        return [np.asarray(W) for W, _ in self.params], [np.asarray(b) for _, b in self.params]


class SklearnRunner:
    """scikit-learn's ``MLPClassifier`` (solver ``sgd``, no momentum, no L2), one ``partial_fit`` per epoch.

    With two classes scikit-learn uses one logistic output unit instead of a
    2-way softmax. It starts from the same function (the logistic unit on the
    difference of the two logits), but SGD on that parameterisation follows
    another path, so :attr:`comparable` is False and its final loss differs.
    """

    def __init__(self, workload, Ws, bs):
        from sklearn.neural_network import MLPClassifier

        self.classes = np.arange(workload.layers[-1])
        self.comparable = len(self.classes) > 2
        self.clf = MLPClassifier(hidden_layer_sizes=tuple(workload.layers[1:-1]), activation=workload.activation,
                                 solver="sgd", learning_rate_init=workload.lr, momentum=0.0,
                                 nesterovs_momentum=False, alpha=0.0, batch_size=workload.batch, shuffle=False)
        self.workload = workload
        self.clf.partial_fit(workload.X[:workload.batch], workload.y[:workload.batch], classes=self.classes)
        self.set_weights(Ws, bs)

    def set_weights(self, Ws, bs):
        Ws, bs = [W.copy() for W in Ws], [b.copy() for b in bs]
        if not self.comparable:
            # The same function: a 2-way softmax is a logistic unit on the difference of its logits.
            Ws[-1] = (Ws[-1][:, 1] - Ws[-1][:, 0])[:, None]
            bs[-1] = bs[-1][1:] - bs[-1][:1]
        self.clf.coefs_, self.clf.intercepts_ = Ws, bs
        if hasattr(self.clf, "_optimizer"):
            del self.clf._optimizer  # a fresh optimizer on the next partial_fit

    def epoch(self):
        self.clf.partial_fit(self.workload.X, self.workload.y)

    def weights(self):
        Ws, bs = [W.copy() for W in self.clf.coefs_], [b.copy() for b in self.clf.intercepts_]
        if not self.comparable:
            Ws[-1] = np.hstack([np.zeros_like(Ws[-1]), Ws[-1]])
            bs[-1] = np.concatenate([np.zeros_like(bs[-1]), bs[-1]])
        return Ws, bs


#: Each peer's runner, built as ``PEERS[name](workload, Ws, bs)``.
PEERS = {"numpy": functools.partial(FastbpRunner, backend="numpy"), "sklearn": SklearnRunner,
         "torch": TorchRunner, "torch-cuda": functools.partial(TorchRunner, device="cuda"), "jax": JaxRunner}


def make_peer(name, workload, Ws, bs):
    """Build the runner of peer ``name``; raises ImportError when that peer is not installed (or has no GPU)."""
    return PEERS[name](workload, Ws, bs)
