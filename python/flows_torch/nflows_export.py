"""nflows flows as model files of the Swift library.

Mapped exactly:

- ``MaskedPiecewiseRationalQuadraticAutoregressiveTransform`` with ``tails="linear"``,
  feedforward or residual blocks (see below), no batch norm, no dropout, with or without a
  context (see below) →
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
- MADEs with ``context_features`` (either masked transform, feedforward or residual): nflows adds
  act(W_c·c + b_c) to the first layer's product and, in each residual block, W_c,k·c + b_c,k to
  the block's first product (its feedforward blocks ignore the context), with the hidden degrees
  of a MADE without a context. That is our MADE's ``contextLayers`` option: tensors
  ``conditioner.context_layers.<k>``, each row at the unit of ours its unit was placed in.
- Residual MADEs (``use_residual_blocks=True``, nflows' default; ``num_blocks`` ≥ 1) in either
  masked transform → the conditioner ``{"hiddenSizes": [H], "residualBlocks": n}``, our MADE's
  residual option: h₀ = W₀x + b₀ (no activation), per ``MaskedResidualBlock``
  h ← h + W₂ act(W₁ act(h) + b₁) + b₂ (both masked with the units' own degrees), and the final
  layer on h. Its layers are ``layers.0``, ``layers.2k+1``/``layers.2k+2`` (block k) and
  ``layers.2n+1``; every layer's units are placed in the same slots (checked), since the blocks
  add to the stream unit by unit.
- ``AffineCouplingTransform``, ``AdditiveCouplingTransform`` and
  ``PiecewiseRationalQuadraticCouplingTransform`` (``tails="linear"``, no
  ``apply_unconditional_transform``) whose ``transform_net`` is nflows' ``ResidualNet`` (with or
  without ``context_features``; any ``num_blocks`` and ``hidden_features``; no batch norm, no
  dropout) → ``Invert(AffineCoupling | AdditiveCoupling | SplineCoupling)`` with the mask given
  (nflows' mask ≤ 0 marks the kept features, ours ``true``) and the conditioner
  ``{"hiddenSizes": [H], "residualBlocks": n}``, our ``ResidualNet`` under nflows' own tensor
  names (``initial_layer``, ``blocks.<b>.linear_layers.{0,1}``, ``blocks.<b>.context_layer``,
  ``final_layer``): h = W₀[x, c] + b₀; per block t = W₂ act(W₁ act(h) + b₁) + b₂, gated by
  sigmoid(W_c c + b_c) (nflows' GLU) with a context, h ← h + t; y = W_f h + b_f. The affine
  scale is σ = sigmoid(s + 2) + 10⁻³ (``AffineScale.sigmoidWithFloor``, probed from
  ``_scale_and_shift``); nflows lays the outputs out as (all shifts, all scales), ours (μ, s) per
  feature, so the final layer's rows are interleaved. The spline's widths and heights are divided
  by √hidden_features (nflows does so for nets with that attribute): ``logitScale`` 1/√H. All
  coupling transforms of a flow take the same context (our flows have one context size).
- ``Permutation``, ``ReversePermutation``, ``RandomPermutation`` (dim 1): z = x[..., π] →
  ``Permute(given: argsort π)``.
- ``CompositeTransform`` (nested), bases over vectors: ``StandardNormal`` → our ``Normal``;
  ``DiagonalNormal`` (trained ``mean_``, ``log_std_``) → our trained ``DiagonalNormal`` (``loc``,
  ``log_scale``: the same log σ); ``ConditionalDiagonalNormal`` ([μ, log σ] = encoder(c), split
  in halves as ours) → our ``ConditionalDiagonalNormal`` when the encoder is nflows' ``MLP``, a
  ``Sequential`` of ``Linear`` layers and one activation, a ``Linear`` layer, or none (the
  identity: one identity layer of ours).
- A flow's ``embedding_net`` e (nflows' ``MLP``, a ``Sequential`` of ``Linear`` layers with one
  activation between them, or a ``Linear`` layer): nflows computes
  log p(y | c) = log p_base(f⁻¹(y; e(c)) | e(c)) + log|det ∂f⁻¹(y; e(c))/∂y| → ``ContextEmbedding``
  around the Compose of the transforms (tensors ``embedding.layers.<l>``), the flow's context the
  raw c. Our conditional base sees the raw context, so a ``ConditionalDiagonalNormal``'s network
  becomes encoder ∘ e: e's output layer and the encoder's first layer, with no activation between
  them, fuse into one (``_through_embedding``).

nflows transforms map data to noise, first transform first; our parts are written in reverse
order (autoregressive and coupling layers inverted).

Not mapped, with the reason in the error: residual MADEs without blocks, batch norm inside MADE blocks or ResidualNet blocks, dropout
(p > 0) in either, nflows' ``MLP``
as a coupling net (its ``forward(inputs)`` takes no context, so nflows' coupling transforms,
which call ``transform_net(inputs, context)``, cannot run it), other transform nets, splines
without tails (defined on [0, 1], ours on [−B, B]), unconditional transforms of the kept
features, embedding nets other than those above, and any other transform or base.
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
    """The MADE of a masked transform, its activation's name and its layers (weight, bias, mask)
    in order: initial, the blocks' (one, or two for a residual block), final. A MADE with
    ``context_features`` has ``context_layer`` (and, residual, one per block): see ``_place``."""
    made = t.autoregressive_net
    blocks = list(made.blocks)
    if made.use_residual_blocks:
        if any(block.use_batch_norm for block in blocks):
            raise MappingError(f"{what}: batch norm inside MADE blocks is not mapped")
        if not blocks:
            raise MappingError(f"{what}: a residual MADE without blocks (num_blocks=0) is not mapped")
        block_linears = [lin for block in blocks for lin in block.linear_layers]
    else:
        if any(block.batch_norm is not None for block in blocks):
            raise MappingError(f"{what}: batch norm inside MADE blocks is not mapped")
        block_linears = [block.linear for block in blocks]
    if any(block.dropout.p > 0 for block in blocks):
        raise MappingError(f"{what}: MADE blocks with dropout (p > 0) train differently from ours; "
                           "build it with dropout_probability=0")
    activation = _ACTIVATIONS.get(made.activation)
    if activation is None:
        raise MappingError(f"{what}: activation {made.activation!r} is not mapped")
    linears = [made.initial_layer] + block_linears + [made.final_layer]
    return made, activation, [(lin.weight, lin.bias, lin.mask) for lin in linears]


def context_size(made):
    """C of an nflows MADE built with ``context_features`` (0 without)."""
    layer = getattr(made, "context_layer", None)
    return int(layer.in_features) if layer is not None else 0


def _place(made, layers, d, p):
    """Our MADE's conditioner plan and tensors for nflows' masked layers (residual or not).

    With ``context_features``, nflows adds act(W_c·c + b_c) to the first layer's product and,
    in each residual block, W_c,k·c + b_c,k to the block's first product (its feedforward blocks
    ignore the context); its hidden degrees are those without a context. That is our
    ``contextLayers`` MADE: the units are placed as without a context, and each context layer's
    rows go to the units of ours their units landed in (zero rows elsewhere, whose units no
    weight reads)."""
    residual = made.use_residual_blocks
    widths, tensors, slots = place_masked_network(layers, d, 0, list(range(d)), p, shared_units=residual, return_slots=True)
    tensors["conditioner.order"] = torch.arange(d, dtype=torch.float64)
    plan = {"activation": None, "hiddenSizes": widths[:1] if residual else widths, "order": {"natural": {}},
            "parameterization": "standard", "skipConnections": False}
    if residual:
        plan["residualBlocks"] = len(made.blocks)
    if context_size(made):
        context_linears = [made.context_layer] + ([block.context_layer for block in made.blocks] if residual else [])
        rows = torch.tensor(slots[0])
        for k, linear in enumerate(context_linears):
            weight = torch.zeros(widths[0], linear.in_features, dtype=linear.weight.dtype)
            bias = torch.zeros(widths[0], dtype=linear.weight.dtype)
            weight[rows] = linear.weight.detach()
            bias[rows] = linear.bias.detach()
            tensors[f"conditioner.context_layers.{k}.weight"] = weight
            tensors[f"conditioner.context_layers.{k}.bias"] = bias
        plan["contextLayers"] = True
    return plan, tensors


def _spline_autoregressive(t, d, dtype, what):
    if t.tails != "linear":
        raise MappingError(f"{what}: tails={t.tails!r} (a spline on [0, 1]) is not mapped; only tails='linear'")
    made, activation, layers = _check_made(t, what)
    bins = t.num_bins
    conditioner, tensors = _place(made, layers, d, 3 * bins - 1)
    conditioner["activation"] = activation
    hidden = getattr(made, "hidden_features", None)
    logit_scale = 1.0 if hidden is None else 1 / float(hidden) ** 0.5
    plan = {"type": "Invert", "options": {"inner": {"type": "SplineAutoregressive", "options": {
        "transform": {"bins": bins, "bound": float(t.tail_bound), "minimumBinWidth": float(t.min_bin_width),
                      "minimumBinHeight": float(t.min_bin_height), "minimumDerivative": float(t.min_derivative),
                      "logitScale": logit_scale},
        "conditioner": conditioner}}}}
    return plan, tensors


def _affine_scale(sigma_of, epsilon, what):
    """The AffineScale (JSON) of an nflows affine transform, read from what its own code does with
    known raw values s: ``sigma_of(s)`` returns its σ(s). softplus(s) + ε (nflows 0.14's masked
    affine transform), sigmoid(s + 2) + ε (its affine coupling transform and earlier masked
    releases), else refused."""
    s = torch.linspace(-6, 6, 25, dtype=torch.float64)
    with torch.no_grad():
        sigma = sigma_of(s).reshape(-1)
    candidates = [
        ({"softplus": {"floor": epsilon}}, torch.nn.functional.softplus(s) + epsilon),
        ({"sigmoidWithFloor": {"bias": 2.0, "floor": epsilon}}, torch.sigmoid(s + 2) + epsilon),
    ]
    for scale, expected in candidates:
        if torch.allclose(sigma, expected, rtol=1e-12, atol=1e-15):
            return scale
    raise MappingError(f"{what}: its scale σ(s) is neither softplus(s) + {epsilon} nor sigmoid(s + 2) + {epsilon} "
                       "(a changed nflows release?); no AffineScale of ours is known to match it")


def _masked_affine_sigma(t):
    """σ(s) of a masked affine transform, from its ``_elementwise_forward`` on (s, μ = 0) per feature."""
    def sigma_of(s):
        params = torch.stack([s, torch.zeros_like(s)], dim=-1).reshape(1, -1)
        saved = t.features
        try:
            t.features = s.numel()
            return t._elementwise_forward(torch.ones(1, s.numel(), dtype=s.dtype), params)[0]
        finally:
            t.features = saved
    return sigma_of


def _affine_autoregressive(t, d, dtype, what):
    made, activation, layers = _check_made(t, what)
    scale = _affine_scale(_masked_affine_sigma(t), float(getattr(t, "_epsilon", 1e-3)), what)
    # nflows' outputs are (s, μ) per feature, ours (μ, s): swap each pair of output units.
    swap = torch.arange(2 * d).reshape(d, 2).flip(-1).reshape(-1)
    weight, bias, mask = layers[-1]
    layers[-1] = (weight[swap], None if bias is None else bias[swap], mask[swap])
    conditioner, tensors = _place(made, layers, d, 2)
    conditioner["activation"] = activation
    plan = {"type": "Invert", "options": {"inner": {"type": "AffineAutoregressive", "options": {
        "scale": scale, "conditioner": conditioner}}}}
    return plan, tensors


def _residual_net(net, inputs, what):
    """(conditioner JSON, tensors under ``conditioner.``, context size) of an nflows ``ResidualNet``
    (its module names are ours), refusing what ours does not compute."""
    from nflows.nn.nets.mlp import MLP
    from nflows.nn.nets.resnet import ResidualNet

    if isinstance(net, MLP):
        raise MappingError(f"{what}: its transform_net is nflows' MLP, whose forward(inputs) takes no context; "
                           "nflows' coupling transforms call transform_net(inputs, context), so no nflows flow "
                           "runs it (use ResidualNet)")
    if type(net) is not ResidualNet:
        raise MappingError(f"{what}: its transform_net {type(net).__name__} is not mapped (nflows' ResidualNet is)")
    context = net.context_features or 0
    blocks = list(net.blocks)
    if any(block.use_batch_norm for block in blocks):
        raise MappingError(f"{what}: batch norm inside ResidualNet blocks (use_batch_norm=True) is not mapped")
    if any(block.dropout.p > 0 for block in blocks):
        raise MappingError(f"{what}: ResidualNet blocks with dropout (p > 0) train differently from ours; "
                           "build it with dropout_probability=0")
    activation = _ACTIVATIONS.get(blocks[0].activation) if blocks else "relu"
    if activation is None or any(_ACTIVATIONS.get(block.activation) != activation for block in blocks):
        raise MappingError(f"{what}: activation {blocks[0].activation!r} is not mapped")
    if net.initial_layer.in_features != inputs + context:
        raise MappingError(f"{what}: its ResidualNet takes {net.initial_layer.in_features} inputs, not the "
                           f"{inputs} conditioning values and {context} context values")
    tensors = {f"conditioner.{name}": value.detach().clone() for name, value in net.state_dict().items()}
    conditioner = {"activation": activation, "hiddenSizes": [int(net.hidden_features)], "residualBlocks": len(blocks)}
    return conditioner, tensors, context


def _coupling(t, what):
    """An nflows affine, additive or rational-quadratic coupling transform with a ResidualNet →
    ``Invert(AffineCoupling | AdditiveCoupling | SplineCoupling)`` with the mask given."""
    from nflows.transforms.coupling import (AdditiveCouplingTransform, AffineCouplingTransform,
                                            PiecewiseRationalQuadraticCouplingTransform)

    if t.unconditional_transform is not None:
        raise MappingError(f"{what}: apply_unconditional_transform=True (an elementwise spline of the kept "
                           "features) is not mapped")
    kept, changed = t.identity_features.tolist(), t.transform_features.tolist()
    n = len(changed)
    conditioner, tensors, context = _residual_net(t.transform_net, len(kept), what)
    mask = {"given": {"_0": [i in kept for i in range(t.features)]}}
    if type(t) is AdditiveCouplingTransform:
        inner = {"type": "AdditiveCoupling", "options": {"mask": mask, "conditioner": conditioner}}
    elif type(t) is AffineCouplingTransform:
        def sigma_of(s):   # one row per value, s in the first changed feature's scale slot
            params = torch.zeros(s.numel(), 2 * n, dtype=s.dtype)
            params[:, n] = s
            return t._scale_and_shift(params)[0][:, 0]
        scale = _affine_scale(sigma_of, 1e-3, what)
        # nflows' outputs are (μ for every changed feature, then s for every one), ours (μ, s) per feature.
        order = torch.arange(2 * n).reshape(2, n).t().reshape(-1)
        for name in ("conditioner.final_layer.weight", "conditioner.final_layer.bias"):
            tensors[name] = tensors[name][order]
        inner = {"type": "AffineCoupling", "options": {"mask": mask, "conditioner": conditioner, "scale": scale}}
    elif type(t) is PiecewiseRationalQuadraticCouplingTransform:
        if t.tails != "linear":
            raise MappingError(f"{what}: tails={t.tails!r} (a spline on [0, 1]) is not mapped; only tails='linear'")
        # Widths and heights are divided by √hidden_features (ResidualNet has the attribute).
        logit_scale = 1 / float(t.transform_net.hidden_features) ** 0.5
        inner = {"type": "SplineCoupling", "options": {"mask": mask, "conditioner": conditioner, "transform": {
            "bins": t.num_bins, "bound": float(t.tail_bound), "minimumBinWidth": float(t.min_bin_width),
            "minimumBinHeight": float(t.min_bin_height), "minimumDerivative": float(t.min_derivative),
            "logitScale": logit_scale}}}
    else:
        raise MappingError(f"{what}: coupling transforms other than affine, additive and rational-quadratic "
                           "(with tails='linear') are not mapped")
    return {"type": "Invert", "options": {"inner": inner}}, tensors, context


def _dense(network, what, role):
    """(linear layers, activation name) of a dense network we can express as our perceptron
    (activation after every layer but the last): nflows' ``MLP`` (no ``activate_output``), a
    ``torch.nn.Sequential`` alternating ``Linear`` layers and one activation module and ending
    with a ``Linear`` layer, or one ``Linear`` layer."""
    from torch import nn
    from nflows.nn.nets.mlp import MLP

    def module_name(m):
        if type(m) is nn.ELU and m.alpha == 1.0:
            return "elu"
        if type(m) is nn.LeakyReLU and m.negative_slope == 0.01:
            return "leakyRelu"
        if type(m) is nn.Softplus and m.beta == 1.0:
            return "softplus"
        return {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}.get(type(m))

    if isinstance(network, MLP):
        if network._activate_output:
            raise MappingError(f"{what}: an MLP {role} with activate_output=True is not mapped")
        activation = _ACTIVATIONS.get(network._activation)
        if activation is None:
            raise MappingError(f"{what}: the {role}'s activation {network._activation!r} is not mapped")
        if len(network._in_shape) != 1:
            raise MappingError(f"{what}: a {role} for contexts of shape {tuple(network._in_shape)} is not mapped (vectors are)")
        linears = [network._input_layer, *network._hidden_layers, network._output_layer]
    elif type(network) is nn.Linear:
        linears, activation = [network], "relu"
    elif type(network) is nn.Sequential:
        linears = [m for m in network if type(m) is nn.Linear]
        names = {module_name(m) for m in network if type(m) is not nn.Linear}
        layout_ok = (len(linears) >= 1 and len(network) == 2 * len(linears) - 1
                     and all(type(network[i]) is nn.Linear for i in range(0, len(network), 2)))
        if not layout_ok or None in names or len(names) > 1:
            raise MappingError(f"{what}: a Sequential {role} must alternate Linear layers and one activation (ReLU, Tanh, "
                               f"Sigmoid, Softplus, ELU(1), LeakyReLU(0.01)) and end with a Linear layer, got {network}")
        activation = names.pop() if names else "relu"
    else:
        raise MappingError(f"{what}: its {role} {type(network).__name__} is not mapped (nflows' MLP, a Sequential of Linear "
                           "layers and activations, or a Linear layer are)")
    if any(lin.bias is None for lin in linears):
        raise MappingError(f"{what}: {role} layers without a bias are not mapped")
    return linears, activation


def _layer_tensors(linears, prefix):
    tensors = {}
    for l, lin in enumerate(linears):
        tensors[f"{prefix}layers.{l}.weight"] = lin.weight.detach()
        tensors[f"{prefix}layers.{l}.bias"] = lin.bias.detach()
    return tensors


def _embedding(network):
    """The ``ContextEmbedding`` options (without ``inner``) and tensors (``embedding.…``) of an nflows
    flow's ``embedding_net``, and its linear layers and activation."""
    linears, activation = _dense(network, "the nflows flow", "embedding_net")
    options = {"features": int(linears[-1].out_features),
               "network": {"activation": activation, "hiddenSizes": [int(lin.out_features) for lin in linears[:-1]]}}
    return options, _layer_tensors(linears, "embedding."), linears, activation


