"""nflows flows as model files of the Swift library.

Mapped exactly:

- ``MaskedPiecewiseRationalQuadraticAutoregressiveTransform`` with ``tails="linear"``,
  feedforward blocks (``use_residual_blocks=False``), no batch norm and no context →
  ``Invert(SplineAutoregressive)``. nflows' spline is ours: widths softmax(logits)·(1 − K·m) + m,
  derivatives m_d + softplus(·), 1 at ±B (its padding constant log(e^{1−m_d} − 1)), identity
  outside [−B, B]; the logits are not rescaled (nflows divides by √hidden_features only for
  nets with that attribute, which its MADE lacks), so the logit scale is 1. The MADE is placed
  unit by unit as for zuko (``place_masked_network``); nflows' degrees (1…D−1 cycled) are ours
  unsorted, so the widths stay the same when they are multiples of D − 1 (else they round up).
- ``MaskedAffineAutoregressiveTransform`` (same MADE conditions) → ``Invert(AffineAutoregressive)``
  with ``AffineScale.softplus(floor: 1e-3)``: nflows 0.14 computes σ = softplus(s) + 10⁻³ from
  the MADE's outputs (s, μ) per feature (its ``sigmoid(s + 2) + 1e-3`` line is commented out);
  our outputs are (μ, s), so each pair of output units is swapped. An nflows release that still
  used the sigmoid maps to ``sigmoidWithFloor(bias: 2, floor: 1e-3)``: the scale is read from
  the transform's own code path (``_elementwise_forward`` is probed on known values), never
  assumed.
- ``Permutation``, ``ReversePermutation``, ``RandomPermutation`` (dim 1): z = x[..., π] →
  ``Permute(given: argsort π)``.
- ``CompositeTransform`` (nested), base ``StandardNormal``.

nflows transforms map data to noise, first transform first; our parts are written in reverse
order (autoregressive layers inverted).

Not mapped, with the reason in the error: ``AffineCouplingTransform`` and other coupling
transforms (their networks, ResidualNet or user modules, are not ours; the scale itself,
σ = sigmoid(s + 2) + 10⁻³, is ``AffineScale.sigmoidWithFloor``), residual MADEs (``use_residual_blocks=True``, nflows' default: ours has no residual
connections), MADEs with a context (nflows adds activation(W_c c + b_c) before the first
activation: a nested activation ours does not have), batch norm inside MADE blocks, splines
without tails (defined on [0, 1], ours on [−B, B]), coupling transforms (their networks,
ResidualNet or user modules, are not ours), and any other transform or base.
"""


import torch
import torch.nn.functional as F

from .bijectors import MappingError
from .flow import Flow, save_flow
from .zuko_export import place_masked_network

_ACTIVATIONS = {F.relu: "relu", torch.relu: "relu", torch.tanh: "tanh", F.tanh: "tanh", torch.sigmoid: "sigmoid",
                F.sigmoid: "sigmoid", F.elu: "elu", F.leaky_relu: "leakyRelu", F.softplus: "softplus"}


def _flatten(transform):
    from nflows.transforms.base import CompositeTransform

    if isinstance(transform, CompositeTransform):
        return [t for inner in transform._transforms for t in _flatten(inner)]
    return [transform]


def _check_made(t, what):
    made = t.autoregressive_net
    if made.use_residual_blocks:
        raise MappingError(f"{what}: residual MADE blocks (use_residual_blocks=True, nflows' default) have no "
                           "counterpart in our MADE; build it with use_residual_blocks=False")
    if hasattr(made, "context_layer"):
        raise MappingError(f"{what}: nflows' MADE adds activation(W_c·c + b_c) to the first layer, a nested "
                           "activation our conditional MADE does not have")
    if any(block.batch_norm is not None for block in made.blocks):
        raise MappingError(f"{what}: batch norm inside MADE blocks is not mapped")
    activation = _ACTIVATIONS.get(made.activation)
    if activation is None:
        raise MappingError(f"{what}: activation {made.activation!r} is not mapped")
    return made, activation


def _conditioner_plan(activation, widths):
    return {"activation": activation, "hiddenSizes": widths, "order": {"natural": {}},
            "parameterization": "standard", "skipConnections": False}


def _spline_autoregressive(t, d, dtype, what):
    if t.tails != "linear":
        raise MappingError(f"{what}: tails={t.tails!r} (a spline on [0, 1]) is not mapped; only tails='linear'")
    made, activation = _check_made(t, what)
    linears = [made.initial_layer] + [block.linear for block in made.blocks] + [made.final_layer]
    bins = t.num_bins
    widths, tensors = place_masked_network(
        [(lin.weight, lin.bias, lin.mask) for lin in linears], d, 0, list(range(d)), 3 * bins - 1)
    tensors["conditioner.order"] = torch.arange(d, dtype=torch.float64)
    hidden = getattr(made, "hidden_features", None)
    logit_scale = 1.0 if hidden is None else 1 / float(hidden) ** 0.5
    plan = {"type": "Invert", "options": {"inner": {"type": "SplineAutoregressive", "options": {
        "transform": {"bins": bins, "bound": float(t.tail_bound), "minimumBinWidth": float(t.min_bin_width),
                      "minimumBinHeight": float(t.min_bin_height), "minimumDerivative": float(t.min_derivative),
                      "logitScale": logit_scale},
        "conditioner": _conditioner_plan(activation, widths)}}}}
    return plan, tensors


