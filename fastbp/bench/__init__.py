"""``python -m fastbp bench``: fastbp against its peers, side by side, in one run.

Every implementation trains the same network from the same initial weights
on the same data (plain SGD, softmax cross-entropy, float32, minibatches in
order). Each one in turn runs a warm-up epoch (its compile/first-call
time), is reset to the initial weights and runs ``epochs`` timed epochs; with
``rounds`` above 1 the implementations take turns again, each with a warm-up
epoch and a reset first.
The figure reported is the median samples per second of all timed epochs.
The final loss, evaluated by one shared NumPy function on each
implementation's weights, shows that all did the same work.

FLOPs are counted as 2 per weight per sample for the forward pass, the
weight gradient, and every delta pass except the first layer's. %GEMM is a
row's GFLOP/s over NumPy's float32 GEMM rate, measured at the start of each
of the workload's rounds (the median of those).

The header names the BLAS libraries loaded (through threadpoolctl, when it
is installed), with their kernel set and thread count, and warns when
``OPENBLAS_CORETYPE`` forces OpenBLAS's kernel choice. Each row carries the
spread of its timed epochs; a row whose slowest epoch took more than
``NOISY_SPREAD`` times its fastest is flagged as measured on a noisy machine.
"""

import dataclasses
import functools
import json
import os
import platform
import statistics
import time

import numpy as np

from .. import reference
from ..datasets import load_digits, make_classification, make_spirals
from ..kernels.cuda import CudaUnavailableError
from ..model import MLP
from .peers import FastbpRunner, make_peer

WORKLOAD_NAMES = ("tiny", "digits", "medium", "large")
#: What runs when no workload is named: ``large`` is for GPUs (``make gpu-check``).
DEFAULT_WORKLOADS = ("tiny", "digits", "medium")
#: A row whose slowest timed epoch took more than this many times its fastest is flagged as noisy.
NOISY_SPREAD = 1.5
FASTBP_BACKENDS = ("cpu", "parallel", "auto", "cuda")
#: What runs when no backend is named: ``cuda`` needs a GPU.
DEFAULT_BACKENDS = ("cpu", "parallel", "auto")
#: ``torch-cuda`` is PyTorch on its first CUDA device; ``jax`` runs on JAX's default device (a GPU when
#: JAX has one).
PEER_NAMES = ("numpy", "sklearn", "torch", "torch-cuda", "jax")
#: What is tried when no peer is named.
DEFAULT_PEERS = ("numpy", "sklearn", "torch", "jax")


@dataclasses.dataclass
class Workload:
    """A training workload: data, layer sizes, minibatch size, hidden activation and learning rate."""

    name: str
    layers: list
    X: np.ndarray
    y: np.ndarray
    batch: int
    activation: str
    lr: float = 0.05

    @property
    def flops_per_sample(self):
        """2 FLOPs per weight for forward and weight gradient, and for every delta pass but the first layer's."""
        weights = [i * o for i, o in zip(self.layers[:-1], self.layers[1:])]
        return 2 * (2 * sum(weights) + sum(weights[1:]))


def make_workload(name, layers=None, samples=None, batch=None, activation=None):
    """One of the named workloads (``tiny``, ``digits``, ``medium``, ``large``), or a custom one.

    ``large`` (784-1024-1024-10, minibatches of 4096, 65,536 samples) gives a
    GPU enough work per kernel; it is not among :data:`DEFAULT_WORKLOADS`.

    A custom workload gives ``layers`` (e.g. ``[20, 64, 64, 5]``) and takes
    synthetic Gaussian-cluster data with ``samples`` rows.
    """
    if name == "tiny":
        X, y = make_spirals(8192, n_classes=2, seed=0)
        return Workload("tiny", [2, 32, 32, 2], X, y, batch or 32, activation or "tanh")
    if name == "digits":
        X, y = load_digits()
        return Workload("digits", [64, 128, 64, 10], X, y, batch or 32, activation or "relu")
    if name == "medium":
        X, y = make_classification(16384, 784, 10, seed=0)
        return Workload("medium", [784, 256, 128, 10], X, y, batch or 128, activation or "relu")
    if name == "large":
        X, y = make_classification(65536, 784, 10, seed=0)
        return Workload("large", [784, 1024, 1024, 10], X, y, batch or 4096, activation or "relu")
    if layers is None:
        raise ValueError(f"unknown workload {name!r}: use tiny, digits, medium, large, or give --layers")
    X, y = make_classification(samples or 8192, layers[0], layers[-1], seed=0)
    return Workload(name, list(layers), X, y, batch or 32, activation or "relu")


