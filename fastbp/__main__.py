"""Command line: ``python -m fastbp demo``, ``bench`` and ``warmup``."""

import argparse
import os
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
    print(f"trained {len(history['loss'])} epochs in {seconds:.2f} s on backend {history['backend']!r} (the first "
          "epoch of a process includes compiling the kernels, unless they were loaded from the cache)")
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
    given = getattr(args, "workloads", None)  # not given: all three, or none beside a custom workload
    workloads = [w for w in given.split(",") if w] if given is not None else ([] if custom else b.DEFAULT_WORKLOADS)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    try:
        result = b.run(workloads=workloads,
                       backends=[n for n in args.backends.split(",") if n],
                       peers=[n for n in args.peers.split(",") if n], epochs=args.epochs, custom=custom, log=log,
                       rounds=args.rounds)
    except ValueError as exc:
        raise SystemExit(f"python -m fastbp bench: {exc}") from None
    print(b.to_json(result) if args.json else b.format_table(result))
    if args.save:
        with open(args.save, "w") as f:
            f.write(b.to_json(result))
        log(f"figures written to {args.save}")
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


def _positive(text):
    """An argparse type: an int >= 1, or argparse's one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _program_name():
    """``fastbp`` when run as the installed script, ``python -m fastbp`` otherwise."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "fastbp" if name == "fastbp" else "python -m fastbp"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show (None, or a flag's False)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def make_parser(prog=None):
    """The command line's argument parser (every option with its help text and default)."""
    from . import __version__

    defaults = _HelpFormatter
    parser = argparse.ArgumentParser(prog=prog or _program_name(), formatter_class=defaults,
                                     description="fastbp: train small multilayer perceptrons fast.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("demo", formatter_class=defaults,
                            help="train on the bundled handwritten digits and print the test accuracy",
                            description="Train a 64-128-64-10 MLP on the bundled handwritten digits.")
    p.add_argument("--epochs", type=_positive, default=30, help="training epochs")
    p.add_argument("--seed", type=int, default=0, help="seeds the split, the initial weights and the shuffling")
    p.add_argument("--backend", default="auto", choices=["auto", "cpu", "parallel", "numpy"],
                   help="where the training runs")
    p.set_defaults(run=demo)
    p = commands.add_parser("bench", formatter_class=defaults,
                            help="measure fastbp against NumPy, scikit-learn, PyTorch and JAX",
                            description="Train the same networks with fastbp and its installed peers, side by "
                                        "side, and print samples per second.")
    p.add_argument("--workloads", default=argparse.SUPPRESS,
                   help="comma-separated, from tiny,digits,medium,large (default: the first three, or none with "
                        "--layers); large is sized for a GPU")
    p.add_argument("--backends", default="cpu,parallel,auto",
                   help="comma-separated fastbp backends, from cpu,parallel,auto,cuda (cuda needs a GPU)")
    p.add_argument("--peers", default="numpy,sklearn,torch,jax",
                   help="peers to try, from numpy,sklearn,torch,torch-cuda,jax; missing ones are skipped")
    p.add_argument("--epochs", type=_positive, default=5,
                   help="timed epochs per implementation and round (median reported)")
    p.add_argument("--rounds", type=_positive, default=1,
                   help="rounds of every implementation in turn; more rounds even out a noisy machine")
    p.add_argument("--layers", default=None, help="add a custom workload, e.g. 20-64-64-5 (synthetic data)")
    p.add_argument("--samples", type=int, default=8192, help="samples of the custom workload")
    p.add_argument("--batch", type=int, default=32, help="minibatch of the custom workload")
    p.add_argument("--activation", default="relu", choices=["relu", "tanh"], help="custom workload activation")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--save", default=None, metavar="FILE.json", help="also write the figures as JSON to a file")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="draw a chart (needs matplotlib)")
    p.set_defaults(run=bench)
    p = commands.add_parser("warmup", formatter_class=defaults,
                            help="compile the kernels for the common configurations into the cache",
                            description="Compile fit, predict and loss_and_grad for each dtype and backend "
                                        "into the kernel cache, so that later processes start warm.")
    p.add_argument("--dtypes", default="float32,float64", help="comma-separated dtypes")
    p.add_argument("--backends", default="cpu,parallel", help="comma-separated backends")
    p.set_defaults(run=warmup)
    return parser


def main(argv=None):
    """Entry point of ``fastbp`` and ``python -m fastbp``."""
    args = make_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