def _affine_scale(t, dtype, what):
    """The AffineScale (JSON) of nflows' masked affine transform, read from what its own
    ``_elementwise_forward`` does with known raw values: softplus(s) + 10⁻³ (nflows 0.14) or
    sigmoid(s + 2) + 10⁻³ (earlier releases), else refused."""
    s = torch.linspace(-6, 6, 25, dtype=torch.float64)
    params = torch.stack([s, torch.zeros_like(s)], dim=-1).reshape(1, -1)   # (s, μ = 0) per feature
    ones = torch.ones(1, s.numel(), dtype=torch.float64)
    saved = t.features
    try:
        t.features = s.numel()
        with torch.no_grad():
            sigma = t._elementwise_forward(ones, params)[0].reshape(-1)
    finally:
        t.features = saved
    epsilon = float(getattr(t, "_epsilon", 1e-3))
    candidates = [
        ({"softplus": {"floor": epsilon}}, torch.nn.functional.softplus(s) + epsilon),
        ({"sigmoidWithFloor": {"bias": 2.0, "floor": epsilon}}, torch.sigmoid(s + 2) + epsilon),
    ]
    for scale, expected in candidates:
        if torch.allclose(sigma, expected, rtol=1e-12, atol=1e-15):
            return scale
    raise MappingError(f"{what}: its scale σ(s) is neither softplus(s) + {epsilon} nor sigmoid(s + 2) + {epsilon} "
                       "(a changed nflows release?); no AffineScale of ours is known to match it")


def _affine_autoregressive(t, d, dtype, what):
    made, activation = _check_made(t, what)
    scale = _affine_scale(t, dtype, what)
    linears = [made.initial_layer] + [block.linear for block in made.blocks] + [made.final_layer]
    layers = [(lin.weight, lin.bias, lin.mask) for lin in linears]
    # nflows' outputs are (s, μ) per feature, ours (μ, s): swap each pair of output units.
    swap = torch.arange(2 * d).reshape(d, 2).flip(-1).reshape(-1)
    weight, bias, mask = layers[-1]
    layers[-1] = (weight[swap], None if bias is None else bias[swap], mask[swap])
    widths, tensors = place_masked_network(layers, d, 0, list(range(d)), 2)
    tensors["conditioner.order"] = torch.arange(d, dtype=torch.float64)
    plan = {"type": "Invert", "options": {"inner": {"type": "AffineAutoregressive", "options": {
        "scale": scale, "conditioner": _conditioner_plan(activation, widths)}}}}
    return plan, tensors


def to_flow(nflow):
    """The :class:`Flow` that computes what the nflows flow computes."""
    from nflows.distributions.normal import StandardNormal
    from nflows.transforms.autoregressive import (MaskedAffineAutoregressiveTransform,
                                                  MaskedPiecewiseRationalQuadraticAutoregressiveTransform)
    from nflows.transforms.permutations import Permutation

    if not hasattr(nflow, "_transform") or not hasattr(nflow, "_distribution"):
        raise MappingError(f"{type(nflow).__name__} is not an nflows Flow")
    if not isinstance(nflow._embedding_net, torch.nn.Identity):
        raise MappingError("nflows flows with an embedding net are not mapped")
    base = nflow._distribution
    if not isinstance(base, StandardNormal) or len(base._shape) != 1:
        raise MappingError(f"the nflows base {type(base).__name__} is not mapped (only a StandardNormal over vectors)")
    d = int(base._shape[0])
    parts = _flatten(nflow._transform)
    dtype = next((p.dtype for p in nflow.parameters()), torch.float32)
    plans, states = [], []
    for i, t in enumerate(parts):
        what = f"nflows transform {i} ({type(t).__name__})"
        if isinstance(t, Permutation):
            if t._dim != 1:
                raise MappingError(f"{what}: permutations along dim {t._dim} are not mapped")
            sigma = torch.argsort(t._permutation).tolist()
            plans.append({"type": "Permute", "options": {"order": {"given": {"_0": sigma}}}})
            states.append({"permutation": torch.tensor(sigma, dtype=torch.float64)})
        elif isinstance(t, MaskedPiecewiseRationalQuadraticAutoregressiveTransform):
            plan, tensors = _spline_autoregressive(t, d, dtype, what)
            plans.append(plan)
            states.append(tensors)
        elif isinstance(t, MaskedAffineAutoregressiveTransform):
            plan, tensors = _affine_autoregressive(t, d, dtype, what)
            plans.append(plan)
            states.append(tensors)
        elif type(t).__name__ == "AffineCouplingTransform":
            raise MappingError(f"{what}: coupling transforms are not mapped (their transform_net, a ResidualNet or "
                               "a module of yours, is not our coupling network); masked affine and rational-quadratic "
                               "autoregressive transforms are")
        else:
            raise MappingError(f"{what} is not mapped (masked affine and rational-quadratic MADE transforms and "
                               "permutations are)")
    return Flow.from_transforms(plans, states, d, dtype, "the nflows flow")


def save_nflows(nflow, path):
    """Writes an nflows flow as a model file (see the module docstring for what is mapped)."""
    flow = to_flow(nflow)
    save_flow(flow, path)
    return flow
