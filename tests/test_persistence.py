"""Saving and loading models (fastbp/persistence.py, ``MLP.save`` and ``MLP.load``).

A saved model loads back bitwise. ``MLP.load`` promises a ``ValueError`` ("not
a valid fastbp model file") for any file that is not a complete, well-formed
model, and never to unpickle. A fixed list of bad files checks that promise
first; the fuzzing after it adds random truncations and byte flips, random
header mutations, and zip-level surgery. There the only outcomes allowed are
that ``ValueError``, or (for corruptions that miss every byte that matters,
such as a zip timestamp) a model identical to the one saved. Any other
exception, a crash, a half-filled model or code run while loading is a failure.

The property-based round trip over random models is in ``test_properties.py``.
"""

import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
from conftest import HYPOTHESIS_SETTINGS, make_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastbp

SETTINGS = dict(HYPOTHESIS_SETTINGS, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
INVALID = "not a valid fastbp model file"
LAYERS = [3, 4, 2]
HEADER = {"format": "fastbp-mlp", "version": 1, "layers": LAYERS, "activation": ["tanh"], "loss": "mse",
          "dtype": "float64", "init": "auto", "seed": 0}
_DROP = object()  # a header value that means: leave the key out


# ----------------------------------------------------------------------------------- helpers
class _Sentinel:
    """Unpickling this creates a directory: the proof that ``load`` unpickled something."""

    target = None

    def __reduce__(self):
        return (os.makedirs, (str(_Sentinel.target), 0o777, True))


def _object_array():
    arr = np.empty(2, dtype=object)
    arr[0] = _Sentinel()
    arr[1] = _Sentinel()
    return arr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("load_fuzz")


@pytest.fixture(scope="module")
def saved(workdir):
    """The model and the bytes of its saved file."""
    model = fastbp.MLP(LAYERS, activation="tanh", loss="mse", dtype=np.float64, seed=0)
    Ws, bs = model.get_weights()
    model.set_weights(Ws, [b + 0.25 for b in bs])  # non-zero biases: every parameter is distinctive
    path = workdir / "good.npz"
    model.save(path)
    return model, path.read_bytes()


@pytest.fixture
def sentinel(workdir):
    _Sentinel.target = workdir / "UNPICKLED"
    if _Sentinel.target.exists():
        os.rmdir(_Sentinel.target)
    yield _Sentinel.target
    assert not _Sentinel.target.exists(), "MLP.load unpickled data"


def _write(workdir, data, name="case.npz"):
    path = workdir / name
    path.write_bytes(data)
    return path


def _assert_rejected(path):
    """``load`` raises the documented ValueError, naming the file."""
    with pytest.raises(ValueError, match=INVALID) as info:
        fastbp.MLP.load(path)
    assert str(path) in str(info.value)


def _assert_rejected_or_identical(path, model):
    """``load`` either raises the documented ValueError or returns exactly ``model``."""
    try:
        loaded = fastbp.MLP.load(path)
    except ValueError as exc:
        assert INVALID in str(exc)
        return
    _assert_same_model(loaded, model)


def _assert_same_model(loaded, model):
    assert isinstance(loaded, fastbp.MLP)
    assert loaded.theta.dtype == model.theta.dtype
    assert loaded.theta.tobytes() == model.theta.tobytes()
    assert (loaded.layers, loaded.activations, loaded.loss, loaded.init, loaded.seed) == \
        (model.layers, model.activations, model.loss, model.init, model.seed)


def _npy(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _header_npy(header):
    return _npy(np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))


def _header_with(changes):
    """``HEADER`` with ``changes`` applied (``_DROP`` deletes a key)."""
    header = dict(HEADER)
    for key, value in changes.items():
        if value is _DROP:
            del header[key]
        else:
            header[key] = value
    return header


def _header(**changes):
    """The header with ``changes``, as the uint8 array that ``MLP.save`` writes."""
    return np.frombuffer(json.dumps(_header_with(changes)).encode(), dtype=np.uint8)


def _zip(members, method=zipfile.ZIP_STORED):
    """A zip of ``{name: bytes}``, as ``np.savez`` writes them (stored, ``.npy`` member names)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _members(good):
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        return {name: z.read(name) for name in z.namelist()}


def _npy_with_header(header_dict_text, payload=b""):
    """A version-1.0 ``.npy`` with a hand-written header dict (padded as NumPy pads it)."""
    text = header_dict_text.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def _set_flag_bits(data, bits):
    """Set general-purpose flag bits (bit 0: encrypted) in every local and central zip header."""
    b = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(signature)
        while i >= 0:
            struct.pack_into("<H", b, i + offset, struct.unpack_from("<H", b, i + offset)[0] | bits)
            i = b.find(signature, i + 4)
    return bytes(b)


def _set_compression_method(data, method):
    """Rewrite the compression method of every local and central zip header."""
    b = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        i = b.find(signature)
        while i >= 0:
            struct.pack_into("<H", b, i + offset, method)
            i = b.find(signature, i + 4)
    return bytes(b)


# --------------------------------------------------------------------------------- save/load
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_save_load_round_trip(tmp_path, dtype):
    X, y = make_data("softmax_cross_entropy", n=40)
    model = fastbp.MLP([5, 7, 6, 3], activation=["relu", "tanh"], loss="softmax_cross_entropy", dtype=dtype,
                       seed=9, init="glorot_uniform")
    model.fit(X, y, epochs=2, batch_size=8)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastbp.MLP.load(path)
    assert loaded.theta.dtype == dtype and loaded.dtype == model.dtype
    assert loaded.theta.tobytes() == model.theta.tobytes()  # bitwise
    assert loaded.layers == model.layers
    assert loaded.activations == ["relu", "tanh"]
    assert loaded.loss == model.loss
    assert loaded.seed == 9 and loaded.init == "glorot_uniform"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.evaluate(X, y) == model.evaluate(X, y)
    loaded2 = fastbp.MLP.load(str(path))  # str paths too
    assert loaded2.theta.tobytes() == model.theta.tobytes()
    loaded.fit(X, y, epochs=1, batch_size=8)  # the loaded model trains
    assert np.all(np.isfinite(loaded.theta))


def _saved_bytes(tmp_path, dtype=np.float64):
    model = fastbp.MLP([3, 4, 2], activation="tanh", loss="mse", dtype=dtype, seed=0)
    path = tmp_path / "good.npz"
    model.save(path)
    return model, path.read_bytes()


class _Bomb:
    """Unpickling this creates a directory: the proof that something was unpickled."""

    target = None

    def __reduce__(self):
        return (os.mkdir, (str(_Bomb.target),))


def _write_bad(kind, tmp_path):
    model, good = _saved_bytes(tmp_path)
    theta = model.theta
    path = tmp_path / f"{kind}.npz"
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "truncated_tail":
        path.write_bytes(good[:-10])
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).bytes(2000))
    elif kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "text_file":
        path.write_text("layers: [3, 4, 2]\n")
    elif kind == "npy_not_npz":
        np.save(path, theta)
        path = tmp_path / "npy_not_npz.npz.npy"
    elif kind == "extra_arrays":
        np.savez(path, header=_header(), theta=theta, extra=np.zeros(3))
    elif kind == "missing_theta":
        np.savez(path, header=_header())
    elif kind == "theta_too_short":
        np.savez(path, header=_header(), theta=theta[:-1])
    elif kind == "theta_too_long":
        np.savez(path, header=_header(), theta=np.r_[theta, 0.0])
    elif kind == "theta_wrong_dtype":
        np.savez(path, header=_header(), theta=theta.astype(np.float32))
    elif kind == "theta_2d":
        np.savez(path, header=_header(), theta=theta.reshape(1, -1))
    elif kind == "theta_nan":
        bad = theta.copy()
        bad[0] = np.nan
        np.savez(path, header=_header(), theta=bad)
    elif kind == "header_not_json":
        np.savez(path, header=np.frombuffer(b"{not json", dtype=np.uint8), theta=theta)
    elif kind == "header_not_utf8":
        np.savez(path, header=np.frombuffer(b"\xff\xfe\x00", dtype=np.uint8), theta=theta)
    elif kind == "header_json_list":
        np.savez(path, header=np.frombuffer(b"[1, 2]", dtype=np.uint8), theta=theta)
    elif kind == "header_wrong_format":
        np.savez(path, header=_header(format="other-mlp"), theta=theta)
    elif kind == "header_wrong_version":
        np.savez(path, header=_header(version=2), theta=theta)
    elif kind == "header_bad_dtype":
        np.savez(path, header=_header(dtype="float16"), theta=theta)
    elif kind == "header_missing_layers":
        np.savez(path, header=_header(layers=_DROP), theta=theta)
    elif kind == "header_bad_layers":
        np.savez(path, header=_header(layers=[3, 0, 2]), theta=theta)
    elif kind == "header_unknown_activation":
        np.savez(path, header=_header(activation=["swish"]), theta=theta)
    elif kind == "header_unknown_loss":
        np.savez(path, header=_header(loss="hinge"), theta=theta)
    elif kind == "header_as_string_array":
        np.savez(path, header=np.array(json.dumps({"format": "fastbp-mlp"})), theta=theta)
    elif kind in ("object_theta", "object_header"):
        bomb = np.empty(1, dtype=object)
        bomb[0] = _Bomb()
        arrays = {"header": _header(), "theta": theta}
        arrays[kind.split("_")[1]] = bomb
        np.savez(path, **arrays)  # allow_pickle defaults to True here: the array is pickled
    else:
        raise AssertionError(kind)
    return path


BAD_FILES = ["truncated", "truncated_tail", "random_bytes", "empty_file", "text_file", "npy_not_npz",
             "extra_arrays", "missing_theta", "theta_too_short", "theta_too_long", "theta_wrong_dtype", "theta_2d",
             "theta_nan", "header_not_json", "header_not_utf8", "header_json_list", "header_wrong_format",
             "header_wrong_version", "header_bad_dtype", "header_missing_layers", "header_bad_layers",
             "header_unknown_activation", "header_unknown_loss", "header_as_string_array", "object_theta",
             "object_header"]


@pytest.mark.parametrize("kind", BAD_FILES)
def test_load_rejects_bad_files(tmp_path, kind):
    _Bomb.target = tmp_path / "UNPICKLED"
    path = _write_bad(kind, tmp_path)
    assert path.exists()
    with pytest.raises(ValueError, match="not a valid fastbp model file"):
        fastbp.MLP.load(path)
    assert not _Bomb.target.exists(), "MLP.load unpickled data"


def test_the_bomb_would_go_off_if_unpickled(tmp_path):
    """Guard for the test above: loading the object array with pickling allowed does unpickle it."""
    _Bomb.target = tmp_path / "UNPICKLED"
    path = _write_bad("object_theta", tmp_path)
    with np.load(path, allow_pickle=True) as data:
        data["theta"]
    assert _Bomb.target.exists()


def test_load_a_directory_is_not_a_model(tmp_path):
    with pytest.raises(ValueError, match="not a valid fastbp model file"):
        fastbp.MLP.load(tmp_path)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastbp.MLP.load(tmp_path / "does_not_exist.npz")


# --------------------------------------------------------------------------- sanity guards
def test_the_fixture_file_loads(saved, workdir):
    """Guard: the unmodified file loads to the same model, so rejections below are due to the damage."""
    model, good = saved
    _assert_same_model(fastbp.MLP.load(_write(workdir, good)), model)
    rebuilt = _zip(_members(good))
    _assert_same_model(fastbp.MLP.load(_write(workdir, rebuilt)), model)


def test_the_sentinel_fires_when_unpickled(workdir):
    """Guard: the sentinel does run code when an object array is unpickled (so its silence means something)."""
    _Sentinel.target = workdir / "FIRED"
    pickle.loads(pickle.dumps(_object_array()))
    assert _Sentinel.target.exists()
    os.rmdir(_Sentinel.target)


# ------------------------------------------------------------------------------ truncation
@settings(max_examples=150, **SETTINGS)
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_file_is_rejected(saved, workdir, fraction):
    """Every proper prefix of a saved file is rejected with the documented ValueError."""
    _, good = saved
    _assert_rejected(_write(workdir, good[: int(fraction * len(good))]))


def test_truncation_at_every_structural_boundary(saved, workdir):
    """Prefixes ending around each zip record and ``.npy`` magic are all rejected."""
    _, good = saved
    cuts = {0, 1, 3, 4, len(good) - 1, len(good) - 22, len(good) - 23}
    for marker in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"\x93NUMPY"):
        i = good.find(marker)
        while i >= 0:
            cuts.update({i, i + 1, i + len(marker), i + 30})
            i = good.find(marker, i + 1)
    for cut in sorted(c for c in cuts if 0 <= c < len(good)):
        _assert_rejected(_write(workdir, good[:cut]))


# ------------------------------------------------------------------------------ byte flips
@settings(max_examples=400, **SETTINGS)
@given(data=st.data())
def test_byte_flips_are_rejected_or_harmless(saved, workdir, data):
    """Flipping 1-4 bytes anywhere gives the documented ValueError or the original model, nothing else."""
    model, good = saved
    n = len(good)
    flips = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 255)), min_size=1, max_size=4))
    b = bytearray(good)
    for pos, xor in flips:
        b[pos] ^= xor
    _assert_rejected_or_identical(_write(workdir, bytes(b)), model)


@settings(max_examples=100, **SETTINGS)
@given(data=st.data())
def test_overwritten_spans_are_rejected_or_harmless(saved, workdir, data):
    """Overwriting a span of the file with random bytes gives the documented ValueError or the original model."""
    model, good = saved
    start = data.draw(st.integers(0, len(good) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=64))
    b = good[:start] + junk + good[start + len(junk):]
    _assert_rejected_or_identical(_write(workdir, b), model)


@settings(max_examples=100, **SETTINGS)
@given(junk=st.binary(max_size=600))
def test_non_zip_garbage_is_rejected(workdir, junk, sentinel):
    """Arbitrary bytes (and bytes behind a zip, npy or pickle signature) are rejected, and never unpickled."""
    for prefix in (b"", b"PK\x03\x04", b"\x93NUMPY\x01\x00", b"\x80\x04"):
        _assert_rejected(_write(workdir, prefix + junk))


# -------------------------------------------------------------------------- zip surgery
def _zip_cases(good, header_npy, theta_npy):
    theta = np.load(io.BytesIO(theta_npy))
    obj = _npy(_object_array(), allow_pickle=True)
    return {
        "no_members": _zip({}),
        "header_removed": _zip({"theta.npy": theta_npy}),
        "theta_removed": _zip({"header.npy": header_npy}),
        "header_renamed": _zip({"Header.npy": header_npy, "theta.npy": theta_npy}),
        "theta_renamed_without_suffix": _zip({"header.npy": header_npy, "theta": theta_npy}),
        "theta_in_directory": _zip({"header.npy": header_npy, "sub/theta.npy": theta_npy}),
        "members_swapped": _zip({"header.npy": theta_npy, "theta.npy": header_npy}),
        "extra_member": _zip({"header.npy": header_npy, "theta.npy": theta_npy, "extra.npy": theta_npy}),
        "extra_pickled_member": _zip({"header.npy": header_npy, "theta.npy": theta_npy, "evil.npy": obj}),
        "theta_pickled": _zip({"header.npy": header_npy, "theta.npy": obj}),
        "header_pickled": _zip({"header.npy": obj, "theta.npy": theta_npy}),
        "theta_raw_pickle": _zip({"header.npy": header_npy,
                                  "theta.npy": pickle.dumps(_object_array())}),
        "theta_empty_member": _zip({"header.npy": header_npy, "theta.npy": b""}),
        "theta_not_npy": _zip({"header.npy": header_npy, "theta.npy": theta.tobytes()}),
        "theta_float32": _zip({"header.npy": header_npy, "theta.npy": _npy(theta.astype(np.float32))}),
        "theta_int64": _zip({"header.npy": header_npy, "theta.npy": _npy(theta.astype(np.int64))}),
        "theta_complex": _zip({"header.npy": header_npy, "theta.npy": _npy(theta.astype(np.complex128))}),
        "theta_big_endian": _zip({"header.npy": header_npy, "theta.npy": _npy(theta.astype(">f8"))}),
        "theta_structured": _zip({"header.npy": header_npy,
                                  "theta.npy": _npy(np.zeros(theta.shape, dtype=[("a", "<f8")]))}),
        "theta_2d": _zip({"header.npy": header_npy, "theta.npy": _npy(theta.reshape(2, -1))}),
        "theta_0d": _zip({"header.npy": header_npy, "theta.npy": _npy(np.float64(1.0))}),
        "theta_empty": _zip({"header.npy": header_npy, "theta.npy": _npy(np.zeros(0))}),
        "theta_inf": _zip({"header.npy": header_npy, "theta.npy": _npy(np.full(theta.shape, np.inf))}),
        "theta_npy_short_payload": _zip({"header.npy": header_npy,
                                         "theta.npy": theta_npy[:-8]}),
        "theta_npy_long_payload": _zip({"header.npy": header_npy, "theta.npy": theta_npy + b"\0" * 8}),
        "theta_declares_huge_shape": _zip({"header.npy": header_npy, "theta.npy": _npy_with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }", theta.tobytes())}),
        "theta_declares_negative_shape": _zip({"header.npy": header_npy, "theta.npy": _npy_with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (-26,), }", theta.tobytes())}),
        "theta_declares_overflowing_shape": _zip({"header.npy": header_npy, "theta.npy": _npy_with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", theta.tobytes())}),
        "theta_npy_header_code": _zip({"header.npy": header_npy, "theta.npy": _npy_with_header(
            "{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (26,), }", theta.tobytes())}),
        "theta_npy_bad_magic_version": _zip({"header.npy": header_npy,
                                             "theta.npy": b"\x93NUMPY\x09\x00" + theta_npy[8:]}),
        "header_declares_huge_shape": _zip({"theta.npy": theta_npy, "header.npy": _npy_with_header(
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000000,), }", b"{}")}),
        "header_2d": _zip({"header.npy": _npy(np.frombuffer(header_npy, dtype=np.uint8)[:64].reshape(8, 8)),
                           "theta.npy": theta_npy}),
        "header_bytes_string": _zip({"header.npy": _npy(np.array(json.dumps(HEADER).encode())),
                                     "theta.npy": theta_npy}),
        "header_int8": _zip({"header.npy": _npy(np.frombuffer(json.dumps(HEADER).encode(), dtype=np.int8)),
                             "theta.npy": theta_npy}),
        "header_utf16": _zip({"header.npy": _npy(np.frombuffer(json.dumps(HEADER).encode("utf-16"),
                                                               dtype=np.uint8)), "theta.npy": theta_npy}),
        "header_deeply_nested_json": _zip({"header.npy": _npy(np.frombuffer(
            b'{"format": ' + b"[" * 100000 + b"]" * 100000 + b"}", dtype=np.uint8)), "theta.npy": theta_npy}),
        "header_huge_integer": _zip({"header.npy": _npy(np.frombuffer(
            b'{"version": ' + b"9" * 5000 + b"}", dtype=np.uint8)), "theta.npy": theta_npy}),
        "method_deflate_on_stored_data": _set_compression_method(good, 8),
        "method_bzip2_on_stored_data": _set_compression_method(good, 12),
        "method_lzma_on_stored_data": _set_compression_method(good, 14),
        "method_unknown": _set_compression_method(good, 99),
        "flagged_encrypted": _set_flag_bits(good, 0x1),
        "flagged_strong_encryption": _set_flag_bits(good, 0x41),
        "nested_zip": _zip({"header.npy": header_npy, "theta.npy": good}),
        "zip_of_text": _zip({"header.txt": json.dumps(HEADER).encode(), "theta.txt": b"1 2 3"}),
        "npy_not_npz": theta_npy,
        "pickle_of_model": None,  # filled by the test: needs the model
        "pickle_of_sentinel": pickle.dumps(_object_array()),
    }


ZIP_CASE_NAMES = [
    "no_members", "header_removed", "theta_removed", "header_renamed", "theta_renamed_without_suffix",
    "theta_in_directory", "members_swapped", "extra_member", "extra_pickled_member", "theta_pickled",
    "header_pickled", "theta_raw_pickle", "theta_empty_member", "theta_not_npy", "theta_float32", "theta_int64",
    "theta_complex", "theta_big_endian", "theta_structured", "theta_2d", "theta_0d", "theta_empty", "theta_inf",
    "theta_npy_short_payload", "theta_npy_long_payload", "theta_declares_huge_shape",
    "theta_declares_negative_shape", "theta_declares_overflowing_shape", "theta_npy_header_code",
    "theta_npy_bad_magic_version", "header_declares_huge_shape", "header_2d", "header_bytes_string", "header_int8",
    "header_utf16", "header_deeply_nested_json", "header_huge_integer", "method_deflate_on_stored_data",
    "method_bzip2_on_stored_data", "method_lzma_on_stored_data", "method_unknown", "flagged_encrypted",
    "flagged_strong_encryption", "nested_zip", "zip_of_text",
    "npy_not_npz", "pickle_of_model", "pickle_of_sentinel",
]


@pytest.mark.parametrize("case", ZIP_CASE_NAMES)
def test_damaged_or_hostile_zip_is_rejected(saved, workdir, sentinel, case):
    """Members removed, renamed, swapped or replaced, hostile ``.npy`` headers, pickles, odd compression:
    each gives the documented ValueError, and nothing is unpickled."""
    model, good = saved
    members = _members(good)
    cases = _zip_cases(good, members["header.npy"], members["theta.npy"])
    cases["pickle_of_model"] = pickle.dumps(model)
    _assert_rejected(_write(workdir, cases[case], f"{case}.npz"))


def test_junk_around_the_zip_or_compression_keep_the_model(saved, workdir):
    """Bytes before or after the zip are rejected cleanly or ignored; deflated members read back the same model."""
    model, good = saved
    _assert_rejected_or_identical(_write(workdir, b"\0" * 16 + good), model)
    _assert_rejected_or_identical(_write(workdir, good + b"\0" * 16), model)
    deflated = _zip(_members(good), method=zipfile.ZIP_DEFLATED)
    _assert_same_model(fastbp.MLP.load(_write(workdir, deflated)), model)


# ------------------------------------------------------------------------ header mutations
_json_leaves = (st.none() | st.booleans() | st.integers() | st.integers(-2, 2 ** 40)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
                | st.sampled_from(["float32", "float64", "tanh", "relu", "mse", "auto", "fastbp-mlp"]))
_json = st.recursive(_json_leaves, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
_sizes = st.lists(st.one_of(st.integers(-3, 8), st.integers(10 ** 5, 10 ** 13), st.just(2 ** 63),
                            st.booleans(), st.floats(0, 10), st.text(max_size=2)), min_size=0, max_size=5)


@st.composite
def _mutated_headers(draw):
    header = dict(HEADER)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["set", "delete", "add", "layers", "huge_layers"]))
        if op == "set":
            header[draw(st.sampled_from(sorted(HEADER)))] = draw(_json)
        elif op == "delete":
            header.pop(draw(st.sampled_from(sorted(HEADER))), None)
        elif op == "add":
            header[draw(st.text(min_size=1, max_size=8))] = draw(_json)
        elif op == "layers":
            header["layers"] = draw(_sizes)
        else:  # widths that would need terabytes: must be refused before anything is allocated
            header["layers"] = draw(st.lists(st.integers(10 ** 5, 10 ** 12), min_size=2, max_size=4))
            header["activation"] = ["tanh"] * (len(header["layers"]) - 2)
    return header


def _expected_activations(header):
    act = header["activation"]
    return [act] * (len(header["layers"]) - 2) if isinstance(act, str) else list(act)


@settings(max_examples=400, **SETTINGS)
@given(header=_mutated_headers())
def test_mutated_header_is_rejected_or_loaded_as_written(saved, workdir, header):
    """A header with keys changed, removed or added gives the documented ValueError, or a model that is
    exactly what the header says with the saved parameters: never another exception, never a mix."""
    model, good = saved
    theta_npy = _members(good)["theta.npy"]
    path = _write(workdir, _zip({"header.npy": _header_npy(header), "theta.npy": theta_npy}))
    try:
        loaded = fastbp.MLP.load(path)
    except ValueError as exc:
        assert INVALID in str(exc)
        return
    assert loaded.theta.tobytes() == model.theta.tobytes()
    assert loaded.layers == header["layers"] == LAYERS
    assert loaded.activations == _expected_activations(header)
    assert loaded.loss == header["loss"]
    assert np.dtype(loaded.dtype).name == header["dtype"] == "float64"
    assert loaded.seed == header.get("seed")
    assert loaded.init == header.get("init", "auto")


HEADER_CASES = {
    "layers_huge": dict(layers=[100000, 100000, 100000]),
    "layers_huge_2": dict(layers=[10 ** 9, 10 ** 9], activation=[]),
    "layers_astronomic": dict(layers=[2 ** 70, 2], activation=[]),
    "layers_negative": dict(layers=[3, -4, 2]),
    "layers_zero": dict(layers=[3, 0, 2]),
    "layers_float": dict(layers=[3.0, 4.0, 2.0]),
    "layers_bool": dict(layers=[3, True, 2]),
    "layers_string": dict(layers="342"),
    "layers_dict": dict(layers={"3": 4}),
    "layers_null": dict(layers=None),
    "layers_nested": dict(layers=[[3], [4], [2]]),
    "layers_reversed": dict(layers=[2, 4, 3]),  # 27 parameters, the file holds 26
    "layers_one_more_hidden_unit": dict(layers=[3, 5, 2]),
    "activation_missing": dict(activation=_DROP),
    "activation_wrong_count": dict(activation=["tanh", "tanh"]),
    "activation_unknown": dict(activation=["swish"]),
    "activation_nested": dict(activation=[["tanh"]]),
    "activation_number": dict(activation=3),
    "loss_missing": dict(loss=_DROP),
    "loss_list": dict(loss=["mse"]),
    "dtype_missing": dict(dtype=_DROP),
    "dtype_float32_for_float64_theta": dict(dtype="float32"),
    "dtype_list": dict(dtype=["float64"]),
    "dtype_object": dict(dtype="object"),
    "format_missing": dict(format=_DROP),
    "format_other": dict(format="fastbp-mlp2"),
    "version_missing": dict(version=_DROP),
    "version_string": dict(version="1"),
    "version_float_nan": dict(version=float("nan")),
    "version_two": dict(version=2),
    "init_unknown": dict(init="xavier"),
    "init_list": dict(init=["auto"]),
    "seed_negative": dict(seed=-1),
    "seed_float": dict(seed=0.5),
    "seed_string": dict(seed="0"),
    "seed_bool": dict(seed=True),
}


@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_bad_header_is_rejected(saved, workdir, case):
    """Wrong types, missing required keys, nonsense or enormous sizes in the header: the documented ValueError,
    without allocating the enormous model."""
    _, good = saved
    theta_npy = _members(good)["theta.npy"]
    header = _header_with(HEADER_CASES[case])
    _assert_rejected(_write(workdir, _zip({"header.npy": _header_npy(header), "theta.npy": theta_npy})))


def test_extra_and_optional_header_keys(saved, workdir):
    """Unknown extra keys are ignored (the version key guards the format); missing ``seed``/``init`` take
    their defaults. Both give the saved parameters."""
    model, good = saved
    theta_npy = _members(good)["theta.npy"]
    header = dict(HEADER, comment="trained on Tuesday", extra={"nested": [1, [2, {"x": None}]]})
    loaded = fastbp.MLP.load(_write(workdir, _zip({"header.npy": _header_npy(header), "theta.npy": theta_npy})))
    _assert_same_model(loaded, model)
    header = {k: v for k, v in HEADER.items() if k not in ("seed", "init")}
    loaded = fastbp.MLP.load(_write(workdir, _zip({"header.npy": _header_npy(header), "theta.npy": theta_npy})))
    assert loaded.seed is None and loaded.init == "auto"
    assert loaded.theta.tobytes() == model.theta.tobytes()