def _through_embedding(embedding, linears, activation, what):
    """The layers and activation of encoder ∘ embedding as one perceptron: the embedding's output
    layer and the encoder's first layer (no activation between them) become one layer,
    W = W_enc·W_emb, b = W_enc·b_emb + b_enc (in float64); no encoder layers: the embedding's."""
    embedded_linears, embedded_activation = embedding
    if not linears:
        return embedded_linears, embedded_activation
    if len(embedded_linears) > 1 and len(linears) > 1 and embedded_activation != activation:
        raise MappingError(f"{what}: its context encoder ({activation}) after the embedding_net ({embedded_activation}) "
                           "is no perceptron of one activation")
    last, first = embedded_linears[-1], linears[0]
    fused = torch.nn.Linear(last.in_features, first.out_features, dtype=first.weight.dtype)
    with torch.no_grad():
        w_enc, w_emb = first.weight.double(), last.weight.double()
        fused.weight.copy_(w_enc @ w_emb)
        fused.bias.copy_(w_enc @ last.bias.double() + first.bias.double())
    return embedded_linears[:-1] + [fused] + linears[1:], embedded_activation if len(embedded_linears) > 1 else activation


def _base(distribution, embedding=None):
    """Our base for an nflows flow's base over vectors, and the context size it takes in nflows:
    ``StandardNormal`` → ``Normal``;
    ``DiagonalNormal`` (trained mean and log σ) → our ``DiagonalNormal``; ``ConditionalDiagonalNormal``
    ([μ, log σ] = encoder(c)) → our ``ConditionalDiagonalNormal`` with the encoder's layers (no
    encoder: the context is [μ, log σ] itself, our network one identity layer). With an
    ``embedding_net`` (``embedding``: its layers and activation) nflows' base sees the embedded
    context and ours the raw one, so our network is encoder ∘ embedding (``_through_embedding``)."""
    from nflows.distributions.normal import ConditionalDiagonalNormal, DiagonalNormal, StandardNormal

    from . import bases

    shape = getattr(distribution, "_shape", None)
    name = type(distribution).__name__
    if type(distribution) not in (StandardNormal, DiagonalNormal, ConditionalDiagonalNormal):
        raise MappingError(f"the nflows base {name} is not mapped (StandardNormal, DiagonalNormal and "
                           "ConditionalDiagonalNormal over vectors are)")
    if shape is None or len(shape) != 1:
        raise MappingError(f"the nflows base {name} has shape {tuple(shape or ())}; only vectors are mapped")
    d = int(shape[0])
    parameters = list(distribution.parameters())
    dtype = parameters[0].dtype if parameters else torch.float32
    if type(distribution) is StandardNormal:
        return bases.Normal(torch.zeros(d, dtype=dtype), torch.ones(d, dtype=dtype), 1), 0
    if type(distribution) is DiagonalNormal:
        return bases.DiagonalNormal(distribution.mean_.detach().reshape(d), distribution.log_std_.detach().reshape(d), 1), 0
    what = f"the nflows base {name}"
    encoder = distribution._context_encoder
    if isinstance(encoder, torch.nn.Module):
        linears, activation = _dense(encoder, what, "context encoder")
        if linears[-1].out_features != 2 * d:
            raise MappingError(f"{what}: its context encoder gives {linears[-1].out_features} values, not 2 × {d}")
        context = linears[0].in_features
    else:
        probe = torch.randn(3, 2 * d, dtype=torch.float64)
        if not torch.equal(encoder(probe), probe):
            raise MappingError(f"{what}: its context encoder {encoder!r} is neither a mapped module nor the identity")
        identity = torch.nn.Linear(2 * d, 2 * d, dtype=dtype)
        with torch.no_grad():
            identity.weight.copy_(torch.eye(2 * d, dtype=dtype))
            identity.bias.zero_()
        linears, activation, context = ([] if embedding else [identity]), "relu", 2 * d
    if embedding:
        if embedding[0][-1].out_features != context:
            raise MappingError(f"{what}: it takes a context of {context} values, the embedding_net gives "
                               f"{embedding[0][-1].out_features}")
        linears, activation = _through_embedding(embedding, linears, activation, what)
    tensors = _layer_tensors(linears, "")
    dtype = tensors["layers.0.weight"].dtype
    base = bases.ConditionalDiagonalNormal(d, linears[0].in_features, [lin.out_features for lin in linears[:-1]], activation, dtype)
    with torch.no_grad():
        base.network.load_state_dict(tensors)
    return base, context


