"""Command line: ``python -m fastbp demo``."""

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


def main(argv=None):
    """Entry point of ``python -m fastbp``."""
    parser = argparse.ArgumentParser(prog="python -m fastbp", description="fastbp: train small MLPs fast.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="train on the bundled handwritten digits and print the test accuracy")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto", choices=["auto", "cpu", "parallel", "numpy"])
    p.set_defaults(run=demo)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