def gemm_gflops(sizes=(256, 512, 1024), repeats=15):
    """The machine's float32 GEMM rate: the best, over ``sizes``, of the median of NumPy square matmuls."""
    rng = np.random.default_rng(0)
    best = 0.0
    for size in sizes:
        a = rng.standard_normal((size, size)).astype(np.float32)
        b = rng.standard_normal((size, size)).astype(np.float32)
        a @ b
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        best = max(best, 2 * size ** 3 / statistics.median(times) / 1e9)
    return best


def _gemm_after_warm_up(rates):
    """Append the GEMM rate to ``rates``, measured after an untimed measurement.

    The untimed one takes the slowdown from the previous runner's spinning
    threads, as each runner's warm-up epoch does in :func:`measure`.
    """
    gemm_gflops()
    rates.append(gemm_gflops())


def cpu_model():
    """The processor's name (from /proc/cpuinfo where there is one) and its logical core count."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def blas_info():
    """The BLAS libraries loaded in this process: library, version, kernel set and threads.

    Returns
    -------
    list of dict
        One entry per library threadpoolctl finds (``[]`` without threadpoolctl).
    """
    try:
        import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, the one fastbp's kernels call)
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("internal_api", "version", "architecture", "num_threads", "filepath")
    return [{k: info.get(k) for k in keys} for info in threadpool_info() if info.get("user_api") == "blas"]


def blas_warnings():
    """Lines that say when the environment overrides OpenBLAS's own choices (``OPENBLAS_CORETYPE``...)."""
    lines = []
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            lines.append(f"warning: {name}={os.environ[name]} overrides OpenBLAS's own choice for this machine; "
                         "users' machines run the kernels OpenBLAS picks itself (unset it to measure those)")
    return lines


def _final_loss(runner, workload):
    """Softmax cross-entropy of the runner's current weights on the whole data, by the shared NumPy code."""
    Ws, bs = runner.weights()
    Zs, _ = reference.forward(workload.X.astype(np.float64), [W.astype(np.float64) for W in Ws],
                              [b.astype(np.float64) for b in bs], [workload.activation] * (len(Ws) - 1))
    T = np.eye(workload.layers[-1])[workload.y]
    return reference.loss_value("softmax_cross_entropy", Zs[-1], T)


