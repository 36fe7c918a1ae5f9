"""The same epochs in NumPy, scikit-learn, PyTorch (eager) and JAX (whole epoch jitted with lax.scan).

Each peer skips itself (NotImplementedError in setup) when it is not installed.
"""

from .common import WORKLOADS, initial_weights, workload


class PeerEpoch:
    params = [WORKLOADS, ["numpy", "sklearn", "torch", "jax"]]
    param_names = ["workload", "peer"]
    timeout = 300

    def setup(self, name, peer):
        from fastbp.bench.peers import make_peer

        self.w = workload(name)
        try:
            self.runner = make_peer(peer, self.w, *initial_weights(self.w))
        except ImportError as exc:
            raise NotImplementedError(f"{peer} is not installed: {exc}")
        self.runner.epoch()  # jit / warm up outside the timing

    def time_epoch(self, name, peer):
        self.runner.epoch()