def to_flow(nflow):
    """The :class:`Flow` that computes what the nflows flow computes."""
    from nflows.distributions.normal import StandardNormal
    from nflows.transforms.autoregressive import (MaskedAffineAutoregressiveTransform,
                                                  MaskedPiecewiseRationalQuadraticAutoregressiveTransform)
    from nflows.transforms.coupling import CouplingTransform
    from nflows.transforms.permutations import Permutation

    if not hasattr(nflow, "_transform") or not hasattr(nflow, "_distribution"):
        raise MappingError(f"{type(nflow).__name__} is not an nflows Flow")
    embedding = None
    if not isinstance(nflow._embedding_net, torch.nn.Identity):
        embedding = _embedding(nflow._embedding_net)
    base, base_context = _base(nflow._distribution, embedding and embedding[2:])
    d = base.event_size
    parts = _flatten(nflow._transform)
    dtype = next((p.dtype for p in nflow.parameters()), torch.float32)
    plans, states, contexts = [], [], set()
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
        elif isinstance(t, CouplingTransform):
            plan, tensors, context = _coupling(t, what)
            plans.append(plan)
            states.append(tensors)
            contexts.add(context)
        else:
            raise MappingError(f"{what} is not mapped (masked affine and rational-quadratic MADE transforms, "
                               "affine, additive and rational-quadratic coupling transforms and permutations are)")
        if not isinstance(t, CouplingTransform) and not isinstance(t, Permutation):
            contexts.add(context_size(t.autoregressive_net))
    if base_context:   # nflows passes the base's context to every transform as well
        contexts.add(base_context)
    if len(contexts) > 1:
        raise MappingError(f"the nflows flow's transforms (and base) take contexts of different sizes {sorted(contexts)}; "
                           "ours share one")
    context = max(contexts, default=0)
    if base.dtype != dtype:
        base = base.to(dtype)
        base.dtype = dtype
    if embedding is None:
        return Flow.from_transforms(plans, states, d, dtype, "the nflows flow", context_size=context, base=base)
    options, tensors, linears, _ = embedding
    if context != options["features"]:
        raise MappingError(f"the nflows flow's embedding_net gives {options['features']} values, but its transforms "
                           f"take a context of {context}" if context else
                           "the nflows flow has an embedding_net, but none of its transforms takes a context")
    return Flow.from_transforms(plans, states, d, dtype, "the nflows flow", context_size=linears[0].in_features, base=base,
                                embedding=(options, tensors))


def save_nflows(nflow, path):
    """Writes an nflows flow as a model file (see the module docstring for what is mapped)."""
    flow = to_flow(nflow)
    save_flow(flow, path)
    return flow
