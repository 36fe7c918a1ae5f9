"""The saved-model file format: an ``.npz`` zip of a JSON header and the flat parameters.

Loading never unpickles, and checks the header before reading any data, so a
file that claims an enormous network is refused before anything of that size
is allocated.
"""

import json
import lzma
import struct
import zipfile
import zlib

import numpy as np

from .network import check_sizes

FORMAT = "fastbp-mlp"
FORMAT_VERSION = 1
DTYPES = {"float32": np.float32, "float64": np.float64}
_MAX_HEADER_BYTES = 1 << 20  # the JSON header of a saved model is a few hundred bytes
#: What reading a damaged or foreign file may raise. RuntimeError: zipfile refuses encrypted members (and,
#: as NotImplementedError, unknown compression); json.loads gives up on deep nesting (RecursionError).
LOAD_ERRORS = (OSError, EOFError, KeyError, TypeError, ValueError, OverflowError, RuntimeError, struct.error,
               zlib.error, lzma.LZMAError, zipfile.BadZipFile)


def write_model_file(path, header, theta):
    """Write ``header`` (a JSON-able dict) and the parameter vector ``theta`` to ``path``."""
    header = {"format": FORMAT, "version": FORMAT_VERSION, **header}
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, header=blob, theta=theta)


def read_model_file(path):
    """The checked header dict and parameter vector of a saved model; errors for anything else."""
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        if names != ["header.npy", "theta.npy"]:
            raise ValueError(f"expected arrays 'header' and 'theta', found {names}")
        blob = _read_npy_member(archive, "header.npy", np.dtype(np.uint8), max_items=_MAX_HEADER_BYTES)
        try:
            header = json.loads(blob.tobytes().decode("utf-8"))
        except RecursionError:
            raise ValueError("the header is nested too deeply to be a fastbp header") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError("the header does not describe a fastbp MLP")
        if header.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported format version {header.get('version')!r}")
        dtype = header.get("dtype")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise ValueError(f"unsupported dtype {dtype!r}")
        for key in ("layers", "activation", "loss"):
            if key not in header:
                raise ValueError(f"the header has no {key!r}")
        sizes = check_sizes(header["layers"])
        n_params = sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))
        theta = _read_npy_member(archive, "theta.npy", np.dtype(DTYPES[dtype]), shape=(n_params,))
    if not np.all(np.isfinite(theta)):
        raise ValueError("the parameters contain NaN or Inf")
    return header, theta


def _read_npy_member(archive, name, dtype, shape=None, max_items=None):
    """A 1-D ``.npy`` member of ``dtype``: its header is checked before any data is read or allocated."""
    with archive.open(name) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            got_shape, _, got_dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            got_shape, _, got_dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"{name}: unsupported .npy version {version}")
        if got_dtype != dtype:
            raise ValueError(f"{name}: expected dtype {dtype}, got {got_dtype}")
        if len(got_shape) != 1 or (shape is not None and got_shape != shape):
            raise ValueError(f"{name}: expected shape {shape or '(n,)'}, got {got_shape}")
        if max_items is not None and got_shape[0] > max_items:
            raise ValueError(f"{name}: {got_shape[0]} items is more than the {max_items} allowed")
        nbytes = got_shape[0] * dtype.itemsize
        data = f.read(nbytes + 1)  # reading to the end makes zipfile check the CRC
    if len(data) != nbytes:
        raise ValueError(f"{name}: expected {nbytes} bytes of data, got {'more' if len(data) > nbytes else len(data)}")
    return np.frombuffer(data, dtype=dtype).copy()