def measure(runners, workload, init, epochs, rounds=1, before_round=None):
    """Time every runner on ``workload``, one after the other: a warm-up epoch, then rounds of timed epochs.

    The runners are not interleaved epoch by epoch: PyTorch's and JAX's thread
    pools keep spinning for a while after their work, which slows whichever
    implementation runs next (the performance page has the figure). Each of
    ``rounds`` rounds runs every runner in turn: an untimed epoch (which
    takes that slowdown; the first round's is the first-call time), a reset
    to the initial weights, ``epochs`` timed epochs. A slow spell of a
    shared machine, which lasts seconds, then falls on every implementation
    alike. ``before_round``, when given, is called with no arguments at the
    start of every round (:func:`run` measures the GEMM rate there, so that
    it takes its turn with the implementations).

    Returns
    -------
    dict
        Per runner name: samples per second (median of all timed epochs),
        GFLOP/s, final loss (after the last round), first-call seconds and the
        epoch times.
    """
    first_call, times = {}, {name: [] for name in runners}
    for _ in range(rounds):
        if before_round is not None:
            before_round()
        for name, runner in runners.items():
            # A warm-up epoch right before the runner's own timed epochs, in every round: it also takes the
            # slowdown from the previous runner's spinning threads. The first one is the first-call time.
            t0 = time.perf_counter()
            runner.epoch()
            first_call.setdefault(name, time.perf_counter() - t0)
            runner.set_weights(*init)
            for _ in range(epochs):
                t0 = time.perf_counter()
                runner.epoch()
                times[name].append(time.perf_counter() - t0)
    n = workload.X.shape[0]
    results = {}
    for name, runner in runners.items():
        sps = n / statistics.median(times[name])
        spread = max(times[name]) / min(times[name]) if min(times[name]) > 0 else float("inf")
        results[name] = {"samples_per_second": sps, "gflops": sps * workload.flops_per_sample / 1e9,
                         "final_loss": _final_loss(runner, workload), "first_call_s": first_call[name],
                         "epoch_times_s": times[name], "samples_per_second_min": n / max(times[name]),
                         "samples_per_second_max": n / min(times[name]) if min(times[name]) > 0 else float("inf"),
                         "spread": spread, "noisy": spread > NOISY_SPREAD}
    return results


def _check_names(kind, given, known):
    unknown = [name for name in given if name not in known]
    if unknown:
        raise ValueError(f"unknown {kind} {', '.join(map(repr, unknown))}: expected one of {', '.join(known)}")


def run(workloads=DEFAULT_WORKLOADS, backends=DEFAULT_BACKENDS, peers=DEFAULT_PEERS, epochs=5,
        custom=None, log=print, rounds=1):
    """Run the comparison; returns a JSON-ready dict (see :func:`format_table`).

    Parameters
    ----------
    workloads : sequence of str
        Names of default workloads.
    backends : sequence of str
        fastbp backends to measure.
    peers : sequence of str
        Peers to measure when installed (``numpy`` is always installed).
    epochs : int
        Timed epochs per implementation and round; the median of all is reported.
    custom : list of Workload, optional
        Extra workloads.
    log : callable
        Progress messages.
    rounds : int
        Rounds of ``epochs`` epochs of every implementation in turn (see :func:`measure`).

    Each workload's ``gemm_gflops_rounds`` holds the float32 GEMM rate measured
    at the start of each of its rounds, its ``gemm_gflops`` their median (which
    its rows' ``gemm_fraction`` divide by), and ``machine["gemm_gflops"]`` the
    median over every workload's rounds.
    """
    _check_names("workload", workloads, WORKLOAD_NAMES)
    _check_names("fastbp backend", backends, FASTBP_BACKENDS + ("numpy",))
    _check_names("peer", peers, PEER_NAMES)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    for line in blas_warnings():
        log(line)
    every_gemm = []  # GFLOP/s, one measurement at the start of each workload's rounds
    result = {"machine": {"platform": platform.platform(), "processor": cpu_model(),
                          "python": platform.python_version(), "blas": blas_info(),
                          "blas_overrides": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                                             if k in os.environ}},
              "date": time.strftime("%Y-%m-%d"), "epochs": epochs, "rounds": rounds, "workloads": []}
    for workload in [make_workload(name) for name in workloads] + list(custom or []):
        init = MLP(workload.layers, activation=workload.activation, loss="softmax_cross_entropy",
                   dtype=np.float32, seed=0).get_weights()
        candidates = [(f"fastbp-{b}", lambda b=b, w=workload, i=init: FastbpRunner(w, *i, backend=b))
                      for b in backends]
        candidates += [(p, lambda p=p, w=workload, i=init: make_peer(p, w, *i)) for p in peers]
        runners = {}
        for name, build in candidates:
            try:
                runners[name] = build()
            except (ImportError, CudaUnavailableError) as exc:
                log(f"  {workload.name}: {name} skipped ({exc})")
        rows, gemm_rates = [], []
        # A slow spell slows the GEMM as much as the implementations, so each workload's fractions are of the
        # median GEMM rate of its own rounds, not of one measurement at the start of the run.
        timed = measure(runners, workload, init, epochs, rounds,
                        before_round=functools.partial(_gemm_after_warm_up, gemm_rates))
        gemm = statistics.median(gemm_rates)
        every_gemm += gemm_rates
        log(f"  {workload.name}: float32 GEMM {gemm:.1f} GFLOP/s (median of {len(gemm_rates)}, one per round)")
        for name, figures in timed.items():
            runner = runners[name]
            device = getattr(runner, "device", "cpu")
            # the GEMM rate is the CPU's: no fraction for a row that ran on another device
            row = {"implementation": name, **figures,
                   "gemm_fraction": figures["gflops"] / gemm if device == "cpu" else None, "device": device}
            if getattr(runner, "resolved", None):
                row["resolved_backend"] = runner.resolved
            if getattr(runner, "comparable", True) is False:
                row["note"] = "2 classes: one logistic output, another SGD path"
            rows.append(row)
            log(f"  {workload.name}: {name} {row['samples_per_second']:,.0f} samples/s")
        best = max((r for r in rows if r["implementation"].startswith("fastbp")),
                   key=lambda r: r["samples_per_second"], default=None)
        for r in rows:
            r["fastbp_speedup"] = best["samples_per_second"] / r["samples_per_second"] if best else None
        result["workloads"].append({"name": workload.name, "layers": workload.layers, "samples": len(workload.X),
                                    "batch": workload.batch, "activation": workload.activation,
                                    "gemm_gflops": gemm, "gemm_gflops_rounds": gemm_rates,
                                    "flops_per_sample": workload.flops_per_sample, "results": rows})
    result["machine"]["gemm_gflops"] = statistics.median(every_gemm) if every_gemm else gemm_gflops()
    return result


