"""One epoch of ``fit`` per workload and backend, its time and its peak memory."""

from .common import WORKLOADS, initial_weights, workload


class TrainEpoch:
    params = [WORKLOADS, ["cpu", "parallel", "numpy"]]
    param_names = ["workload", "backend"]
    timeout = 300

    def setup(self, name, backend):
        from fastbp.bench.peers import FastbpRunner

        self.w = workload(name)
        self.runner = FastbpRunner(self.w, *initial_weights(self.w), backend=backend)
        self.runner.epoch()  # compile outside the timing

    def time_epoch(self, name, backend):
        self.runner.epoch()

    def peakmem_epoch(self, name, backend):
        self.runner.epoch()

    def track_samples_per_second(self, name, backend):
        import time

        t0 = time.perf_counter()
        self.runner.epoch()
        return len(self.w.X) / (time.perf_counter() - t0)

    track_samples_per_second.unit = "samples/s"
