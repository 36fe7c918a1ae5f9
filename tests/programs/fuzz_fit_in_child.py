"""Train on hostile settings, drawn by Hypothesis, and check that ``fit`` fails only by divergence.

Run by tests/test_properties.py in a child process, so that a crash of the interpreter is a failed
test there rather than the end of the test run. Usage: ``python fuzz_fit_in_child.py [MAX_EXAMPLES]``
(default 300). Prints ``ALL EXAMPLES PASSED`` when every example passed.
"""

import sys
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastbp

ACTS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"]


@st.composite
def cases(draw):
    layers = draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    n = draw(st.integers(1, 9))
    return dict(
        layers=layers, n=n,
        activation=draw(st.lists(st.sampled_from(ACTS), min_size=len(layers) - 2, max_size=len(layers) - 2)),
        loss=draw(st.sampled_from(["mse", "binary_cross_entropy", "softmax_cross_entropy"])),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        backend=draw(st.sampled_from(["numpy", "cpu", "parallel", "auto"])),
        batch_size=draw(st.sampled_from([1, n, n + 1, 7 * n + 5, 1000])),
        epochs=draw(st.integers(1, 3)),
        shuffle=draw(st.booleans()),
        x_scale=draw(st.sampled_from([0.0, 1e-30, 1e-3, 1.0, 1e3, 1e15, 1e30])),
        y_scale=draw(st.sampled_from([1.0, 1e10, 1e30])),
        optimizer=draw(st.sampled_from(["sgd", "momentum", "nesterov", "adam", "adamw"])),
        lr=draw(st.sampled_from([1e-3, 1.0, 1e3, 1e8])),
        seed=draw(st.integers(0, 1000)),
    )


def make_optimizer(name, lr):
    return {"sgd": lambda: fastbp.SGD(lr=lr), "momentum": lambda: fastbp.SGD(lr=lr, momentum=0.9),
            "nesterov": lambda: fastbp.SGD(lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-2),
            "adam": lambda: fastbp.Adam(lr=lr), "adamw": lambda: fastbp.AdamW(lr=lr, weight_decay=0.5)}[name]()


def training_never_fails_but_by_divergence(c):
    rng = np.random.default_rng(c["seed"])
    k = c["layers"][-1]
    X = c["x_scale"] * rng.standard_normal((c["n"], c["layers"][0]))
    if c["loss"] == "mse":
        y = c["y_scale"] * rng.standard_normal((c["n"], k))
    elif c["loss"] == "binary_cross_entropy":
        y = (rng.random((c["n"], k)) > 0.5).astype(float)
    else:
        y = rng.integers(0, k, size=c["n"])
    model = fastbp.MLP(c["layers"], activation=c["activation"], loss=c["loss"], dtype=c["dtype"], seed=c["seed"])
    theta0 = model.theta.copy()
    try:
        history = model.fit(X, y, epochs=c["epochs"], batch_size=c["batch_size"], shuffle=c["shuffle"],
                            optimizer=make_optimizer(c["optimizer"], c["lr"]), backend=c["backend"])
    except fastbp.DivergedError as exc:
        assert "diverged" in str(exc)
        assert np.all(np.isfinite(model.theta)), "DivergedError left non-finite weights"
        if not exc.history["loss"]:
            assert np.array_equal(model.theta, theta0), "divergence in the first epoch changed the weights"
    else:
        assert np.all(np.isfinite(model.theta)), "fit returned with non-finite weights"
        assert len(history["loss"]) == c["epochs"] and np.all(np.isfinite(history["loss"])), history
    with np.errstate(all="ignore"):
        assert model.predict(X).shape == (c["n"], k)


def main(argv):
    max_examples = int(argv[1]) if len(argv) > 1 else 300
    warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the numpy backend is expected here
    check = given(c=cases())(training_never_fails_but_by_divergence)
    check = settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow])(check)
    check()
    print("ALL EXAMPLES PASSED")


if __name__ == "__main__":
    main(sys.argv)