def format_table(result):
    """The comparison as a plain-text table: one row per workload and implementation."""
    header = (f"{'workload':<8} {'implementation':<22} {'samples/s':>12} {'min-max':>15} {'fastbp x':>9} "
              f"{'GFLOP/s':>8} {'%GEMM':>6} {'final loss':>11} {'1st call s':>10}")
    machine = result["machine"]
    gemm_rounds = sum(len(w.get("gemm_gflops_rounds", ())) for w in result["workloads"])
    gemm_note = f" (median of {gemm_rounds} rounds)" if gemm_rounds else ""
    lines = [f"fastbp bench, {result['date']}, {machine['processor']}, "
             f"float32 GEMM {machine['gemm_gflops']:.1f} GFLOP/s{gemm_note}, median of {_epoch_count(result)}"]
    for lib in machine.get("blas", []):
        lines.append(f"BLAS: {lib['internal_api']} {lib['version']}, kernels {lib['architecture']}, "
                     f"{lib['num_threads']} threads ({os.path.basename(str(lib['filepath']))})")
    for name, value in machine.get("blas_overrides", {}).items():
        lines.append(f"warning: {name}={value} forces OpenBLAS's kernel choice")
    lines += [header, "-" * len(header)]
    for w in result["workloads"]:
        for r in w["results"]:
            name = r["implementation"] + (f" ({r['resolved_backend']})" if r["implementation"] == "fastbp-auto"
                                          else "")
            if r.get("device", "cpu") != "cpu" and not r["implementation"].endswith(("-cuda", "(cuda)")):
                name += f" [{r['device']}]"
            note = ("  *" if "note" in r else "") + ("  ! noisy" if r.get("noisy") else "")
            span = (f"{_short(r['samples_per_second_min'])}-{_short(r['samples_per_second_max'])}"
                    if "samples_per_second_min" in r else "")
            fraction = "-" if r.get("gemm_fraction") is None else f"{100 * r['gemm_fraction']:.1f}%"
            lines.append(f"{w['name']:<8} {name:<22} {r['samples_per_second']:>12,.0f} {span:>15} "
                         f"{r['fastbp_speedup']:>8.2f}x {r['gflops']:>8.2f} {fraction:>6} "
                         f"{r['final_loss']:>11.6f} {r['first_call_s']:>10.3f}{note}")
    if any("note" in r for w in result["workloads"] for r in w["results"]):
        lines.append("* sklearn with 2 classes: one logistic output unit (same function at the start, "
                     "another SGD path), so its loss differs")
    if any(r.get("noisy") for w in result["workloads"] for r in w["results"]):
        lines.append(f"! noisy: the slowest timed epoch took more than {NOISY_SPREAD}x the fastest; the machine was "
                     "busy, so measure that row again")
    lines.append("min-max: samples/s of the slowest and the fastest timed epoch")
    per_workload = [f"{w['name']} {w['gemm_gflops']:.1f}" for w in result["workloads"]
                    if "gemm_gflops" in w and any(r.get("device", "cpu") == "cpu" for r in w["results"])]
    if per_workload:
        lines.append("%GEMM: GFLOP/s over the float32 GEMM rate measured at the start of each of the workload's "
                     f"rounds (median, GFLOP/s): {', '.join(per_workload)}")
    lines.append("fastbp x: the fastest fastbp backend's samples/s divided by this row's, in this run")
    return "\n".join(lines)


