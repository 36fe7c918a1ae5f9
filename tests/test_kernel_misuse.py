"""Misuse of the public kernels, and a damaged kernel cache: clear errors, or recovery, never wrong results.

The public kernels (fastbp/kernels/dense.py, checked by fastbp/kernels/checks.py) reject an unknown
activation code, outputs that share memory with inputs, and arrays of the wrong kind, with a one-line
``ValueError`` / ``TypeError`` naming the argument, from Python and from a user's jitted code. The
compiled training driver keeps calling the unchecked kernels.

A damaged on-disk cache (fastbp/kernels/compile.py) is dropped and recompiled with one warning; the
checks run in child processes with a cache directory of their own.
"""

import json
import os
import shutil
import subprocess
import sys

import numba
import numpy as np
import pytest
from conftest import PROGRAMS

from fastbp import kernels
from fastbp.kernels import dense, driver

kernels.configure_threading()

FORWARD = {"serial": kernels.dense_forward, "parallel": kernels.dense_forward_parallel}
BACKPROP = {"serial": kernels.backprop_delta, "parallel": kernels.backprop_delta_parallel}
GRADIENT = {"serial": kernels.weight_gradient, "parallel": kernels.weight_gradient_parallel}
BACKENDS = list(FORWARD)


def z(*shape, dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


def one_line(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message.strip(), message
    return message


# --------------------------------------------------------------------------- activation codes
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("code", [99, -1, len(kernels.ACTIVATIONS)])
def test_unknown_activation_code_is_rejected(code, backend):
    X, W, b = np.ones((4, 3)), np.ones((3, 2)), np.ones(2)
    Z, A = np.full((4, 2), 7.0), np.full((4, 2), 7.0)
    with pytest.raises(ValueError, match="dense_forward: act must be an activation code") as excinfo:
        FORWARD[backend](X, W, b, code, Z, A)
    assert str(code) in one_line(excinfo)
    assert np.all(Z == 7.0) and np.all(A == 7.0)  # nothing written (it used to compute GELU)

    D = np.full((4, 3), 7.0)
    with pytest.raises(ValueError, match="backprop_delta: act must be an activation code") as excinfo:
        BACKPROP[backend](np.ones((4, 2)), W, np.ones((4, 3)), np.ones((4, 3)), code, D)
    one_line(excinfo)
    assert np.all(D == 7.0)


def test_every_activation_code_is_accepted():
    X, W, b = np.ones((4, 3)), np.ones((3, 2)), np.ones(2)
    for code in kernels.ACTIVATIONS.values():
        kernels.dense_forward(X, W, b, code, z(4, 2), z(4, 2))


# --------------------------------------------------------------------------- outputs that alias inputs
def _aliasing_cases():
    X = np.ones((3, 3))
    W = np.full((3, 3), 0.5)
    b = np.ones(3)
    D_next = np.ones((3, 3))
    A_prev = np.ones((3, 3))
    buf = np.zeros((4, 3))
    return {
        "Z is X": ("forward", (X, W, b, kernels.RELU, X, X), "Z shares memory with X"),
        "A is X": ("forward", (X, W, b, kernels.RELU, z(3, 3), X), "A shares memory with X"),
        "Z is W": ("forward", (X, W, b, kernels.RELU, W, z(3, 3)), "Z shares memory with W"),
        "Z holds b": ("forward", (X, W, buf[0], kernels.RELU, buf[1:], buf[1:]), None),  # no overlap: fine
        "A overlaps Z": ("forward", (X, W, b, kernels.RELU, buf[:3], buf[1:]), "A overlaps Z"),
        "D is D_next": ("backprop", (D_next, W, z(3, 3), z(3, 3), kernels.TANH, D_next), "D shares memory with D_next"),
        "D is Z": ("backprop", (D_next, W, X, X, kernels.TANH, X), "D shares memory with Z"),
        "D is W_next": ("backprop", (D_next, W, z(3, 3), z(3, 3), kernels.TANH, W), "D shares memory with W_next"),
        "gW is A_prev": ("gradient", (A_prev, D_next, A_prev, z(3)), "gW shares memory with A_prev"),
        "gb in D": ("gradient", (A_prev, D_next, z(3, 3), D_next[0]), "gb shares memory with D"),
        "gb in gW": ("gradient", (A_prev, D_next, buf[:3], buf[3]), None),  # adjacent, not overlapping: fine
        "gb is a row of gW": ("gradient", (A_prev, D_next, buf[1:], buf[1]), "gb shares memory with gW"),
    }


ALIASING = _aliasing_cases()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(ALIASING))
def test_outputs_sharing_memory_with_inputs_are_rejected(case, backend):
    which, args, message = _aliasing_cases()[case]
    kernel = {"forward": FORWARD, "backprop": BACKPROP, "gradient": GRADIENT}[which][backend]
    if message is None:
        kernel(*args)
        return
    before = [a.copy() for a in args if isinstance(a, np.ndarray)]
    with pytest.raises(ValueError, match=message) as excinfo:
        kernel(*args)
    one_line(excinfo)
    after = [a for a in args if isinstance(a, np.ndarray)]
    assert all(np.array_equal(x, y) for x, y in zip(before, after)), "a rejected call wrote to an array"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_may_be_z_itself(backend):
    X, W, b = np.ones((4, 3)), np.ones((3, 2)), np.array([-5.0, 1.0])
    Z = z(4, 2)
    FORWARD[backend](X, W, b, kernels.RELU, Z, Z)
    np.testing.assert_array_equal(Z, np.maximum(X @ W + b, 0))


# --------------------------------------------------------------------------- arrays of the wrong kind
def _type_cases():
    X, W, b = z(4, 3), z(3, 2), z(2)
    Z, A = z(4, 2), z(4, 2)
    readonly = z(4, 2)
    readonly.flags.writeable = False
    act = kernels.RELU
    return {
        "Z not contiguous": ((X, W, b, act, z(4, 4)[:, :2], A), r"expected Z to be a 2-d C-contiguous .* may not be"),
        "X Fortran order": ((np.asfortranarray(z(4, 3)), W, b, act, Z, A), "expected X to be a 2-d C-contiguous"),
        "W float32": ((X, W.astype(np.float32), b, act, Z, A), "expected every array to have one dtype, got X of "
                                                               "float64 and W of float32"),
        "b 2-d": ((X, W, z(1, 2), act, Z, A), r"expected b to be a 1-d .* got a 2-d array"),
        "X of integers": ((X.astype(np.int64), W, b, act, Z, A), r"expected X to be .* got an array of int64"),
        "A read-only": ((X, W, b, act, Z, readonly), "expected A to be .* that can be written"),
        "act a float": ((X, W, b, 3.0, Z, A), "expected act to be an integer activation code"),
        "W a list": ((X, [0.0] * 6, b, act, Z, A), "expected W to be a 2-d C-contiguous"),
        "b None": ((X, W, None, act, Z, A), "expected b to be a 1-d C-contiguous"),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(_type_cases()))
def test_dense_forward_arrays_of_the_wrong_kind_get_a_one_line_type_error(case, backend):
    args, message = _type_cases()[case]
    with pytest.raises(TypeError, match="^dense_forward: " + message) as excinfo:
        FORWARD[backend](*args)
    one_line(excinfo)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backprop_delta_and_weight_gradient_check_their_arrays_too(backend):
    with pytest.raises(TypeError, match="^backprop_delta: expected D to be a 2-d C-contiguous") as excinfo:
        BACKPROP[backend](z(4, 2), z(3, 2), z(4, 3), z(4, 3), kernels.RELU, z(3, 4).T)
    one_line(excinfo)
    with pytest.raises(TypeError, match="^backprop_delta: expected every array to have one dtype") as excinfo:
        BACKPROP[backend](z(4, 2), z(3, 2), z(4, 3, dtype=np.float32), z(4, 3), kernels.RELU, z(4, 3))
    one_line(excinfo)
    with pytest.raises(TypeError, match=r"^weight_gradient: expected gb to be a 1-d .* got a 2-d") as excinfo:
        GRADIENT[backend](z(4, 3), z(4, 2), z(3, 2), z(1, 2))
    one_line(excinfo)
    with pytest.raises(TypeError, match=r"^weight_gradient: expected A_prev to be .* got an array of int32"):
        GRADIENT[backend](z(4, 3, dtype=np.int32), z(4, 2), z(3, 2), z(2))


# --------------------------------------------------------------------------- from a user's jitted code
@numba.njit
def _users_forward(X, W, b, act, Z, A):
    kernels.dense_forward(X, W, b, act, Z, A)


@numba.njit
def _users_gradient_into_its_input(A_prev, D, gb):
    kernels.weight_gradient(A_prev, D, A_prev, gb)


@numba.njit
def _users_forward_of_a_column_block(X, W, b, Z, A):
    kernels.dense_forward(X[:, :3], W, b, kernels.RELU, Z, A)  # typed as possibly non-contiguous


def test_jitted_callers_get_the_expectation_on_the_first_line():
    with pytest.raises(TypeError) as excinfo:
        _users_forward(z(4, 3), z(3, 2), z(1, 2), kernels.RELU, z(4, 2), z(4, 2))
    assert str(excinfo.value).splitlines()[0].startswith("dense_forward: expected b to be a 1-d C-contiguous")
    with pytest.raises(TypeError) as excinfo:
        _users_forward_of_a_column_block(z(4, 5), z(3, 2), z(2), z(4, 2), z(4, 2))
    assert str(excinfo.value).splitlines()[0].startswith("dense_forward: expected X to be a 2-d C-contiguous")


def test_jitted_callers_get_the_run_time_checks():
    with pytest.raises(ValueError, match="gW shares memory with A_prev"):
        _users_gradient_into_its_input(z(3, 3), z(3, 3), z(3))
    Z = z(4, 2)
    with pytest.raises(ValueError, match="act must be an activation code"):
        _users_forward(z(4, 3), z(3, 2), z(2), 99, Z, Z)
    _users_forward(np.ones((4, 3)), np.ones((3, 2)), z(2), kernels.IDENTITY, Z, Z)
    assert np.all(Z == 3.0)


def test_the_training_driver_calls_the_unchecked_kernels():
    """The checks stay out of the hot path: the driver's globals are the raw kernels, not the checked ones."""
    for name in ("_dense_forward", "_backprop_delta", "_weight_gradient"):
        assert getattr(driver, name) is getattr(dense, name)
    for name in ("dense_forward", "backprop_delta", "weight_gradient", "check_dense_forward"):
        assert name not in vars(driver)


# --------------------------------------------------------------------------- a damaged kernel cache
def _fit_in_child(cache_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, PROGRAMS / "fit_and_report_cache.py"], capture_output=True, text=True,
                         env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def populated_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("kernel_cache") / "numba"
    report = _fit_in_child(cache)
    assert report["finite"] and report["warnings"] == [], report
    assert any(cache.rglob("*.nbi")) and any(cache.rglob("*.nbc"))
    return cache


def _empty(path):
    path.write_bytes(b"")


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _flip(path):
    data = bytearray(path.read_bytes())
    for i in (len(data) // 2, len(data) - 1):  # a byte of the contents, and the end of the pickle stream
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_empty, _truncate, _flip], ids=["emptied", "truncated", "flipped"])
def test_a_damaged_cache_is_dropped_recompiled_and_rewritten(damage, populated_cache, tmp_path):
    cache = tmp_path / "numba"
    shutil.copytree(populated_cache, cache)
    files = sorted(p for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc"))
    assert files
    for path in files:
        damage(path)

    second = _fit_in_child(cache)
    assert second["finite"], second
    assert len(second["warnings"]) == 1, second["warnings"]
    assert str(cache) in second["warnings"][0]  # it names the cache directory
    assert second["misses"] >= 1

    third = _fit_in_child(cache)
    assert third["finite"] and third["warnings"] == [], third
    assert third["misses"] == 0 and third["hits"] >= 1, third
