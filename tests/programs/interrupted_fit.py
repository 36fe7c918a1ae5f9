"""A long fit that receives SIGINT one second in: how soon KeyboardInterrupt arrives, and the model after it.

Usage: ``python interrupted_fit.py BACKEND``. Prints one line of figures.
"""

import os
import signal
import sys
import threading
import time

import numpy as np

import fastbp

backend = sys.argv[1]
rng = np.random.default_rng(0)
n = 400_000 if backend != "numpy" else 100_000
X = rng.standard_normal((n, 20)).astype(np.float32)
y = rng.integers(0, 4, n)
model = fastbp.MLP([20, 64, 64, 4], activation="relu", loss="softmax_cross_entropy", seed=0)
model.fit(X[:256], y[:256], epochs=1, backend=backend)  # compiled before the clock starts
steps_before = int(model.optimizer.step[0])
sent = []
threading.Timer(1.0, lambda: (sent.append(time.perf_counter()), os.kill(os.getpid(), signal.SIGINT))).start()
try:
    model.fit(X, y, epochs=100, backend=backend)
    print("not interrupted")
    sys.exit(1)
except KeyboardInterrupt:
    latency = time.perf_counter() - sent[0]
steps = int(model.optimizer.step[0]) - steps_before
finite = bool(np.all(np.isfinite(model.theta)) and np.all(np.isfinite(model.optimizer.m))
              and np.all(np.isfinite(model.optimizer.v)))
epochs_done = len(model.history["loss"])
proba = model.predict(X[:5])
again = model.fit(X[:512], y[:512], epochs=1, backend=backend)
print(f"latency={latency:.3f} batches_per_epoch={-(-n // 32)} steps={steps} finite={finite} epochs_done={epochs_done} "
      f"predict_ok={bool(np.allclose(proba.sum(axis=1), 1))} refit_ok={bool(np.isfinite(again['loss'][0]))}")
