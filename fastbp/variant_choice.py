"""Which compiled variant of a driver a call runs: the network's own, or the general one.

A driver compiled for a network's own activations, loss and optimizer
(:mod:`fastbp.kernels.variants`) costs a fraction of the general driver's
compilation, which serves every network. :func:`call_driver` chooses between
them, :func:`network_variant` makes a network's variant, and :func:`variants`
(or ``FASTBP_VARIANTS``) overrides the choice.
"""

import contextlib
import contextvars
import functools

import numba

from . import _settings
from .kernels.compile import argument_types, is_cached
from .kernels.variants import GENERAL, Variant


def network_variant(network, loss=False, optimizer=None):
    """The compiled variant that serves ``network``'s activations, and its loss and optimizer when asked.

    Parameters
    ----------
    network : Network
    loss : bool
        Serve the network's loss only (``loss_and_grad``); otherwise every loss.
    optimizer : int or None
        An optimizer code: serve it and the network's loss only (an epoch);
        None serves every optimizer (and follows ``loss`` for the loss).

    Returns
    -------
    Variant
        One object per set of codes: a driver that never reads the loss or
        the optimizer (``predict_raw`` reads neither) keeps one compiled
        variant whatever the model's loss and optimizer.
    """
    losses = (network.loss_code,) if loss or optimizer is not None else GENERAL.losses
    optimizers = GENERAL.optimizers if optimizer is None else (optimizer,)
    return _variant(tuple(network.act_codes), losses, optimizers)


@functools.lru_cache(maxsize=256)
def _variant(activations, losses, optimizers):
    """One :class:`Variant` object per set of codes (made once: a ``predict`` asks for its variant every call)."""
    return Variant(activations, losses, optimizers)


# Per thread of control (a context variable), so that a block of variants() in one thread leaves the others alone.
_variant_choice = contextvars.ContextVar("fastbp_variant_choice", default=_settings.VARIANTS)


@contextlib.contextmanager
def variants(choice):
    """Within the block, compiled drivers run the variant ``choice``.

    Parameters
    ----------
    choice : {"auto", "general", "network"}
        ``"auto"`` is :func:`call_driver`'s rule. ``"general"`` runs (and so
        compiles) the variants that serve every network, as ``python -m
        fastbp warmup`` does; ``"network"`` always the network's own. The
        default outside any block is ``FASTBP_VARIANTS`` (see
        :mod:`fastbp._settings`). The setting holds for the current thread
        (context) only.
    """
    if choice not in _settings.VARIANT_CHOICES:
        raise ValueError(f"unknown variant choice {choice!r}; expected one of {_settings.VARIANT_CHOICES}")
    token = _variant_choice.set(choice)
    try:
        yield
    finally:
        _variant_choice.reset(token)


_takes_general = {}  # (driver, network variant, dtype, which arguments are None) -> take the general variant?


def call_driver(run, args, variant, dtype):
    """Call the compiled driver ``run`` with ``args`` and a variant: the network's own, or the general one.

    A process that trains one kind of network compiles only what that
    network uses: its own ``variant`` (its activations, loss and optimizer),
    a fraction of the general variant's compilation. The general variant,
    which serves every network, is taken when it is compiled already (in
    memory, or in the on-disk cache, where ``python -m fastbp warmup`` puts
    it), and when another network's variant is compiled already for the
    same argument types: a process that trains several kinds of network
    compiles the general variant once, and not one variant for each (a
    search over activations would compile dozens). :func:`variants` and
    ``FASTBP_VARIANTS`` override the rule. The two variants run the same
    arithmetic, but LLVM may fuse multiply-adds differently in the two, so
    their results agree to a few ulps, not always bit for bit.

    Parameters
    ----------
    run : numba dispatcher
        A driver of :mod:`fastbp.kernels.driver`.
    args : tuple
        Its arguments but the last, the variant.
    variant : Variant
        The network's own variant (:func:`network_variant`).
    dtype : numpy.dtype
        The parameters' dtype.

    Returns
    -------
    What ``run`` returns.

    Notes
    -----
    The choice is made at the first call for a driver, a network variant,
    a dtype and a pattern of None arguments (optional features off or on),
    and kept: looking at every argument's type on every call would cost
    more than a small ``predict``.
    """
    choice = _variant_choice.get()
    if choice != "auto":
        return run(*args, GENERAL if choice == "general" else variant)
    key = (run, variant, dtype, tuple(a is None for a in args))
    general = _takes_general.get(key)
    if general is None:
        general = _takes_general[key] = _general_serves(run, args, variant)
    return run(*args, GENERAL if general else variant)


def _general_serves(run, args, variant):
    """Whether ``run(*args)`` should take the general variant (see :func:`call_driver`)."""
    types = argument_types((*args, GENERAL))
    if types is None:
        return True  # an argument Numba cannot type: the call reports it, whichever the variant
    compiled = list(run.overloads)  # one copy, taken at once (another thread may be compiling)
    if types in compiled:
        return True
    if (*types[:-1], numba.typeof(variant)) in compiled:
        return False
    return any(sig[:-1] == types[:-1] for sig in compiled) or is_cached(run, types)
