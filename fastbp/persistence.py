"""The saved-model file format: an ``.npz`` zip of a JSON header and the flat parameters.

Saving replaces the file atomically (a temporary file in the same directory,
flushed to disk, then renamed over the target), so a failed or interrupted
save never damages the model that was there.

Loading never unpickles, reads only regular files, and checks the header
before reading any data: a file that claims an enormous network (more than
:data:`MAX_PARAMS` parameters), or more data than it holds, is refused before
anything of that size is allocated, and what a compressed member may expand
to is bounded by the size the header declares.
"""

import contextlib
import json
import lzma
import os
import secrets
import stat
import struct
import zipfile
import zlib

import numpy as np

from .network import check_sizes

FORMAT = "fastbp-mlp"
FORMAT_VERSION = 1
DTYPES = {"float32": np.float32, "float64": np.float64}
#: The largest network :func:`read_model_file` (``MLP.load``) accepts, in parameters: 2**28, 1 GiB of float32
#: parameters. A file declaring more is refused before anything is allocated; raise it to load a bigger model
#: from a file you trust.
MAX_PARAMS = 2 ** 28
_MAX_HEADER_BYTES = 1 << 20  # the JSON header of a saved model is a few hundred bytes
_CHUNK_BYTES = 1 << 20  # the parameters are read, and checked for NaN and Inf, this much at a time
_DEFLATE_MAX_RATIO = 1033  # deflate expands at most 258 bytes per 2 bits of input (1032:1)
#: The zip methods read: np.savez stores, np.savez_compressed deflates. zipfile decompresses bzip2 and lzma
#: a whole read at a time, however far that expands, so a small member could make it allocate gigabytes.
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
#: What reading a damaged or foreign file may raise. RuntimeError: zipfile refuses encrypted members (and,
#: as NotImplementedError, unknown compression); json.loads gives up on deep nesting (RecursionError).
LOAD_ERRORS = (OSError, EOFError, KeyError, TypeError, ValueError, OverflowError, RuntimeError, struct.error,
               zlib.error, lzma.LZMAError, zipfile.BadZipFile)


# ------------------------------------------------------------------------------------ writing
def write_model_file(path, header, theta):
    """Write ``header`` (a JSON-able dict) and the parameter vector ``theta`` to ``path``, atomically.

    The data goes to a new temporary file beside ``path``, is flushed and
    fsynced, and the temporary file is then renamed over ``path``
    (``os.replace``). On any failure the temporary file is removed and the
    error propagates; ``path`` is untouched.
    """
    header = {"format": FORMAT, "version": FORMAT_VERSION, **header}
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    try:
        target = os.path.realpath(os.fsdecode(os.fspath(path)))  # through a symlink, as open(path, "wb") writes
    except TypeError:
        raise TypeError(f"path must be a file name (str or os.PathLike), got {type(path).__name__}") from None
    directory, name = os.path.split(target)
    fd, temporary = _create_temporary(directory, name)
    try:
        with os.fdopen(fd, "wb") as f:
            _keep_mode(target, f.fileno())
            np.savez(f, header=blob, theta=theta)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_directory(directory)


def _create_temporary(directory, name):
    """A new file ``.NAME.<random>.tmp`` in ``directory``, created with the permissions ``open`` would give."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
        except PermissionError as exc:
            raise PermissionError(exc.errno, f"{exc.strerror}: saving {name} atomically needs a new (temporary) "
                                  "file in its directory", directory) from None
    raise FileExistsError(f"could not create a temporary file beside {os.path.join(directory, name)}")


def _keep_mode(target, fd):
    """Give the new file the permission bits of the file it replaces, as rewriting that file in place would."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return  # no file there yet: the new one keeps the umask's permissions
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)


