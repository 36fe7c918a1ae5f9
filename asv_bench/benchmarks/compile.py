"""Compile and first-call latency, measured as whole fresh processes.

``track_first_epoch``: seconds from the start of a fresh interpreter, through
``import fastbp``, to the end of the first trained epoch of digits, with the
Numba cache cold (an empty cache directory) or warm (the same directory,
already filled by a previous process).
"""

import os
import shutil
import subprocess
import sys
import tempfile

SCRIPT = """
import time
t0 = time.perf_counter()
import fastbp
from fastbp.datasets import load_digits
X, y = load_digits()
model = fastbp.MLP([64, 128, 64, 10], activation="relu", loss="softmax_cross_entropy", seed=0)
model.fit(X, y, epochs=1, batch_size=32, optimizer=fastbp.SGD(lr=0.05), backend="{backend}")
print(time.perf_counter() - t0)
"""


def _first_epoch_seconds(cache_dir, backend):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(backend=backend)], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


class FirstEpoch:
    params = [["cold", "warm"], ["cpu", "parallel"]]
    param_names = ["cache", "backend"]
    number = 1
    repeat = 1
    timeout = 600

    def setup(self, cache, backend):
        self.cache_dir = tempfile.mkdtemp(prefix="fastbp-numba-cache-")
        if cache == "warm":
            _first_epoch_seconds(self.cache_dir, backend)

    def teardown(self, cache, backend):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def track_first_epoch(self, cache, backend):
        return _first_epoch_seconds(self.cache_dir, backend)

    track_first_epoch.unit = "seconds"
