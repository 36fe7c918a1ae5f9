"""Compiled variants: the activation, loss and optimizer codes a driver is compiled for.

The drivers read their codes at run time (the layer table's activations, the
loss and optimizer arguments), so one compiled driver serves every network.
That generality is paid for at its first compilation: every activation's
loops, every loss and every optimizer step are compiled, whatever the
network uses. A :class:`Variant` passed to a driver narrows that set. Its
Numba type carries the codes it allows, the driver tags its codes with it
(:func:`activation_code`, :func:`loss_code`, :func:`optimizer_code`), and the
dispatch points (:func:`fastbp.kernels.activations.bias_activate`,
:func:`~fastbp.kernels.activations.scale_by_derivative`, the output delta and
the optimizer step) compile branches for those codes only. A driver compiled
for :data:`GENERAL` serves any network; one compiled for a network's own
codes serves that network and costs a fraction of the compilation.

A tagged code holds its value as an ``int64``; :func:`code_value` reads it
back, and reads a plain integer code (from the public kernels, which serve
every activation) as it is. :func:`served_codes` tells a dispatch point's typing
which codes it must serve. A compiled pass that reads only some of the
codes is called with its variant widened to every other code
(:func:`activations_only`, :func:`without_optimizers`), so that callers
whose variants differ there share its compilation.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import NativeValue, intrinsic, models, overload, register_model, unbox

from .layout import ACTIVATIONS, ADAM, ADAMW, LOSSES, SGD

ALL_ACTIVATIONS = tuple(sorted(ACTIVATIONS.values()))
ALL_LOSSES = tuple(sorted(LOSSES.values()))
ALL_OPTIMIZERS = (SGD, ADAM, ADAMW)


class Variant:
    """The codes a compiled driver serves: activations, losses and optimizers (each a tuple; all by default).

    Parameters
    ----------
    activations, losses, optimizers : iterable of int, optional
        The codes of :mod:`.layout`. A driver compiled for this variant must
        only be given these codes.
    """

    __slots__ = ("activations", "losses", "optimizers", "_numba_type_")

    def __init__(self, activations=ALL_ACTIVATIONS, losses=ALL_LOSSES, optimizers=ALL_OPTIMIZERS):
        self.activations = _codes(activations, ALL_ACTIVATIONS, "activation")
        self.losses = _codes(losses, ALL_LOSSES, "loss")
        self.optimizers = _codes(optimizers, ALL_OPTIMIZERS, "optimizer")
        # Numba's dispatcher reads the type from this attribute at every call (faster than a typeof function)
        self._numba_type_ = VariantType(self.activations, self.losses, self.optimizers)

    def __eq__(self, other):
        return isinstance(other, Variant) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"Variant(activations={self.activations}, losses={self.losses}, optimizers={self.optimizers})"

    def _key(self):
        return self.activations, self.losses, self.optimizers


def _codes(codes, known, kind):
    """``codes`` as a sorted tuple of distinct ints, each one of ``known``."""
    given = tuple(codes)
    if not given or any(not isinstance(c, (int, np.integer)) or isinstance(c, bool) or c not in known
                        for c in given):
        raise ValueError(f"a variant's {kind} codes must be a non-empty subset of {known}, got {given}")
    return tuple(sorted({int(c) for c in given}))


class VariantType(types.Type):
    """The Numba type of a :class:`Variant`: its codes are the type's, the value carries nothing."""

    def __init__(self, activations, losses, optimizers):
        self.activations = activations
        self.losses = losses
        self.optimizers = optimizers
        super().__init__(name=f"Variant(activations={activations}, losses={losses}, optimizers={optimizers})")


class CodeType(types.Type):
    """An ``int64`` code of one ``kind`` ("activation", "loss", "optimizer") known to be one of ``codes``."""

    def __init__(self, kind, codes):
        self.kind = kind
        self.codes = codes
        super().__init__(name=f"{kind}_code{codes}")


#: Every code: the variant of the public kernels, and of a driver that serves any network.
GENERAL = Variant()


register_model(VariantType)(models.OpaqueModel)


@unbox(VariantType)
def _unbox_variant(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


@register_model(CodeType)
class _CodeModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.IntType(64))


def _tagged(kind, field, everything, code, variant):
    """The typing of a tagging intrinsic: ``(signature, codegen)`` or None for other arguments.

    A variant that serves every code of its kind tags nothing: the code stays
    a plain ``int64``, so the general driver calls the dense kernels with the
    types the public kernels use, and the two share those compilations.
    """
    if not isinstance(code, types.Integer) or not isinstance(variant, VariantType):
        return None
    codes = getattr(variant, field)
    tagged = types.int64 if codes == everything else CodeType(kind, codes)

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[0], code, types.int64)

    return tagged(code, variant), codegen


@intrinsic
def activation_code(typingctx, code, variant):
    """``code`` tagged as one of ``variant``'s activations."""
    return _tagged("activation", "activations", ALL_ACTIVATIONS, code, variant)


@intrinsic
def loss_code(typingctx, code, variant):
    """``code`` tagged as one of ``variant``'s losses."""
    return _tagged("loss", "losses", ALL_LOSSES, code, variant)


@intrinsic
def optimizer_code(typingctx, code, variant):
    """``code`` tagged as one of ``variant``'s optimizers."""
    return _tagged("optimizer", "optimizers", ALL_OPTIMIZERS, code, variant)


def _widened(variant, losses, optimizers):
    """The typing of a widening intrinsic: ``variant`` serving every loss (``losses``) and optimizer
    (``optimizers``) too, or None for another argument."""
    if not isinstance(variant, VariantType):
        return None
    wide = VariantType(variant.activations, ALL_LOSSES if losses else variant.losses,
                       ALL_OPTIMIZERS if optimizers else variant.optimizers)

    def codegen(context, builder, signature, args):
        return context.get_dummy_value()

    return wide(variant), codegen


@intrinsic
def activations_only(typingctx, variant):
    """``variant`` widened to every loss and optimizer: what a pass that reads activation codes only is compiled for.

    A pass called with it (the forward pass) is one compilation whatever the
    caller's loss and optimizer: an epoch's, a prediction's and a
    gradient's calls share it.
    """
    return _widened(variant, True, True)


@intrinsic
def without_optimizers(typingctx, variant):
    """``variant`` widened to every optimizer: for a pass that reads no optimizer code (a chunk's gradient)."""
    return _widened(variant, False, True)


def code_value(code):
    """The ``int64`` value of a tagged or plain integer code (in compiled code)."""
    return code


@intrinsic
def _tagged_value(typingctx, code):
    if not isinstance(code, CodeType):
        return None

    def codegen(context, builder, signature, args):
        return args[0]

    return types.int64(code), codegen


@overload(code_value, inline="always")
def _code_value_overload(code):
    if isinstance(code, CodeType):
        return lambda code: _tagged_value(code)
    if isinstance(code, types.Integer):
        return lambda code: np.int64(code)
    return None


def served_codes(code, kind, everything):
    """At typing time: the codes a dispatch point must serve for an argument of Numba type ``code``.

    A :class:`CodeType` of ``kind`` serves its own codes; a plain integer,
    ``everything``.
    """
    if isinstance(code, CodeType) and code.kind == kind:
        return code.codes
    return everything
