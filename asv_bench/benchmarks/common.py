"""Shared set-up for the benchmarks: workloads and data, built the same way as ``python -m fastbp bench``."""

import numpy as np

# Deeper and odd-shaped networks beside the three standard workloads, so that
# speed is watched on shapes nobody tuned for: (layers, samples, batch, activation).
EXTRA_SHAPES = {
    "deep": ([32, 64, 64, 64, 64, 64, 10], 8192, 64, "relu"),
    "odd": ([37, 91, 13, 7], 8192, 48, "tanh"),
    "wide_batch": ([64, 256, 256, 10], 16384, 512, "relu"),
}

WORKLOADS = ["tiny", "digits", "medium"] + sorted(EXTRA_SHAPES)


def workload(name):
    """The named workload (see ``fastbp.bench.make_workload``), or NotImplementedError if this fastbp lacks it."""
    try:
        from fastbp.bench import make_workload
    except ImportError as exc:  # an older fastbp without the bench module
        raise NotImplementedError(str(exc))
    if name in EXTRA_SHAPES:
        layers, samples, batch, activation = EXTRA_SHAPES[name]
        return make_workload(name, layers=layers, samples=samples, batch=batch, activation=activation)
    return make_workload(name)


def initial_weights(w):
    """The seeded initial weights every implementation starts from."""
    import fastbp

    return fastbp.MLP(w.layers, activation=w.activation, loss="softmax_cross_entropy", dtype=np.float32,
                      seed=0).get_weights()
