"""Command line: ``python -m fastbp demo``, ``bench`` and ``warmup``."""

import argparse
import sys
import time

import numpy as np


def demo(args):
    """Train a 64-128-64-10 MLP on the bundled handwritten digits and report test accuracy."""
    from . import MLP, Adam
    from .datasets import load_digits, train_test_split

    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_fraction=0.25, seed=args.seed)
    X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_fraction=0.15, seed=args.seed)
    print(f"UCI handwritten digits (bundled, CC BY 4.0): {len(X_train)} train, {len(X_val)} validation, "
          f"{len(X_test)} test samples of 8x8 pixels")
    model = MLP([64, 128, 64, 10], activation="relu", loss="softmax_cross_entropy", dtype=np.float32,
                seed=args.seed)
    print(f"model: {model}, {model.n_params:,} parameters, backend {args.backend!r}")
    t0 = time.perf_counter()
    history = model.fit(X_train, y_train, epochs=args.epochs, batch_size=32, optimizer=Adam(lr=1e-3),
                        validation_data=(X_val, y_val), backend=args.backend, verbose=True)
    seconds = time.perf_counter() - t0
    result = model.evaluate(X_test, y_test)
    print(f"trained {len(history['loss'])} epochs in {seconds:.2f} s (first epoch includes compilation, "
          f"cached after the first run) on backend {history['backend']!r}")
    print(f"test loss {result['loss']:.4f}, test accuracy {result['accuracy']:.2%}")
    return 0


def bench(args):
    """Train the same networks with fastbp and its installed peers; print a table (or JSON)."""
    from . import bench as b

    custom = []
    if args.layers:
        try:
            layers = [int(v) for v in args.layers.split("-")]
        except ValueError:
            raise SystemExit(f"--layers must look like 20-64-64-5, got {args.layers!r}") from None
        if len(layers) < 2 or min(layers) < 1 or args.samples < 1 or args.batch < 1:
            raise SystemExit("--layers needs at least two positive widths, and --samples and --batch must be "
                             f"positive; got {args.layers!r}, {args.samples}, {args.batch}")
        custom.append(b.make_workload("custom", layers=layers, samples=args.samples, batch=args.batch,
                                      activation=args.activation))
    workloads = [w for w in args.workloads.split(",") if w] if args.workloads else ([] if custom else None)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    try:
        result = b.run(workloads=workloads if workloads is not None else b.WORKLOAD_NAMES,
                       backends=[n for n in args.backends.split(",") if n],
                       peers=[n for n in args.peers.split(",") if n], epochs=args.epochs, custom=custom, log=log)
    except ValueError as exc:
        raise SystemExit(f"python -m fastbp bench: {exc}") from None
    print(b.to_json(result) if args.json else b.format_table(result))
    if args.plot:
        b.plot(result, args.plot)
        log(f"chart written to {args.plot}")
    return 0


def warmup(args):
    """Compile the common configurations into the kernel cache, with progress."""
    from .warmup import warm_cache

    try:
        done = warm_cache(dtypes=[d for d in args.dtypes.split(",") if d],
                          backends=[b for b in args.backends.split(",") if b])
    except ValueError as exc:
        raise SystemExit(f"python -m fastbp warmup: {exc}") from None
    print(f"{len(done)} configurations compiled or loaded in {sum(s for _, _, s in done):.1f} s; "
          "each now starts warm in a new process")
    return 0


def main(argv=None):
    """Entry point of ``python -m fastbp``."""
    parser = argparse.ArgumentParser(prog="python -m fastbp", description="fastbp: train small MLPs fast.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="train on the bundled handwritten digits and print the test accuracy")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto", choices=["auto", "cpu", "parallel", "numpy"])
    p.set_defaults(run=demo)
    p = commands.add_parser("bench", help="measure fastbp against NumPy, scikit-learn, PyTorch and JAX")
    p.add_argument("--workloads", default=None, help="comma-separated: tiny,digits,medium (default: all three)")
    p.add_argument("--backends", default="cpu,parallel,auto", help="fastbp backends (default: cpu,parallel,auto)")
    p.add_argument("--peers", default="numpy,sklearn,torch,jax", help="peers to try; missing ones are skipped")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per implementation (median reported)")
    p.add_argument("--layers", default=None, help="add a custom workload, e.g. 20-64-64-5 (synthetic data)")
    p.add_argument("--samples", type=int, default=8192, help="samples of the custom workload")
    p.add_argument("--batch", type=int, default=32, help="minibatch of the custom workload")
    p.add_argument("--activation", default="relu", choices=["relu", "tanh"], help="custom workload activation")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="draw a chart (needs matplotlib)")
    p.set_defaults(run=bench)
    p = commands.add_parser("warmup", help="compile the kernels for the common configurations into the cache")
    p.add_argument("--dtypes", default="float32,float64", help="comma-separated (default: float32,float64)")
    p.add_argument("--backends", default="cpu,parallel", help="comma-separated (default: cpu,parallel)")
    p.set_defaults(run=warmup)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