def _epoch_count(result):
    """``7 epochs``, or ``3 rounds x 5 epochs``."""
    rounds = result.get("rounds", 1)
    epochs = f"{result['epochs']} epochs"
    return epochs if rounds == 1 else f"{rounds} rounds x {epochs}"


def _short(value):
    """A rate in three significant figures with a k/M suffix (``4.39M``)."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def plot(result, path):
    """A chart of samples per second (needs matplotlib): one panel per workload, higher is better.

    Each implementation is a point on a logarithmic axis, labelled with its
    rate and its ratio to the fastest fastbp backend, so that gaps read as
    ratios rather than as bar lengths from an arbitrary bottom; fastbp's
    backends and the peers have their own marker and colour.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = result["workloads"]
    fig, axes = plt.subplots(len(workloads), 1, figsize=(9, 1.2 + 1.6 * len(workloads)), squeeze=False)
    for ax, w in zip(axes[:, 0], workloads):
        rows = sorted(w["results"], key=lambda r: r["samples_per_second"])
        names = [r["implementation"] for r in rows]
        values = [r["samples_per_second"] for r in rows]
        ours = [n.startswith("fastbp") for n in names]
        y = np.arange(len(rows))
        ax.hlines(y, min(values) / 2, values, color="0.85", linewidth=1)
        ax.scatter([v for v, o in zip(values, ours) if o], [i for i, o in zip(y, ours) if o], color="C0",
                   marker="o", s=40, zorder=3, label="fastbp")
        ax.scatter([v for v, o in zip(values, ours) if not o], [i for i, o in zip(y, ours) if not o], color="C1",
                   marker="s", s=36, zorder=3, label="peers")
        for i, r in enumerate(rows):
            ax.annotate(f"{_short(r['samples_per_second'])}  ({1 / r['fastbp_speedup']:.2g}x)",
                        (r["samples_per_second"], i), xytext=(6, 0), textcoords="offset points", va="center",
                        fontsize=8)
        ax.set_xscale("log")
        ax.set_xlim(min(values) / 2, max(values) * 6)
        ax.set_yticks(y)
        ax.set_yticklabels(names, fontsize=8)
        ax.set_title(f"{w['name']} {'-'.join(map(str, w['layers']))}, batch {w['batch']}", fontsize=9, loc="left")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    axes[-1, 0].set_xlabel("samples per second, median epoch (log scale; higher is better); "
                           "in brackets: relative to the fastest fastbp backend")
    fig.suptitle(f"fastbp and its peers, float32, {result['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def to_json(result):
    """The result as a JSON string."""
    return json.dumps(result, indent=2)
