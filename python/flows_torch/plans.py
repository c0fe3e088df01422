"""From a plan (the JSON in a model file's metadata) to the torch bijector it describes.

A plan is ``{"type": name, "options": {...}}``; ``PLANS`` maps each type name to a builder
``(options, spec) -> Bijector``. It is the one place that names plan types: when a Swift plan
type is renamed and its old name kept readable, the alias here is one more line.

Each builder replicates the Swift plan's ``makeBijector`` (Sources/NormalizingFlows/Presets
and Bijectors); tensors are filled from the file afterwards, so random draws (orders,
permutations) need not be replayed: they are buffers in the file.
"""

import math
from dataclasses import dataclass

import torch

from . import bijectors as b
from . import conditional
from . import splines as s
from . import monotonic as m
from .bijectors import MappingError


@dataclass(frozen=True)
class Spec:
    """What a plan is made concrete for (Swift ``BijectorSpec``)."""

    event_shape: tuple
    context_size: int
    dtype: torch.dtype

    @property
    def event_size(self):
        return math.prod(self.event_shape)


def build(plan, spec):
    """The bijector for a decoded plan object ``{"type": …, "options": …}``."""
    if not isinstance(plan, dict) or not isinstance(plan.get("type"), str):
        raise MappingError(f"a plan must be an object with a 'type', got {str(plan)[:100]}")
    name = plan["type"]
    if name in UNMAPPED:
        raise MappingError(f"the plan type '{name}' is not mapped to PyTorch: {UNMAPPED[name]}")
    builder = PLANS.get(name)
    if builder is None:
        raise MappingError(f"the plan type '{name}' is not mapped to PyTorch (mapped: {', '.join(sorted(PLANS))})")
    options = plan.get("options") or {}
    try:
        return builder(options, spec)
    except MappingError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise MappingError(f"plan '{name}': options {str(options)[:200]} cannot be read ({type(error).__name__}: {error})") from None


def _order(order_json, d):
    """A ``VariableOrder`` as a list (random ones are placeholders: the file holds the drawn order)."""
    if not isinstance(order_json, dict) or len(order_json) != 1:
        raise MappingError(f"variable order {order_json!r} is not natural, reversed, random or given")
    (kind, value), = order_json.items()
    if kind in ("natural", "random"):
        return list(range(d))
    if kind == "reversed":
        return list(range(d))[::-1]
    if kind == "given":
        p = [int(v) for v in value["_0"]]
        if sorted(p) != list(range(d)):
            raise MappingError(f"{p} is not a permutation of 0..<{d}")
        return p
    raise MappingError(f"variable order '{kind}' is not mapped")


def _coupling_mask(mask_json, d):
    """A ``CouplingMask``: True marks the conditioning elements."""
    (kind, value), = mask_json.items()
    if kind == "alternating":
        parity = int(value["parity"])
        return [i % 2 == parity % 2 for i in range(d)]
    if kind == "given":
        mask = [bool(v) for v in value["_0"]]
        if len(mask) != d:
            raise MappingError(f"coupling mask has {len(mask)} entries for events of {d} elements")
        return mask
    raise MappingError(f"coupling mask '{kind}' is not mapped")


def _network_logit_scale(hidden_sizes):
    """Swift ``RationalQuadraticSplineTransform.networkLogitScale``: 1/√(last hidden width)."""
    return 1 / math.sqrt(max(hidden_sizes[-1] if hidden_sizes else 1, 1))


def _autoregressive(transform, conditioner, spec):
    """Swift ``makeAutoregressive``: free parameters for one dimension without context, else a MADE."""
    if spec.event_size == 1 and spec.context_size == 0:
        return b.FreeElementwise(transform, spec.event_shape, 0, spec.dtype)
    network = b.MADE(
        spec.event_size, spec.context_size, conditioner["hiddenSizes"], conditioner["activation"],
        transform.parameter_count, bool(conditioner.get("skipConnections", False)),
        conditioner.get("parameterization", "standard"), _order(conditioner["order"], spec.event_size), spec.dtype,
        int(conditioner.get("residualBlocks", 0)), bool(conditioner.get("contextLayers", False)))
    return b.Autoregressive(transform, network)


