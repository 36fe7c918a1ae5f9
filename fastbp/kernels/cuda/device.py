"""Whether the CUDA backend can run here, and fastbp's CUDA compile options.

Nothing here imports ``numba.cuda`` until a function is called.
"""

from ... import _settings

#: The message of a CUDA request that cannot be served, and how to fix it.
INSTALL_HINT = ("Install the CUDA extra with `pip install fastbp[cuda]` (it brings numba-cuda and the CUDA "
                "libraries) on a machine with an NVIDIA GPU and its driver, or train with backend='cpu'.")

_cuda = None  # the numba.cuda module, once loaded


class CudaUnavailableError(RuntimeError):
    """The CUDA backend was asked for, but numba-cuda or a usable GPU is missing."""


def import_cuda():
    """``numba.cuda``, imported on first use; a clear :class:`CudaUnavailableError` without numba-cuda."""
    global _cuda
    if _cuda is None:
        try:
            import numba_cuda  # noqa: F401  (the maintained CUDA target; Numba's built-in one is deprecated)
            from numba import cuda
        except ImportError:
            raise CudaUnavailableError("the CUDA backend needs the numba-cuda package, which is not installed. "
                                       + INSTALL_HINT) from None
        _cuda = cuda
    return _cuda


def simulator_enabled():
    """Whether Numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1``): kernels then run on the CPU."""
    import numba

    return bool(getattr(numba.config, "ENABLE_CUDASIM", 0))


def device_problem():
    """Why the CUDA backend cannot run here, or ``None`` when it can.

    Returns
    -------
    str or None
        A one-line reason (no numba-cuda, no driver, no GPU), or ``None`` when
        a GPU is usable or the CUDA simulator is enabled.
    """
    try:
        cuda = import_cuda()
    except CudaUnavailableError as exc:
        return str(exc)
    if simulator_enabled():
        return None
    try:
        if len(cuda.gpus) > 0 and cuda.is_available():
            return None
        reason = "no CUDA GPU was found"
    except Exception as exc:  # the driver's own error, on one line and without its traceback
        reason = " ".join(str(exc).split()).rstrip(" :")[:300] or type(exc).__name__
    return f"no usable CUDA GPU ({reason}). " + INSTALL_HINT


def real_device_available():
    """Whether a real CUDA GPU is usable (the simulator does not count); never raises."""
    try:
        return not simulator_enabled() and device_problem() is None
    except Exception:
        return False


def require_device():
    """Raise :class:`CudaUnavailableError` with the reason when the CUDA backend cannot run here."""
    problem = device_problem()
    if problem is not None:
        raise CudaUnavailableError(f"backend='cuda' cannot run: {problem}")


def jit_options(device=False):
    """Keyword arguments for ``numba.cuda.jit``: fastbp's CUDA compilation flags.

    Parameters
    ----------
    device : bool, default False
        ``True`` for a device function. Device functions are inlined into
        their callers at the Numba IR level (``inline="always"``): the shared
        activation, loss and optimizer math then compiles as part of each
        kernel, and no separately compiled device function exists.

    Returns
    -------
    dict
    """
    if device:
        return {"device": True, "inline": "always"}
    return {"fastmath": _settings.CUDA_FASTMATH}
