"""Failures that once lost data, crashed or hung the interpreter, or reported something other than the truth.

Each test here guards one of them: saving is atomic; optimizer state of the
wrong size is refused before compiled code sees it; loading reads only regular
files and allocates no more than the model; a callback's NumPy ``True`` stops
training; overflowing optimizer state is a divergence; ``gradcheck`` refuses
arguments that would check nothing; and values beyond float32's range, masked
arrays, dates, a ``None`` dtype, a truthy ``shuffle``, ``X=None``, huge labels
and a lone callback get errors that say what is really wrong.

Crashes, hangs, kills and resource limits are probed in child processes
(``programs/``), each bounded by a timeout, so a regression fails its test
instead of taking the test runner down with it.
"""

import datetime
import errno
import io
import json
import os
import pathlib
import select
import signal
import stat
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastbp
from fastbp import persistence

PROGRAMS = pathlib.Path(__file__).resolve().parent / "programs"
INVALID = "not a valid fastbp model file"
CHILD_TIMEOUT = 240  # seconds: a child imports fastbp (and may compile) before it does anything
LOAD_PROBE_TIMEOUT = 90  # a child that only imports fastbp and loads (or refuses) one file


def _run_program(name, *args, timeout=CHILD_TIMEOUT):
    """Run ``programs/NAME`` in a child process; its stdout, after checking it exited cleanly."""
    proc = subprocess.run([sys.executable, str(PROGRAMS / name), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.stdout.strip()


def _small_model(dtype=np.float64, seed=0):
    model = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=dtype, seed=seed)
    Ws, bs = model.get_weights()
    model.set_weights(Ws, [b + 0.25 for b in bs])  # non-zero biases: every parameter is distinctive
    return model


def _assert_same_model(loaded, model):
    assert loaded.theta.dtype == model.theta.dtype
    assert loaded.theta.tobytes() == model.theta.tobytes()
    assert (loaded.layers, loaded.activations, loaded.loss, loaded.init, loaded.seed) == \
        (model.layers, model.activations, model.loss, model.init, model.seed)


def _data(loss="mse", n=24, d=3, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if loss == "mse":
        return X, rng.standard_normal((n, k))
    return X, np.arange(n) % k


def _fitted(loss="mse", dtype=np.float64, layers=(3, 4, 2)):
    """A model trained one epoch (so its optimizer has state), and a snapshot of weights and state."""
    model = fastbp.MLP(list(layers), activation="tanh", loss=loss, dtype=dtype, seed=3)
    model.fit(*_data(loss, d=layers[0], k=layers[-1]), epochs=1, batch_size=8, optimizer=fastbp.Adam(lr=1e-2))
    return model, _snapshot(model)


def _snapshot(model):
    opt = model.optimizer
    return model.theta.copy(), opt.m.copy(), opt.v.copy(), opt.step.copy(), model._rng.bit_generator.state


def _assert_unchanged(model, snapshot):
    theta, m, v, step, rng = snapshot
    np.testing.assert_array_equal(model.theta, theta)
    np.testing.assert_array_equal(model.optimizer.m, m)
    np.testing.assert_array_equal(model.optimizer.v, v)
    np.testing.assert_array_equal(model.optimizer.step, step)
    assert model._rng.bit_generator.state == rng


# ============================================================================ 1. atomic save
@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE and SIGXFSZ (POSIX)")
def test_save_over_a_good_file_under_a_file_size_limit_keeps_it(tmp_path):
    """A save that runs into ``ulimit -f`` fails with EFBIG; the model saved there before still loads."""
    good = _small_model()
    path = tmp_path / "model.npz"
    good.save(path)
    before = path.read_bytes()
    limit = 64 * 1024  # the good file is ~1 KB, the model the child saves ~750 KB
    assert _run_program("save_interrupted.py", "fsize", path, limit) == "OSError EFBIG"
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    _assert_same_model(fastbp.MLP.load(path), good)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and select on pipes are POSIX")
def test_save_killed_midway_leaves_the_old_file(tmp_path):
    """SIGKILL in the middle of writing: the file at the path is still the complete old model."""
    good = _small_model()
    path = tmp_path / "model.npz"
    good.save(path)
    before = path.read_bytes()
    proc = subprocess.Popen([sys.executable, str(PROGRAMS / "save_interrupted.py"), "hang", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], CHILD_TIMEOUT)
        line = proc.stdout.readline().strip() if ready else "(no output in time)"
        assert line == "writing", f"{line}\n{proc.stderr.read() if proc.poll() is not None else ''}"
    finally:
        proc.kill()
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
    assert path.read_bytes() == before
    _assert_same_model(fastbp.MLP.load(path), good)


def _fail_halfway(monkeypatch, error):
    """Make numpy's ``.npy`` writer write half of a large array and then raise ``error``."""
    write_array = np.lib.format.write_array

    def write_half_then_fail(fp, array, *args, **kwargs):
        if array.size < 1000:
            return write_array(fp, array, *args, **kwargs)
        write_array(fp, array[: array.size // 2], *args, **kwargs)
        raise error

    monkeypatch.setattr(np.lib.format, "write_array", write_half_then_fail)


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk_full", "interrupt"])
@pytest.mark.parametrize("as_str", [False, True], ids=["pathlib", "str"])
def test_a_failed_save_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch, error, as_str):
    good = _small_model()
    path = tmp_path / "model.npz"
    good.save(path)
    before = path.read_bytes()
    _fail_halfway(monkeypatch, error)
    big = fastbp.MLP([40, 40, 3], seed=0)
    with pytest.raises(type(error)):
        big.save(str(path) if as_str else path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    monkeypatch.undo()
    _assert_same_model(fastbp.MLP.load(path), good)


def test_a_failed_save_to_a_new_path_leaves_nothing(tmp_path, monkeypatch):
    _fail_halfway(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError):
        fastbp.MLP([40, 40, 3], seed=0).save(tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits and symlinks")
def test_save_replaces_through_a_symlink_and_keeps_the_permissions(tmp_path):
    """As rewriting the file in place did: a symlink's target is replaced, its permission bits kept."""
    real = tmp_path / "real.npz"
    _small_model(seed=0).save(real)
    real.chmod(0o640)
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    other = _small_model(seed=1)
    other.save(link)
    assert link.is_symlink()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    _assert_same_model(fastbp.MLP.load(real), other)
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "real.npz"]


def test_save_refuses_a_file_object_with_a_clear_error():
    with pytest.raises(TypeError, match="path must be a file name"):
        _small_model().save(io.BytesIO())


# ============================================================= 2. optimizer state of the wrong size
@pytest.fixture(scope="module")
def state_probe():
    """What ``fit`` did with each hand-assigned state, run in a child process (a crash fails, not kills)."""
    return json.loads(_run_program("optimizer_state_probe.py", "cpu", "numpy"))


BAD_STATE = {  # case: (exception, words its message must hold)
    "v_short": ("ValueError", ["Adam.v", "float64 array of shape (26,)", "got shape (21,)"]),
    "v_long": ("ValueError", ["Adam.v", "got shape (126,)"]),
    "v_empty": ("ValueError", ["Adam.v", "got shape (0,)"]),
    "v_float32": ("ValueError", ["Adam.v", "float64", "got dtype float32"]),
    "v_big_endian": ("ValueError", ["Adam.v", "non-native byte order"]),
    "v_2d": ("ValueError", ["Adam.v", "got shape (26, 1)"]),
    "v_strided": ("ValueError", ["Adam.v", "non-contiguous"]),
    "v_read_only": ("ValueError", ["Adam.v", "read-only"]),
    "v_list": ("TypeError", ["Adam.v", "got list"]),
    "v_none": ("TypeError", ["Adam.v", "got None"]),
    "m_short": ("ValueError", ["Adam.m", "got shape (25,)"]),
    "m_and_v_of_another_model": ("ValueError", ["Adam.m", "got shape (44,)"]),
    "step_int32": ("ValueError", ["Adam.step", "int64", "got dtype int32"]),
    "step_two_items": ("ValueError", ["Adam.step", "shape (1,)", "got shape (2,)"]),
    "step_empty": ("ValueError", ["Adam.step", "got shape (0,)"]),
    "step_python_int": ("TypeError", ["Adam.step", "got int"]),
    "step_negative": ("ValueError", ["Adam.step", "-1"]),
    "sgd_momentum_v_short": ("ValueError", ["SGD.v", "got shape (3,)"]),
}


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("case", list(BAD_STATE))
def test_wrong_optimizer_state_is_refused_before_any_compiled_call(state_probe, case, backend):
    """Each array is checked (shape, dtype, layout); the error names it; model and optimizer are untouched."""
    got = state_probe["bad"][f"{backend}:{case}"]
    error, words = BAD_STATE[case]
    assert got["error"] == error, got
    for word in words:
        assert word in got["message"], got["message"]
    assert got["unchanged"], "the refused fit changed the model or the optimizer"


@pytest.mark.parametrize("check", ["restored_state_continues", "other_network_starts_afresh",
                                   "other_dtype_starts_afresh"])
def test_fitting_state_is_used_and_own_state_for_another_network_starts_afresh(state_probe, check):
    assert state_probe["good"][check] is True


def test_state_replaced_by_a_callback_is_checked_before_the_next_epoch(state_probe):
    assert "Adam.v" in state_probe["good"]["replaced_mid_fit"]


# =============================================================================== 3. bounded load
def _probe_load(path):
    return _run_program("load_special_file.py", path, timeout=LOAD_PROBE_TIMEOUT)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_load_refuses_a_named_pipe_without_blocking(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    out = _probe_load(fifo)  # a load that waited for a writer would run into the timeout
    assert out.startswith("ValueError:") and INVALID in out and "named pipe" in out, out


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_load_refuses_dev_zero_without_reading_it():
    out = _probe_load("/dev/zero")
    assert out.startswith("ValueError:") and INVALID in out and "character device" in out, out


def test_load_refuses_a_directory_by_name(tmp_path):
    with pytest.raises(ValueError, match=f"{INVALID}.*a directory"):
        fastbp.MLP.load(tmp_path)


def _header_npy(layers, dtype="float32"):
    header = {"format": "fastbp-mlp", "version": 1, "layers": layers, "activation": ["tanh"] * (len(layers) - 2),
              "loss": "mse", "dtype": dtype, "init": "auto", "seed": 0}
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    return buf.getvalue()


def _npy_header_only(n, dtype="<f4"):
    """The header of a ``.npy`` holding ``n`` items of ``dtype``, without its data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": (n,)})
    return buf.getvalue()


def _write_zeros_model(path, layers, method=zipfile.ZIP_DEFLATED, data_bytes=None):
    """A model file of all-zero float32 parameters, streamed (never held whole in memory).

    Deflated, a large one is a "zip bomb": a few hundred KB that expand to
    the whole parameter vector. ``data_bytes`` writes that many bytes of
    data instead of the full vector.
    """
    n = sum(i * o + o for i, o in zip(layers[:-1], layers[1:]))
    left = 4 * n if data_bytes is None else data_bytes
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=method, compresslevel=1 if method == zipfile.ZIP_DEFLATED else None,
                         allowZip64=True) as z:
        z.writestr("header.npy", _header_npy(layers))
        with z.open("theta.npy", "w", force_zip64=True) as f:
            f.write(_npy_header_only(n))
            while left:
                f.write(chunk[: min(left, len(chunk))])
                left -= min(left, len(chunk))
    return n


def _peak_bytes(call):
    """Run ``call()``; the peak of memory traced while it ran, and what it returned or raised."""
    tracemalloc.start()
    try:
        try:
            result = call()
        except ValueError as exc:
            result = exc
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def test_max_params_is_documented_and_generous():
    assert persistence.MAX_PARAMS == 2 ** 28


def test_a_header_beyond_max_params_is_refused_naming_the_limit(tmp_path):
    path = tmp_path / "huge.npz"
    layers = [2 ** 14, 2 ** 14]  # 268,451,840 parameters > 2**28
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("header.npy", _header_npy(layers))
        z.writestr("theta.npy", _npy_header_only(2 ** 28 + 2 ** 14) + bytes(64))
    peak, result = _peak_bytes(lambda: fastbp.MLP.load(path))
    assert isinstance(result, ValueError) and INVALID in str(result)
    assert "MAX_PARAMS" in str(result) and "268,451,840" in str(result)
    assert peak < 2 ** 20


def test_a_zip_bomb_beyond_the_limit_is_refused_before_allocating(tmp_path, monkeypatch):
    """A small deflated file that would expand to a network beyond MAX_PARAMS: refused before reading it."""
    path = tmp_path / "bomb.npz"
    n = _write_zeros_model(path, [1024, 1024])  # 4 MB of zeros in ~5 KB
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(persistence, "MAX_PARAMS", n - 1)
    peak, result = _peak_bytes(lambda: fastbp.MLP.load(path))
    assert isinstance(result, ValueError) and "MAX_PARAMS" in str(result), result
    assert peak < 1 << 20, f"{peak} bytes allocated to refuse a file"


def test_a_zip_bomb_within_the_limit_costs_only_the_model(tmp_path):
    """16M float32 zeros (64 MB) in a ~64 KB file: loading allocates the parameter vector and a chunk, not
    the several copies (read buffer, copy, float64 initial weights) it once took."""
    path = tmp_path / "bomb.npz"
    n = _write_zeros_model(path, [4000, 4000])
    assert path.stat().st_size < 1 << 20
    peak, model = _peak_bytes(lambda: fastbp.MLP.load(path))
    assert isinstance(model, fastbp.MLP) and model.n_params == n and not model.theta.any()
    assert peak < 1.15 * 4 * n + (4 << 20), f"peak {peak / 1e6:.0f} MB for a {4 * n / 1e6:.0f} MB model"


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_a_member_too_small_for_its_header_is_refused_before_allocating(tmp_path, method):
    path = tmp_path / "short.npz"
    _write_zeros_model(path, [12000, 12000], method=method, data_bytes=1000)  # declares 576 MB, holds 1 KB
    peak, result = _peak_bytes(lambda: fastbp.MLP.load(path))
    assert isinstance(result, ValueError) and INVALID in str(result) and "too few" in str(result), result
    assert peak < 1 << 20


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
def test_members_compressed_other_than_by_deflate_are_refused(tmp_path, method):
    """zipfile expands bzip2 and lzma a whole read at a time, unbounded: such members are not read at all."""
    model = _small_model()
    good = tmp_path / "good.npz"
    model.save(good)
    with zipfile.ZipFile(good) as z:
        members = {name: z.read(name) for name in z.namelist()}
    path = tmp_path / "other.npz"
    with zipfile.ZipFile(path, "w", compression=method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(ValueError, match=f"{INVALID}.*only stored and deflated members are read"):
        fastbp.MLP.load(path)


def test_loading_still_reads_file_objects_and_shuffles_like_a_new_model(tmp_path):
    """Loading fills the parameters without drawing initial weights; the generator is advanced past them,
    so a loaded model shuffles exactly as a model just made with that seed."""
    model = _small_model(seed=11)
    buf = tmp_path / "m.npz"
    model.save(buf)
    loaded = fastbp.MLP.load(io.BytesIO(buf.read_bytes()))
    _assert_same_model(loaded, model)
    fresh = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=np.float64, seed=11)
    assert loaded._rng.bit_generator.state == fresh._rng.bit_generator.state


# ================================================================ 4. what a callback's return means
def _fit_with(callbacks, epochs=4):
    model = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    return model.fit(*_data(), epochs=epochs, batch_size=8, callbacks=callbacks)


@pytest.mark.parametrize("stop", [True, np.True_, np.bool_(1)], ids=["bool", "numpy_true", "numpy_bool"])
def test_a_callback_returning_true_of_either_kind_stops(stop):
    seen = []
    h = _fit_with([lambda ep, logs: stop if ep == 1 else None, lambda ep, logs: seen.append(ep)])
    assert len(h["loss"]) == 2 and seen == [0, 1]  # every callback ran in the stopping epoch


def test_a_comparison_of_numpy_figures_stops():
    """``logs["loss"] < x`` is a NumPy bool when the figure is a NumPy float: it must count."""
    h = _fit_with([lambda ep, logs: np.float64(logs["loss"]) < np.inf])
    assert len(h["loss"]) == 1


@pytest.mark.parametrize("value", [None, False, np.False_], ids=["none", "false", "numpy_false"])
def test_a_callback_returning_false_or_none_goes_on(value):
    assert len(_fit_with([lambda ep, logs: value])["loss"]) == 4


@pytest.mark.parametrize("value", [{"stop": True}, 1, 0, "stop", [True], np.array([True, False])],
                         ids=["dict", "one", "zero", "string", "list", "array"])
def test_a_callback_returning_anything_else_is_a_type_error(value):
    def callback(ep, logs):
        return value

    with pytest.raises(TypeError, match="callback callback returned .*returns True to stop training"):
        _fit_with([callback])


# ======================================================== 5. overflowing optimizer state is a divergence
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_adam_state_overflowing_float32_is_a_divergence(backend):
    """Inputs near 1e24: the gradients' squares overflow float32, Adam's v becomes Inf and the weights would
    silently stop moving while the loss stays finite."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 4)) * 1e24
    y = np.arange(32) % 3
    model = fastbp.MLP([4, 3], loss="softmax_cross_entropy", dtype=np.float32, seed=0)
    theta0 = model.theta.copy()
    opt = fastbp.Adam()
    with pytest.raises(fastbp.DivergedError, match=r"optimizer state \(v\) became non-finite") as info:
        model.fit(X, y, epochs=3, batch_size=8, optimizer=opt, backend=backend)
    assert "float32" in str(info.value) and "rescale the inputs" in str(info.value)
    assert "e+24" in str(info.value)  # the largest |X|
    np.testing.assert_array_equal(model.theta, theta0)  # the weights from before the epoch
    assert np.all(np.isfinite(opt.v)) and int(opt.step[0]) == 0
    with pytest.warns(RuntimeWarning, match="optimizer state"):
        h = model.fit(X, y, epochs=3, batch_size=8, optimizer=fastbp.Adam(), backend=backend, patience=2)
    assert h["loss"] == []


# ======================================================================= 6. gradcheck's arguments
GRADCHECK_BAD = [
    ("eps_nan", dict(eps=float("nan")), ValueError, "eps must be a finite number > 0"),
    ("eps_inf", dict(eps=float("inf")), ValueError, "eps must be a finite number > 0"),
    ("eps_zero", dict(eps=0), ValueError, "eps must be a finite number > 0"),
    ("eps_negative", dict(eps=-1e-5), ValueError, "eps must be a finite number > 0"),
    ("eps_string", dict(eps="1e-5"), TypeError, "eps"),
    ("eps_bool", dict(eps=True), TypeError, "eps"),
    ("max_params_zero", dict(max_params=0), ValueError, "max_params must be >= 1"),
    ("max_params_negative", dict(max_params=-3), ValueError, "max_params must be >= 1"),
    ("max_params_float", dict(max_params=2.5), TypeError, "max_params must be an int"),
    ("seed_float", dict(seed=0.5), TypeError, "seed must be an int"),
    ("seed_negative", dict(seed=-1), ValueError, "seed must be an int >= 0"),
    ("seed_string", dict(seed="0"), TypeError, "seed"),
]


@pytest.mark.parametrize("kwargs, exc, match", [c[1:] for c in GRADCHECK_BAD], ids=[c[0] for c in GRADCHECK_BAD])
def test_gradcheck_refuses_arguments_that_would_check_nothing(kwargs, exc, match):
    model = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    with pytest.raises(exc, match=match):
        fastbp.gradcheck(model, *_data(n=4), **kwargs)


@pytest.mark.parametrize("model", [None, "mlp", fastbp.Network([3, 2], "tanh", "mse", np.float64)],
                         ids=["none", "string", "network"])
def test_gradcheck_needs_a_model(model):
    with pytest.raises(TypeError, match="model must be a fastbp.MLP"):
        fastbp.gradcheck(model, *_data(n=4))


def test_gradcheck_still_accepts_its_documented_arguments():
    model = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    X, y = _data(n=4)
    assert fastbp.gradcheck(model, X, y, eps=1e-6, max_params=5, seed=np.int64(3)) < 1e-6
    assert fastbp.gradcheck(model, X, y, max_params=np.int64(1000), seed=None) < 1e-6


# ==================================================================== 7. float32 range, said plainly
def _refused(model, snapshot, call, exc, match):
    with pytest.raises(exc, match=match):
        call()
    _assert_unchanged(model, snapshot)


def test_a_finite_value_beyond_float32_is_not_called_nan_or_inf():
    model, snap = _fitted(dtype=np.float32)
    X, y = _data()
    X[2, 1] = 1e39
    _refused(model, snap, lambda: model.fit(X, y), ValueError,
             r"X has values beyond the float32 range \(largest magnitude 1e\+39.*use dtype=np.float64 or rescale")
    _refused(model, snap, lambda: model.predict(X), ValueError, "beyond the float32 range")
    X[2, 1] = np.nan
    _refused(model, snap, lambda: model.fit(X, y), ValueError, "X contains NaN or Inf")
    big_y = y.copy()
    big_y[0, 0] = -1e39
    _refused(model, snap, lambda: model.fit(_data()[0], big_y), ValueError, "y has values beyond the float32")
    sw = np.ones(24)
    sw[3] = 1e39
    _refused(model, snap, lambda: model.fit(*_data(), sample_weight=sw), ValueError,
             "sample_weight has values beyond the float32 range")
    float64_model = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    float64_model.predict(np.full((2, 3), 1e39))  # fine in float64


@pytest.mark.parametrize("tiny", [1e-45, 1e-40, 1e-50], ids=["subnormal", "subnormal_2", "zero"])
def test_sample_weights_float32_cannot_hold_are_refused(tiny):
    model, snap = _fitted(dtype=np.float32)
    _refused(model, snap, lambda: model.fit(*_data(), sample_weight=np.full(24, tiny)), ValueError,
             r"sample_weight has positive values as small as .*smallest normal float32.*rescale them")
    model64 = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=np.float64, seed=0)
    model64.fit(*_data(), sample_weight=np.full(24, tiny))  # float64 holds them


def test_sample_weights_mixing_zero_and_normal_values_are_fine():
    model, _ = _fitted(dtype=np.float32)
    model.fit(*_data(), sample_weight=np.r_[np.zeros(12), np.full(12, 1e-30)])


@pytest.mark.parametrize("make", [lambda: fastbp.Adam(eps=1e-46), lambda: fastbp.AdamW(eps=1e-46),
                                  lambda: fastbp.SGD(lr=1e-46), lambda: fastbp.Adam(lr=1e-47)],
                         ids=["adam_eps", "adamw_eps", "sgd_lr", "adam_lr"])
def test_an_optimizer_setting_that_rounds_to_zero_in_float32_is_refused_at_fit(make):
    model, snap = _fitted(dtype=np.float32)
    opt = make()
    _refused(model, snap, lambda: model.fit(*_data(), optimizer=opt), ValueError,
             r"rounds to 0 in float32.*use a larger .* or dtype=np.float64")
    assert opt.m is None  # the optimizer was not bound either
    fastbp.MLP([3, 4, 2], dtype=np.float64, seed=0).fit(*_data(), optimizer=make())  # fine in float64


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("backend", ["cpu", "parallel"])  # the numpy reference sums its loss in float64
def test_mse_targets_whose_square_overflows_float32_are_named_as_the_cause(backend):
    """``|y| > sqrt(float32 max) ~ 1.8e19``: the squared error overflows, and the ``DivergedError`` says the targets
    are too large for float32 instead of blaming the learning rate. (Chosen over refusing such targets up front:
    ``fit`` fails only by divergence on hostile data, as the crash fuzzing in test_properties checks.)"""
    model, snap = _fitted(dtype=np.float32)
    X, y = _data()
    y[5, 1] = 1e20
    with pytest.raises(fastbp.DivergedError, match=r"mse targets are too large for float32: y reaches 1e\+20.*"
                       r"Rescale y \(e.g. standardise it\) or use dtype=np.float64") as info:
        model.fit(X, y, backend=backend, optimizer=fastbp.SGD(lr=1e-3))
    assert "learning rate" not in str(info.value)
    np.testing.assert_array_equal(model.theta, snap[0])
    model64 = fastbp.MLP([3, 4, 2], dtype=np.float64, seed=0)
    model64.fit(X, y, backend=backend, optimizer=fastbp.SGD(lr=1e-30))  # float64 squares 1e20 fine


# =========================================================================== 8. inputs refused
def test_masked_arrays_are_refused():
    model, snap = _fitted()
    X, y = _data()
    masked = np.ma.masked_array(X, mask=np.zeros_like(X, dtype=bool))
    masked.mask[0, 0] = True
    _refused(model, snap, lambda: model.fit(masked, y), TypeError,
             "X is a masked array: masked arrays are not supported.*fill or drop the masked values")
    _refused(model, snap, lambda: model.predict(masked), TypeError, "masked arrays are not supported")
    _refused(model, snap, lambda: model.fit(X, np.ma.masked_array(y)), TypeError, "y is a masked array")
    _refused(model, snap, lambda: model.fit(X, y, sample_weight=np.ma.masked_array(np.ones(24))), TypeError,
             "sample_weight is a masked array")


@pytest.mark.parametrize("values", [
    np.arange(72).reshape(24, 3).astype("datetime64[D]"),
    np.arange(72).reshape(24, 3).astype("timedelta64[s]"),
    np.array([[datetime.datetime(2020, 1, 1)] * 3] * 24, dtype="datetime64[us]"),
], ids=["datetime64_days", "timedelta64", "datetime64_from_datetimes"])
def test_dates_and_durations_are_refused(values):
    model, snap = _fitted()
    _refused(model, snap, lambda: model.fit(values, _data()[1]), TypeError, r"X must be numeric.*dates or durations")
    labels = np.arange(24).astype("datetime64[D]")
    cls, cls_snap = _fitted("softmax_cross_entropy")
    _refused(cls, cls_snap, lambda: cls.fit(_data()[0], labels), TypeError, "y must be numeric")


def test_dtype_none_is_refused():
    with pytest.raises(TypeError, match="dtype must be numpy.float32 or numpy.float64, got None"):
        fastbp.MLP([3, 2], dtype=None)
    with pytest.raises(TypeError, match="got None"):
        fastbp.Network([3, 2], "relu", "mse", None)


@pytest.mark.parametrize("shuffle", ["no", "False", 0, 1, None, [True]], ids=["no", "False_string", "zero", "one",
                                                                              "none", "list"])
def test_shuffle_must_be_a_bool(shuffle):
    model, snap = _fitted()
    _refused(model, snap, lambda: model.fit(*_data(), shuffle=shuffle), TypeError, "shuffle must be True or False")
    _refused(model, snap, lambda: model.partial_fit(*_data(), shuffle=shuffle), TypeError, "shuffle must be True")


def test_shuffle_accepts_numpy_bools():
    a, b = _fitted()[0], _fitted()[0]
    a.fit(*_data(), shuffle=np.False_)
    b.fit(*_data(), shuffle=False)
    np.testing.assert_array_equal(a.theta, b.theta)


def test_softmax_probability_rows_are_used_unnormalised_as_pytorch_does():
    """Chosen behaviour (documented in ``fit``): rows are not normalised and not refused. An all-zero row adds
    0 to the loss and nothing to the gradient but counts in the mean; a row summing to 2 weighs twice."""
    model = fastbp.MLP([3, 5, 3], activation="tanh", loss="softmax_cross_entropy", dtype=np.float64, seed=0)
    X = np.random.default_rng(0).standard_normal((4, 3))
    T = np.array([[1.0, 0, 0], [0, 0, 0], [0, 2.0, 0], [0.25, 0.25, 0.5]])
    Z = model.decision_function(X)
    log_softmax = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    expected = float(np.mean(-(T * log_softmax).sum(axis=1)))  # torch.nn.CrossEntropyLoss with probabilities
    np.testing.assert_allclose(model.evaluate(X, T)["loss"], expected, rtol=1e-12)
    _, gWs, gbs = model.loss_and_grad(X[1:2], T[1:2])
    assert all(not g.any() for g in gWs + gbs)


# ======================================================================== 9. messages that are true
def test_x_none_or_a_scalar_is_named_as_such():
    model, snap = _fitted()
    y = _data()[1]
    _refused(model, snap, lambda: model.fit(None, y), TypeError, r"X must be 2-D \(n_samples, 3\), got None$")
    _refused(model, snap, lambda: model.predict(None), TypeError, "got None")
    _refused(model, snap, lambda: model.fit(np.float64(3.0), y), ValueError, "X must be 2-D .*got a scalar")
    _refused(model, snap, lambda: model.predict(3.0), ValueError, "got a scalar")
    _refused(model, snap, lambda: model.predict(np.zeros(3)), ValueError,
             r"got a 1-D array of shape \(3,\); for a single sample use X.reshape\(1, -1\)")
    _refused(model, snap, lambda: model.fit(_data()[0], None), TypeError, "y must be an array of targets.*got None")
    _refused(model, snap, lambda: model.fit(*_data(), sample_weight=2.0), ValueError,
             r"sample_weight must have shape \(24,\).*got a scalar")


def test_a_huge_label_is_reported_as_given():
    model, snap = _fitted("softmax_cross_entropy")
    y = (np.arange(24) % 2).astype(np.float64)
    y[3] = 1e20
    _refused(model, snap, lambda: model.fit(_data()[0], y), ValueError,
             r"labels must lie in \[0, 1\] for 2 outputs, got values from 0 to 1e\+20")
    y[3] = -1e20
    _refused(model, snap, lambda: model.fit(_data()[0], y), ValueError, "got values from -1e\\+20 to 1$")
    y[3] = 7
    _refused(model, snap, lambda: model.fit(_data()[0], y.astype(np.int64)), ValueError, "from 0 to 7$")


def test_a_single_callback_is_not_a_list():
    model, snap = _fitted()

    def on_epoch(ep, logs):
        return None

    _refused(model, snap, lambda: model.fit(*_data(), callbacks=on_epoch), TypeError,
             r"callbacks must be a list of callables, got the function on_epoch; pass \[on_epoch\]")
    _refused(model, snap, lambda: model.fit(*_data(), callbacks=5), TypeError,
             "callbacks must be a list of callables, got int")
    _refused(model, snap, lambda: model.fit(*_data(), callbacks=[on_epoch, "x"]), TypeError,
             r"callbacks\[1\] is str")
    model.fit(*_data(), callbacks=(on_epoch,))  # any sequence of callables is fine