def _coupling(transform, mask_json, conditioner, spec):
    conditioning = _coupling_mask(mask_json, spec.event_size)
    inputs = sum(conditioning)
    outputs = (spec.event_size - sum(conditioning)) * transform.parameter_count
    blocks = int(conditioner.get("residualBlocks", 0))
    if blocks == 0:
        network = b.MLP([inputs + spec.context_size] + list(conditioner["hiddenSizes"]) + [outputs],
                        conditioner["activation"], spec.dtype)
    elif blocks > 0 and len(conditioner["hiddenSizes"]) == 1:
        network = b.ResidualNet(inputs, spec.context_size, int(conditioner["hiddenSizes"][0]), outputs, blocks,
                                conditioner["activation"], spec.dtype)
    else:
        raise MappingError(f"a residual coupling network needs residualBlocks ≥ 0 and one hidden width, got "
                           f"{blocks} blocks of {conditioner['hiddenSizes']}")
    return b.Coupling(transform, conditioning, network, spec.context_size)


def _invert(bijector):
    bijector.inverted = not bijector.inverted
    return bijector


def _stack(layers, make_layer, spec, reversing=False):
    """Swift ``BijectorPlan.stack``: layers composed, ``Permute(.reversed)`` between them when reversing."""
    layers = int(layers)
    if layers < 1:
        raise MappingError(f"a preset needs at least one layer, got {layers}")
    parts = []
    for i in range(layers):
        if reversing and i > 0:
            parts.append(b.Permute(list(range(spec.event_size))[::-1]))
        parts.append(make_layer(i))
    return b.Compose(parts)


# --- Presets (Presets/MAF.swift, Presets/RealNVP.swift) ---------------------------------------


def _maf(o, spec):
    return _stack(o["layers"], lambda i: _invert(
        _autoregressive(b.AffineTransform(b.AffineScale(o["scale"])), o["conditioner"], spec)), spec, reversing=True)


def _iaf(o, spec):
    return _stack(o["layers"], lambda i: _autoregressive(
        b.AffineTransform(b.AffineScale(o["scale"])), o["conditioner"], spec), spec, reversing=True)


def _nsf(o, spec):
    options = b.SplineTransform.options(o["bins"], o["bound"], _network_logit_scale(o["conditioner"]["hiddenSizes"]))
    return _stack(o["layers"], lambda i: _invert(
        _autoregressive(b.SplineTransform(options), o["conditioner"], spec)), spec, reversing=True)


def _realnvp(o, spec):
    return _stack(o["layers"], lambda i: _coupling(
        b.AffineTransform(b.AffineScale({"exp": {}})), {"alternating": {"parity": i % 2}}, o["conditioner"], spec), spec)


def _nsf_coupling(o, spec):
    options = b.SplineTransform.options(o["bins"], o["bound"], _network_logit_scale(o["conditioner"]["hiddenSizes"]))
    return _stack(o["layers"], lambda i: _coupling(
        b.SplineTransform(options), {"alternating": {"parity": i % 2}}, o["conditioner"], spec), spec)


# --- Single bijectors ------------------------------------------------------------------------


