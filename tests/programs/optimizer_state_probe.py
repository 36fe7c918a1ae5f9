"""Fit with optimizer state assigned by hand, right and wrong, and print what each fit did as JSON.

Run by tests/test_reliability.py in a child process: state of the wrong size once reached the
compiled update unchecked and crashed the interpreter (SIGSEGV, ``free(): invalid size``), which a
test in the test runner's own process would turn into a dead runner instead of a failure. Prints one
JSON object: for each case, the exception raised by ``fit`` (``null`` when it trained), its message,
and whether the model's weights and the optimizer's arrays were left as they were.
"""

import json
import sys

import numpy as np

import fastbp

N_PARAMS = 3 * 4 + 4 + 4 * 2 + 2  # the [3, 4, 2] models below


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)), rng.standard_normal((n, 2))


def trained(opt_factory=fastbp.Adam, layers=(3, 4, 2), backend="cpu"):
    """A float64 model and its optimizer after one epoch, so the optimizer has state of its own."""
    model = fastbp.MLP(list(layers), activation="tanh", loss="mse", dtype=np.float64, seed=0)
    opt = opt_factory()
    X, y = data() if layers == (3, 4, 2) else (np.ones((8, layers[0])), np.ones((8, layers[-1])))
    model.fit(X, y, epochs=1, batch_size=8, optimizer=opt, backend=backend)
    return model, opt


def other_state(n):
    other, opt = trained(layers=(3, n, 2))
    return opt


# name -> (what to assign, optimizer factory)
def bad_cases():
    f64 = np.float64
    return {
        "v_short": dict(v=np.zeros(N_PARAMS - 5, f64)),
        "v_long": dict(v=np.zeros(N_PARAMS + 100, f64)),
        "v_empty": dict(v=np.zeros(0, f64)),
        "v_float32": dict(v=np.zeros(N_PARAMS, np.float32)),
        "v_big_endian": dict(v=np.zeros(N_PARAMS, ">f8")),
        "v_2d": dict(v=np.zeros((N_PARAMS, 1), f64)),
        "v_strided": dict(v=np.zeros(2 * N_PARAMS, f64)[::2]),
        "v_read_only": dict(v=np.frombuffer(np.zeros(N_PARAMS).tobytes(), dtype=f64)),
        "v_list": dict(v=[0.0] * N_PARAMS),
        "v_none": dict(v=None),
        "m_short": dict(m=np.zeros(N_PARAMS - 1, f64)),
        "m_and_v_of_another_model": "other",
        "step_int32": dict(step=np.zeros(1, np.int32)),
        "step_two_items": dict(step=np.zeros(2, np.int64)),
        "step_empty": dict(step=np.zeros(0, np.int64)),
        "step_python_int": dict(step=5),
        "step_negative": dict(step=np.array([-1], np.int64)),
        "sgd_momentum_v_short": dict(v=np.zeros(3, f64), factory="sgd"),
    }


def snapshot(model, opt):
    return (model.theta.copy(), [None if a is None or not isinstance(a, np.ndarray) else a.copy()
                                 for a in (opt.m, opt.v, opt.step)], (opt.m, opt.v, opt.step))


def unchanged(model, opt, snap):
    theta, copies, arrays = snap
    same_arrays = all(a is b for a, b in zip((opt.m, opt.v, opt.step), arrays))
    same_values = all(c is None or np.array_equal(a, c) for a, c in zip((opt.m, opt.v, opt.step), copies))
    return bool(np.array_equal(model.theta, theta) and same_arrays and same_values)


def run_bad(name, case, backend):
    factory = fastbp.Adam
    if isinstance(case, dict) and case.get("factory") == "sgd":
        factory = lambda: fastbp.SGD(lr=0.1, momentum=0.9)  # noqa: E731
    model, opt = trained(factory, backend=backend)
    if case == "other":
        donor = other_state(7)
        opt.m, opt.v, opt.step = donor.m, donor.v, donor.step
    else:
        for key, value in case.items():
            if key != "factory":
                setattr(opt, key, value)
    snap = snapshot(model, opt)
    X, y = data(seed=1)
    try:
        model.fit(X, y, epochs=1, batch_size=8, optimizer=opt, backend=backend)
    except Exception as exc:  # the test checks which exception
        return {"error": type(exc).__name__, "message": str(exc), "unchanged": unchanged(model, opt, snap)}
    return {"error": None, "message": "", "unchanged": unchanged(model, opt, snap)}


def run_good():
    """State that fits, and state made for another network: both train."""
    out = {}
    X, y = data(seed=1)
    # state restored by hand from a twin: the same trajectory as continuing with the twin's optimizer
    a, opt_a = trained()
    b = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=np.float64, seed=5)
    b.theta[...] = a.theta
    opt_b = fastbp.Adam()
    opt_b.m, opt_b.v, opt_b.step = opt_a.m.copy(), opt_a.v.copy(), opt_a.step.copy()
    a.fit(X, y, epochs=1, batch_size=8, optimizer=opt_a, shuffle=False)
    b.fit(X, y, epochs=1, batch_size=8, optimizer=opt_b, shuffle=False)
    out["restored_state_continues"] = bool(np.array_equal(a.theta, b.theta) and int(opt_b.step[0]) == 6)
    # an optimizer used with another network, or another dtype, starts afresh
    _, opt = trained(layers=(3, 7, 2))
    model = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    model.fit(X, y, epochs=1, batch_size=8, optimizer=opt)
    out["other_network_starts_afresh"] = bool(opt.m.shape == (N_PARAMS,) and int(opt.step[0]) == 3)
    model32 = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=np.float32, seed=0)
    model32.fit(X, y, epochs=1, batch_size=8, optimizer=opt)
    out["other_dtype_starts_afresh"] = bool(opt.v.dtype == np.float32 and int(opt.step[0]) == 3)
    # a callback that replaces the state mid-fit is caught before the next epoch
    model, opt = trained()

    def swap(epoch, logs):
        opt.v = np.zeros(2)

    try:
        model.fit(X, y, epochs=3, batch_size=8, optimizer=opt, callbacks=[swap])
    except ValueError as exc:
        out["replaced_mid_fit"] = str(exc)
    return out


def main():
    backends = sys.argv[1:] or ["cpu"]
    result = {"bad": {}, "good": run_good()}
    for backend in backends:
        for name, case in bad_cases().items():
            result["bad"][f"{backend}:{name}"] = run_bad(name, case, backend)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
