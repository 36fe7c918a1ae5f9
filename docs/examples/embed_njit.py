"""A user's own @njit training loop built from fastbp's three kernels.

Trains a 2-16-16-3 tanh network on three spirals with plain SGD and softmax
cross-entropy, entirely inside one compiled function, then checks the
kernels' gradient against fastbp.MLP.loss_and_grad.

Run it with ``python docs/examples/embed_njit.py``.
"""

import math

import numba
import numpy as np

import fastbp
from fastbp.datasets import make_spirals
from fastbp.kernels import IDENTITY, TANH, backprop_delta, dense_forward, weight_gradient


@numba.njit
def softmax_xent_delta(Z, labels, D):
    """Mean softmax cross-entropy of logits Z and its delta dJ/dZ, written into D."""
    n, k = Z.shape
    loss = 0.0
    for i in range(n):
        m = Z[i].max()
        s = 0.0
        for j in range(k):
            D[i, j] = math.exp(Z[i, j] - m)
            s += D[i, j]
        loss += m + math.log(s) - Z[i, labels[i]]
        for j in range(k):
            D[i, j] = D[i, j] / s / n
        D[i, labels[i]] -= 1.0 / n
    return loss / n


@numba.njit
def gradients(X, labels, W1, b1, W2, b2, W3, b3, ws):
    """Forward pass, deltas and gradients of a two-hidden-layer net; returns the loss."""
    Z1, A1, D1, Z2, A2, D2, Z3, D3, gW1, gb1, gW2, gb2, gW3, gb3 = ws
    dense_forward(X, W1, b1, TANH, Z1, A1)
    dense_forward(A1, W2, b2, TANH, Z2, A2)
    dense_forward(A2, W3, b3, IDENTITY, Z3, Z3)           # linear output: A may be Z itself
    loss = softmax_xent_delta(Z3, labels, D3)
    weight_gradient(A2, D3, gW3, gb3)
    backprop_delta(D3, W3, Z2, A2, TANH, D2)
    weight_gradient(A1, D2, gW2, gb2)
    backprop_delta(D2, W2, Z1, A1, TANH, D1)
    weight_gradient(X, D1, gW1, gb1)
    return loss


@numba.njit
def train(X, labels, params, epochs, batch, lr):
    """Minibatch SGD for ``epochs`` epochs; returns the mean loss of each epoch."""
    W1, b1, W2, b2, W3, b3 = params
    n = X.shape[0]
    h1, h2, k = W1.shape[1], W2.shape[1], W3.shape[1]
    # Workspaces, allocated once: the kernels themselves never allocate.
    ws = (np.empty((batch, h1)), np.empty((batch, h1)), np.empty((batch, h1)),
          np.empty((batch, h2)), np.empty((batch, h2)), np.empty((batch, h2)),
          np.empty((batch, k)), np.empty((batch, k)),
          np.empty_like(W1), np.empty_like(b1), np.empty_like(W2), np.empty_like(b2),
          np.empty_like(W3), np.empty_like(b3))
    history = np.zeros(epochs)
    for epoch in range(epochs):
        for start in range(0, n - batch + 1, batch):      # full batches only, for fixed shapes
            loss = gradients(X[start:start + batch], labels[start:start + batch],
                             W1, b1, W2, b2, W3, b3, ws)
            history[epoch] += loss * batch / n
            gW1, gb1, gW2, gb2, gW3, gb3 = ws[8:]         # SGD step on every parameter array
            W1 -= lr * gW1
            b1 -= lr * gb1
            W2 -= lr * gW2
            b2 -= lr * gb2
            W3 -= lr * gW3
            b3 -= lr * gb3
    return history


def main():
    X, y = make_spirals(1536, n_classes=3, noise=0.1, seed=0, dtype=np.float64)
    model = fastbp.MLP([2, 16, 16, 3], activation="tanh", loss="softmax_cross_entropy",
                       dtype=np.float64, seed=0)
    Ws, bs = model.get_weights()

    # 1. The kernels agree with the model's own gradient.
    n = len(X)
    ws = (np.empty((n, 16)), np.empty((n, 16)), np.empty((n, 16)), np.empty((n, 16)), np.empty((n, 16)),
          np.empty((n, 16)), np.empty((n, 3)), np.empty((n, 3)),
          *[np.empty_like(a) for pair in zip(Ws, bs) for a in pair])
    loss = gradients(X, y, Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2], ws)
    ref_loss, gWs, gbs = model.loss_and_grad(X, y)
    err = max(np.abs(ws[8] - gWs[0]).max(), np.abs(ws[12] - gWs[2]).max(), abs(loss - ref_loss))
    print(f"loss {loss:.6f} (model: {ref_loss:.6f}); largest gradient difference {err:.1e}")
    assert err < 1e-10

    # 2. Train with the user's own compiled loop.
    params = (Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2])
    history = train(X, y, params, 200, 32, 0.5)
    model.set_weights([Ws[0], Ws[1], Ws[2]], [bs[0], bs[1], bs[2]])
    accuracy = model.evaluate(X, y)["accuracy"]
    print(f"loss {history[0]:.3f} -> {history[-1]:.3f} over {len(history)} epochs; accuracy {accuracy:.1%}")
    assert history[-1] < 0.5 * history[0]


if __name__ == "__main__":
    main()