PLANS = {
    # Compositions
    "Compose": lambda o, spec: b.Compose([build(part, spec) for part in o["parts"]]),
    "Invert": lambda o, spec: _invert(build(o["inner"], spec)),
    # Presets
    "MAF": _maf,
    "IAF": _iaf,
    "NSF": _nsf,
    "RealNVP": _realnvp,
    "NSFCoupling": _nsf_coupling,
    # Layers
    "Permute": lambda o, spec: b.Permute(_order(o["order"], spec.event_size)),
    "AffineAutoregressive": lambda o, spec: _autoregressive(
        b.AffineTransform(b.AffineScale(o["scale"])), o["conditioner"], spec),
    "SplineAutoregressive": lambda o, spec: _autoregressive(b.SplineTransform(o["transform"]), o["conditioner"], spec),
    "AffineCoupling": lambda o, spec: _coupling(
        b.AffineTransform(b.AffineScale(o["scale"])), o["mask"], o["conditioner"], spec),
    "AdditiveCoupling": lambda o, spec: _coupling(b.ShiftTransform(), o["mask"], o["conditioner"], spec),
    "SplineCoupling": lambda o, spec: _coupling(b.SplineTransform(o["transform"]), o["mask"], o["conditioner"], spec),
    "Affine": lambda o, spec: b.FreeElementwise(
        b.AffineTransform(b.AffineScale(o["scale"])), spec.event_shape, spec.context_size, spec.dtype),
    "Spline": lambda o, spec: b.FreeElementwise(
        b.SplineTransform(o["transform"]), spec.event_shape, spec.context_size, spec.dtype),
    "LULinear": lambda o, spec: b.LULinear(spec.event_size, spec.dtype),
    "ActNorm": lambda o, spec: b.ActNorm(spec.event_shape, spec.dtype),
    "BatchNorm": lambda o, spec: b.BatchNorm(spec.event_shape, o["momentum"], o["epsilon"], spec.dtype),
}
# With a context, each layer's parameters are shifted by a network of it (flows_torch/conditional.py).
def _sylvester(o, spec):
    variant, d = o.get("variant", "orthogonal"), spec.event_size
    m = (o.get("columns") or d) if variant == "orthogonal" else d
    return conditional.made_conditional(b.Sylvester(variant, d, int(m), int(o.get("reflections") or d), spec.dtype),
                                        o, spec, "Sylvester")


PLANS.update({
    "Planar": lambda o, spec: conditional.made_conditional(
        b.Planar(spec.event_size, spec.dtype, o.get("invertibilityMargin", 0.0)), o, spec, "Planar"),
    "Radial": lambda o, spec: conditional.made_conditional(b.Radial(spec.event_size, spec.dtype), o, spec, "Radial"),
    "Sylvester": _sylvester,
    "ContextEmbedding": lambda o, spec: conditional.embedded(
        build(o["inner"], Spec(spec.event_shape, int(o["features"]), spec.dtype)), o, spec),
    "PlanarFlow": lambda o, spec: _stack(o["layers"], lambda i: build(
        {"type": "Planar", "options": {"invertibilityMargin": o.get("invertibilityMargin", 0.0)}}, spec), spec),
    "RadialFlow": lambda o, spec: _stack(o["layers"], lambda i: build({"type": "Radial"}, spec), spec),
    "SylvesterFlow": lambda o, spec: _stack(o["layers"], lambda i: _sylvester({"variant": o["variant"]}, spec), spec,
                                            reversing=o["variant"] == "triangular"),
})
PLANS["Householder"] = lambda o, spec: conditional.made_conditional(b.Householder(
    spec.event_size if o.get("reflections") is None else int(o["reflections"]), spec.event_size, spec.dtype),
    o, spec, "Householder")
PLANS["Bounds"] = lambda o, spec: b.Bounds(o["lower"], o["upper"], spec.event_size)
for _name in ("Exp", "Sigmoid", "Tanh", "Softplus", "ELU", "LeakyReLU", "Power", "AffineFixed"):
    PLANS[_name] = lambda o, spec, _name=_name: b.Elementwise(_name, o)

# --- Linear-rational and circular splines (splines.py; Presets/MAF.swift, RealNVP.swift, NCSF.swift)


def _lrs_options(o):
    return s.LinearRationalSplineTransform.options(o["bins"], o["bound"], _network_logit_scale(o["conditioner"]["hiddenSizes"]))


def _circular_shift(o, spec):
    """Swift ``CircularShift``: ``{"fixed": {"_0": angle}}`` or ``{"learned": {}}`` (free angles)."""
    (kind, value), = o["shift"].items()
    if kind == "fixed":
        return s.FixedCircularShift(value["_0"])
    if kind == "learned":
        return b.FreeElementwise(s.CircularShiftTransform(), spec.event_shape, spec.context_size, spec.dtype)
    raise MappingError(f"circular shift '{kind}' is not mapped (fixed, learned)")