def _sync_directory(directory):
    """Flush the rename to disk, where the platform allows opening a directory (best effort)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# ------------------------------------------------------------------------------------ reading
def read_model_file(source, make_model):
    """Read a saved model; errors (from :data:`LOAD_ERRORS`) for anything else.

    Parameters
    ----------
    source : str, os.PathLike or binary file object
        A path must name a regular file; it is opened without waiting (a
        named pipe does not block) and checked with ``fstat`` on the open
        descriptor, so it cannot be swapped between the check and the read.
    make_model : callable
        ``make_model(header)`` builds the model the checked header describes
        (raising for a header it cannot build) with its parameter vector
        ``theta`` allocated but not written.

    Returns
    -------
    object
        The model ``make_model`` built, with ``theta`` read from the file.
    """
    if hasattr(source, "read"):
        return _read_archive(source, _stream_size(source), make_model)
    fd = _open_regular_file(source)
    with os.fdopen(fd, "rb") as f:
        return _read_archive(f, os.fstat(f.fileno()).st_size, make_model)


def _open_regular_file(path):
    """A read-only descriptor of ``path``, or a ``ValueError`` when it is not a regular file."""
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO for reading would wait for a writer
    fd = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"it is {_file_kind(mode)}, not a regular file")
        if nonblocking:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _file_kind(mode):
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def _stream_size(f):
    """The size of a seekable file object (its position is kept), or None."""
    try:
        here = f.tell()
        size = f.seek(0, os.SEEK_END)
        f.seek(here)
        return size
    except (AttributeError, OSError, ValueError):
        return None


def _read_archive(f, file_size, make_model):
    with zipfile.ZipFile(f) as archive:
        names = sorted(archive.namelist())
        if names != ["header.npy", "theta.npy"]:
            raise ValueError(f"expected arrays 'header' and 'theta', found {names}")
        for info in archive.infolist():
            if info.compress_type not in _METHODS:
                raise ValueError(f"{info.filename} is compressed with zip method {info.compress_type}; only stored "
                                 "and deflated members are read (zipfile cannot bound what the others expand to)")
        header = _read_header(archive)
        sizes = check_sizes(header["layers"])
        n_params = sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))
        if n_params > MAX_PARAMS:
            raise ValueError(f"the header declares a network of {n_params:,} parameters, more than "
                             f"fastbp.persistence.MAX_PARAMS ({MAX_PARAMS:,}); raise that limit to load a "
                             "bigger model from a file you trust")
        dtype = np.dtype(DTYPES[header["dtype"]])
        _check_member_can_hold(archive.getinfo("theta.npy"), n_params * dtype.itemsize, file_size)
        model = make_model(header)
        theta = model.theta
        if theta.shape != (n_params,) or theta.dtype != dtype or not theta.flags.c_contiguous:
            raise ValueError("the model built from the header does not match it")  # a broken make_model
        _read_npy_member_into(archive, "theta.npy", theta)
    return model


def _read_header(archive):
    """The checked JSON header dict: format, version, dtype and the keys every model needs."""
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
    return header


def _check_member_can_hold(info, nbytes, file_size):
    """Refuse a member that cannot hold ``nbytes`` of data, judged from the zip directory alone."""
    name = info.filename
    if info.file_size < nbytes:
        raise ValueError(f"{name} holds {info.file_size} bytes, too few for the {nbytes} bytes of parameters "
                         "the header declares")
    if file_size is not None and info.compress_size > file_size:
        raise ValueError(f"{name} claims {info.compress_size} bytes of stored data, more than the whole file "
                         f"({file_size} bytes)")
    if info.compress_type == zipfile.ZIP_DEFLATED and nbytes > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
        raise ValueError(f"{name}'s {info.compress_size} compressed bytes cannot expand to the {nbytes} bytes "
                         "of parameters the header declares")


def _read_npy_header(f, name, dtype):
    """The shape of a 1-D ``.npy`` stream of ``dtype``, read from its header (the data is not touched)."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        got_shape, _, got_dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        got_shape, _, got_dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"{name}: unsupported .npy version {version}")
    if got_dtype != dtype:
        raise ValueError(f"{name}: expected dtype {dtype}, got {got_dtype}")
    if len(got_shape) != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {got_shape}")
    return got_shape


def _read_npy_member(archive, name, dtype, max_items):
    """A small 1-D ``.npy`` member of ``dtype``: its header is checked before any data is read."""
    with archive.open(name) as f:
        (items,) = _read_npy_header(f, name, dtype)
        if items > max_items:
            raise ValueError(f"{name}: {items} items is more than the {max_items} allowed")
        nbytes = items * dtype.itemsize
        data = f.read(nbytes + 1)  # reading to the end makes zipfile check the CRC
    if len(data) != nbytes:
        raise ValueError(f"{name}: expected {nbytes} bytes of data, got {'more' if len(data) > nbytes else len(data)}")
    return np.frombuffer(data, dtype=dtype).copy()


def _read_npy_member_into(archive, name, out):
    """Fill the 1-D array ``out`` from the ``.npy`` member ``name``, a chunk at a time, and check it is finite.

    The member must hold exactly ``out``'s shape and dtype. Nothing but ``out``
    and one chunk is allocated, and zipfile stops decompressing at the size
    the zip directory declares.
    """
    nbytes = out.nbytes
    with archive.open(name) as f:
        shape = _read_npy_header(f, name, out.dtype)
        if shape != out.shape:
            raise ValueError(f"{name}: expected shape {out.shape}, got {shape}")
        view = memoryview(out.view(np.uint8))
        done = 0
        while done < nbytes:
            got = f.readinto(view[done:done + _CHUNK_BYTES])
            if not got:
                break
            done += got
        extra = f.read(1)  # reading to the end makes zipfile check the CRC
    if done != nbytes or extra:
        raise ValueError(f"{name}: expected {nbytes} bytes of data, got {'more' if extra else done}")
    step = max(_CHUNK_BYTES // out.itemsize, 1)
    for start in range(0, out.shape[0], step):
        if not np.all(np.isfinite(out[start:start + step])):
            raise ValueError("the parameters contain NaN or Inf")
