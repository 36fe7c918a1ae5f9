"""The device-resident training loop: :class:`DeviceEpochs`."""

import numpy as np

from ... import _settings
from ..layout import ACT, B_OFF, D_IN, D_OUT, N_STATS, S_DIVERGED, W_OFF, row_divisor
from .device import import_cuda, require_device
from .launch import (
    _ceil_div,
    compiled_kernels,
    launch_backprop_delta,
    launch_dense_forward,
    launch_optimizer_update,
    launch_output_delta,
    launch_weight_gradient,
)


class DeviceEpochs:
    """Minibatch training with every array resident on the GPU.

    Parameters
    ----------
    layers : ndarray of int64, shape (L, N_COLS)
        The layer table (``fastbp.kernels.layout``); only the ``D_IN``,
        ``D_OUT``, ``W_OFF``, ``B_OFF`` and ``ACT`` columns are read.
    loss : int
        Loss code.
    theta, m, v : ndarray, shape (P,)
        Host parameters and optimizer state; copied to the device here, and
        back by :meth:`fetch`.
    step : ndarray of int64, shape (1,)
        Host optimizer step counter (copied likewise).
    optimizer : int
        Optimizer code (``layout.SGD``, ``ADAM``, ``ADAMW``).
    hyper : ndarray of float64
        Optimizer hyperparameters.
    batch_size : int
    l2 : float, default 0
        L2 penalty on the weights, as in ``fastbp.kernels.driver``.

    Notes
    -----
    Minibatch semantics follow ``fastbp.kernels.driver.train_epoch``: the
    weighted mean loss per minibatch, a minibatch whose weights sum to zero
    skipped (counted as seen, no step), and an epoch that stops counting and
    stepping at the first minibatch whose loss is not finite; an epoch that
    leaves a parameter non-finite counts as diverged too. On a divergence the
    device state goes back to where the epoch began.
    """

    def __init__(self, layers, loss, theta, m, v, step, optimizer, hyper, batch_size, l2=0.0):
        require_device()
        cuda = import_cuda()
        self._kernels = compiled_kernels()
        self.layers = np.asarray(layers)
        self.loss = int(loss)
        self.optimizer = int(optimizer)
        self.batch_size = int(batch_size)
        self.l2 = float(l2)
        self.dtype = theta.dtype
        self.host = (theta, m, v, step)
        self.theta = cuda.to_device(theta)
        self.m = cuda.to_device(m)
        self.v = cuda.to_device(v)
        self.step = cuda.to_device(step)
        self.hyper = cuda.to_device(np.asarray(hyper, dtype=np.float64))
        self.grad = cuda.device_array_like(theta)
        self.saved = [cuda.device_array_like(a) for a in (theta, m, v, step)]
        n_layers = self.layers.shape[0]
        self.n_outputs = int(self.layers[n_layers - 1, D_OUT])
        self.W, self.b, self.gW, self.gb, self.Z, self.A, self.D, self.act = [], [], [], [], [], [], [], []
        for l in range(n_layers):
            d_in, d_out = int(self.layers[l, D_IN]), int(self.layers[l, D_OUT])
            w_off, b_off = int(self.layers[l, W_OFF]), int(self.layers[l, B_OFF])
            self.W.append(self.theta[w_off:w_off + d_in * d_out].reshape(d_in, d_out))
            self.b.append(self.theta[b_off:b_off + d_out])
            self.gW.append(self.grad[w_off:w_off + d_in * d_out].reshape(d_in, d_out))
            self.gb.append(self.grad[b_off:b_off + d_out])
            self.Z.append(cuda.device_array((self.batch_size, d_out), dtype=self.dtype))
            self.A.append(self.Z[-1] if l == n_layers - 1 else cuda.device_array((self.batch_size, d_out),
                                                                                  dtype=self.dtype))
            self.D.append(cuda.device_array((self.batch_size, d_out), dtype=self.dtype))
            self.act.append(int(self.layers[l, ACT]))
        d0 = int(self.layers[0, D_IN])
        self.xbuf = cuda.device_array((self.batch_size, d0), dtype=self.dtype)
        self.tbuf = cuda.device_array((self.batch_size, self.n_outputs), dtype=self.dtype)
        self.swbuf = cuda.device_array(self.batch_size, dtype=self.dtype)
        self.row_loss = cuda.device_array(self.batch_size, dtype=np.float64)
        self.row_correct = cuda.device_array(self.batch_size, dtype=np.float64)
        self.sq = cuda.to_device(np.zeros(1))
        self.stats = cuda.device_array(N_STATS, dtype=np.float64)
        self._data = None  # (host X, host T, host sw, device X, device T, device sw), kept between epochs

    def _device_data(self, X, T, sw):
        """Device copies of ``X, T, sw``, made once and reused while the same host arrays come back."""
        cached = self._data
        if cached is not None and cached[0] is X and cached[1] is T and cached[2] is sw:
            return cached[3:]
        cuda = import_cuda()
        sw_d = None if sw is None else cuda.to_device(np.ascontiguousarray(sw))
        self._data = (X, T, sw, cuda.to_device(X), cuda.to_device(T), sw_d)
        return self._data[3:]

    def upload(self, X, T, sw=None):
        """Copy the training data to the device now, rather than in the next epoch.

        The copies are kept, and reused by every epoch given the same host arrays.
        """
        self._device_data(X, T, sw)

    def run_epoch(self, X, T, order, sw=None):
        """One epoch over ``X[order]`` on the device.

        Parameters
        ----------
        X : ndarray, shape (n, d_in)
        T : ndarray, shape (n, k)
        order : ndarray of int64, shape (n,)
        sw : ndarray, shape (n,), optional
            Sample weights.

        Returns
        -------
        ndarray of float64, shape (N_STATS,)
            The epoch's statistics (``fastbp.kernels.layout.S_*``): the only
            data copied back from the device.
        """
        cuda = import_cuda()
        kernels = self._kernels
        n = X.shape[0]
        bs = self.batch_size
        threads = _settings.CUDA_THREADS
        X_d, T_d, sw_d = self._device_data(X, T, sw)
        order = np.ascontiguousarray(order, dtype=np.int64)
        in_order = bool(np.array_equal(order, np.arange(n)))
        order_d = None if in_order else cuda.to_device(order)
        if sw is not None:  # minibatch weight sums, in float64 and in order, as the CPU driver adds them
            weights = np.asarray(sw, dtype=np.float64)[order]
            wsums = [float(np.cumsum(weights[s:s + bs])[-1]) for s in range(0, n, bs)]
        for saved, live in zip(self.saved, (self.theta, self.m, self.v, self.step)):
            saved.copy_to_device(live)
        self.stats.copy_to_device(np.zeros(N_STATS))
        per_row = row_divisor(self.loss, self.n_outputs)  # the mean runs over rows * k elements for mse and BCE
        for batch, start in enumerate(range(0, n, bs)):
            nb = min(bs, n - start)
            wsum = float(nb) if sw is None else wsums[batch]
            if wsum == 0.0:  # nothing to learn from: counted as seen, no step
                kernels["batch_stats"][1, threads](self.row_loss, self.row_correct, 0, nb, 0.0, 0.0, self.sq,
                                                   self.stats, self.step)
                continue
            if in_order:
                xb, tb = X_d[start:start + nb], T_d[start:start + nb]
                wb = None if sw_d is None else sw_d[start:start + nb]
            else:
                xb, tb = self.xbuf[:nb], self.tbuf[:nb]
                kernels["gather_rows"][_ceil_div(nb * xb.shape[1], threads), threads](X_d, order_d, start, nb, xb)
                kernels["gather_rows"][_ceil_div(nb * self.n_outputs, threads), threads](T_d, order_d, start, nb, tb)
                wb = None
                if sw_d is not None:
                    wb = self.swbuf[:nb]
                    kernels["gather_rows"][_ceil_div(nb, threads), threads](sw_d.reshape(n, 1), order_d, start, nb,
                                                                            wb.reshape(nb, 1))
            inp = xb
            for l in range(len(self.W)):
                launch_dense_forward(inp, self.W[l], self.b[l], self.act[l], self.Z[l][:nb], self.A[l][:nb])
                inp = self.A[l][:nb]
            divisor = wsum * per_row
            last = len(self.W) - 1
            launch_output_delta(self.Z[last][:nb], tb, self.swbuf if wb is None else wb, wb is not None, self.loss,
                                1.0 / divisor, self.D[last][:nb], self.row_loss, self.row_correct)
            for l in range(last, -1, -1):
                a_prev = xb if l == 0 else self.A[l - 1][:nb]
                launch_weight_gradient(a_prev, self.D[l][:nb], self.gW[l], self.gb[l])
                if l > 0:
                    launch_backprop_delta(self.D[l][:nb], self.W[l], self.Z[l - 1][:nb], a_prev, self.act[l - 1],
                                          self.D[l - 1][:nb])
            penalty = 0.0
            if self.l2 != 0.0:
                coef = self.dtype.type(self.l2 / wsum)
                for l in range(len(self.W)):
                    kernels["add_l2"][1, threads](self.W[l].reshape(self.W[l].size),
                                                  self.gW[l].reshape(self.gW[l].size), coef, self.sq)
                penalty = 0.5 * self.l2 * per_row
            kernels["batch_stats"][1, threads](self.row_loss, self.row_correct, nb, 0, wsum, penalty, self.sq,
                                               self.stats, self.step)
            launch_optimizer_update(self.optimizer, self.theta, self.grad, self.m, self.v, self.hyper, self.step,
                                    self.stats)
        kernels["check_finite"][_ceil_div(self.theta.shape[0], threads), threads](self.theta, self.stats)
        stats = self.stats.copy_to_host()
        if stats[S_DIVERGED]:
            for saved, live in zip(self.saved, (self.theta, self.m, self.v, self.step)):
                live.copy_to_device(saved)
        return stats

    def fetch(self):
        """Copy the device parameters and optimizer state into the host arrays given at construction."""
        theta, m, v, step = self.host
        self.theta.copy_to_host(theta)
        self.m.copy_to_host(m)
        self.v.copy_to_host(v)
        self.step.copy_to_host(step)