def _ncsf(o, spec):
    """Swift ``NCSF``: inverted circular autoregressive splines (bound π), a half turn before every
    one but the first, reversed orders between them."""
    options = dict(s.SplineTransform.options(o["bins"], math.pi, _network_logit_scale(o["conditioner"]["hiddenSizes"])),
                   boundary="circular")

    def layer(i):
        spline = _invert(_autoregressive(s.SplineTransform(options), o["conditioner"], spec))
        return spline if i == 0 else b.Compose([s.FixedCircularShift(math.pi), spline])
    return _stack(o["layers"], layer, spec, reversing=True)


PLANS.update({
    "LinearRationalSpline": lambda o, spec: b.FreeElementwise(
        s.LinearRationalSplineTransform(o["transform"]), spec.event_shape, spec.context_size, spec.dtype),
    "LinearRationalSplineAutoregressive": lambda o, spec: _autoregressive(
        s.LinearRationalSplineTransform(o["transform"]), o["conditioner"], spec),
    "LinearRationalSplineCoupling": lambda o, spec: _coupling(
        s.LinearRationalSplineTransform(o["transform"]), o["mask"], o["conditioner"], spec),
    "LRS": lambda o, spec: _stack(o["layers"], lambda i: _invert(
        _autoregressive(s.LinearRationalSplineTransform(_lrs_options(o)), o["conditioner"], spec)), spec, reversing=True),
    "LRSCoupling": lambda o, spec: _stack(o["layers"], lambda i: _coupling(
        s.LinearRationalSplineTransform(_lrs_options(o)), {"alternating": {"parity": i % 2}}, o["conditioner"], spec), spec),
    "CircularShift": _circular_shift,
    "NCSF": _ncsf,
})

# Monotonic neural transformers (Bijectors/DeepSigmoidal.swift, UnconstrainedMonotonic.swift,
# SumOfSquaresPolynomial.swift, BernsteinPolynomial.swift; presets in Presets/NeuralAutoregressive.swift):
# (plan stem, preset, transform from its options, preset options → transform options).
_MONOTONIC = [
    ("DeepSigmoidal", "NAF", lambda t: m.DeepSigmoidalTransform(t.get("units", 16)),
     lambda o: {"units": o.get("units", 16)}),
    ("UnconstrainedMonotonic", "UNAF", lambda t: m.UnconstrainedMonotonicTransform(t.get("hiddenUnits", 8), t.get("nodes", 32)),
     lambda o: {"hiddenUnits": o.get("hiddenUnits", 8), "nodes": o.get("nodes", 32)}),
    ("SumOfSquaresPolynomial", "SOSPF",
     lambda t: m.SumOfSquaresPolynomialTransform(t.get("polynomials", 3), t.get("degree", 4), t.get("bound")),
     lambda o: {"polynomials": o.get("polynomials", 3), "degree": o.get("degree", 4), "bound": o.get("bound")}),
    ("BernsteinPolynomial", "BPF", lambda t: m.BernsteinPolynomialTransform(t.get("degree", 16), t.get("bound", 5.0)),
     lambda o: {"degree": o.get("degree", 16), "bound": o.get("bound", 5.0)}),
]
for _stem, _preset, _make, _preset_transform in _MONOTONIC:
    PLANS[_stem] = lambda o, spec, _make=_make: b.FreeElementwise(
        _make(o["transform"]), spec.event_shape, spec.context_size, spec.dtype)
    PLANS[_stem + "Autoregressive"] = lambda o, spec, _make=_make: _autoregressive(_make(o["transform"]), o["conditioner"], spec)
    # The preset: MAF-direction layers (each inverted) with reversed orders between them.
    PLANS[_preset] = lambda o, spec, _make=_make, _options=_preset_transform: _stack(o["layers"], lambda i: _invert(
        _autoregressive(_make(_options(o)), o["conditioner"], spec)), spec, reversing=True)

# Plans the Swift library has and this package refuses, with the reason and what to use instead.
UNMAPPED = {}
