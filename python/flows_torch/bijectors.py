"""PyTorch versions of the Swift library's concrete bijectors, formula for formula.

Directions follow the Swift library (and FlowTorch): ``forward`` maps base noise x to data y,
``inverse`` maps data back to noise; both return ``(value, log|det J|)`` with the
log-determinant summed over the event. Events are flattened to vectors ``[..., D]`` by the
flow; parameters keep the shapes (and the dotted names) of the model file.

Every bijector has an ``inverted`` flag set by the ``Invert`` plan: Swift's ``Invert`` is
transparent in the module tree (its inner bijector's members keep their names), so here the
inner module itself is flipped instead of being wrapped. ``ContextEmbedding`` is transparent
too: its network becomes the inner bijector's child ``embedding``, applied to the context before
the inner bijector runs (:mod:`flows_torch.conditional`).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class MappingError(ValueError):
    """A plan, option or tensor this package cannot map exactly."""


# ---------------------------------------------------------------------------------------------
# Base class


class Bijector(nn.Module):
    """A bijector on flattened events [..., D] with an optional context [..., C].

    ``context_shifted`` names the parameters that a context network (child ``context_network``,
    :class:`flows_torch.conditional.ContextParameterNetwork`) shifts in a conditional layer;
    the layer's formulas take them from :meth:`parameters_for`, θ without a network and
    θ + g(c) with one. A child ``embedding`` (``ContextEmbedding``) maps the context first."""

    context_shifted = ()

    def __init__(self):
        super().__init__()
        self.inverted = False

    def _embedded(self, context):
        embedding = self._modules.get("embedding")
        if embedding is None:
            return context
        if context is None:
            raise MappingError(f"this bijector embeds a context: pass a context of size {embedding.layers[0].in_features}")
        return embedding(context)

    def forward(self, x, context=None):  # noqa: D401 - torch's name for the call
        """Noise → data: ``(y, log|det ∂y/∂x|)``."""
        context = self._embedded(context)
        return self._inverse(x, context) if self.inverted else self._forward(x, context)

    def inverse(self, y, context=None):
        """Data → noise: ``(x, log|det ∂x/∂y|)``."""
        context = self._embedded(context)
        return self._forward(y, context) if self.inverted else self._inverse(y, context)

    def parameters_for(self, context):
        """The ``context_shifted`` parameters for ``context``: the layer's own, or, in a
        conditional layer, θ + g(c) with the leading shape of the context."""
        own = [getattr(self, name) for name in self.context_shifted]
        network = self._modules.get("context_network")
        return own if network is None else network.shifted(own, context)

    def after_load(self):
        """Rebuilds what derives from buffers (masks from an order) after a state was loaded."""


class Compose(Bijector):
    """Parts in sequence, children named ``0``, ``1``, … as in the Swift module tree."""

    def __init__(self, parts):
        super().__init__()
        if not parts:
            raise MappingError("Compose needs at least one part")
        for i, part in enumerate(parts):
            self.add_module(str(i), part)

    @property
    def parts(self):
        return [module for name, module in self._modules.items() if name.isdigit()]

    def _forward(self, x, context):
        total = 0
        for part in self.parts:
            x, d = part(x, context)
            total = total + d
        return x, total

    def _inverse(self, y, context):
        total = 0
        for part in reversed(self.parts):
            y, d = part.inverse(y, context)
            total = total + d
        return y, total


class Permute(Bijector):
    """y_k = x_{π(k)}; the permutation is a float64 buffer ``permutation`` as in the file."""

    def __init__(self, permutation):
        super().__init__()
        self.register_buffer("permutation", torch.tensor(permutation, dtype=torch.float64))
        self.after_load()

    def after_load(self):
        p = self.permutation.long()
        self._order = p
        self._inverse_order = torch.argsort(p)

    def _forward(self, x, context):
        return x[..., self._order], x.new_zeros(x.shape[:-1])

    def _inverse(self, y, context):
        return y[..., self._inverse_order], y.new_zeros(y.shape[:-1])


# ---------------------------------------------------------------------------------------------
# Elementwise transforms with raw parameters [..., P] per element


ACTIVATIONS = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "elu": lambda x: F.elu(x, alpha=1.0),
    "leakyRelu": lambda x: F.leaky_relu(x, 0.01),
    "sigmoid": torch.sigmoid,
    "softplus": F.softplus,
}


def activation(name):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise MappingError(f"activation '{name}' is not mapped (known: {', '.join(ACTIVATIONS)})") from None


def soft_clip(s, b):
    """s/(1 + |s|/b) (Swift ``softClip``): zuko's soft clip of log-scales and spline parameters."""
    return s / (1 + s.abs() / b)


class AffineScale:
    """How the raw scale s becomes log σ (Swift ``AffineScale``, AffineTransformKernel.swift):

    - ``exp``: L(s) = s
    - ``softBounded(b)``: L(s) = b·tanh(s/b)
    - ``clamped(min, max)``: L(s) = clamp(s, min, max)
    - ``sigmoid(bias)``: L(s) = log sigmoid(s + bias)
    - ``softClipped(bound: b)``: L(s) = s / (1 + |s|/b)   (zuko's MonotonicAffineTransform, b = −log slope)
    - ``softplus(floor: ε)``: L(s) = log(softplus(s) + ε)   (nflows' MaskedAffineAutoregressiveTransform)
    - ``sigmoidWithFloor(bias, floor: ε)``: L(s) = log(sigmoid(s + bias) + ε)   (nflows' AffineCouplingTransform)

    The floored scales are computed as the Swift code computes them (AffineTransform.swift): softplus
    as max(s, 0) + log1p(e^{−|s|}) (torch's F.softplus returns s itself above 20, 2·10⁻⁹ off),
    and log(sigmoid(t) + ε) as log1p(ε − sigmoid(−t)) for t > 0, where it nears 0.
    """

    def __init__(self, json_value):
        if not isinstance(json_value, dict) or len(json_value) != 1:
            raise MappingError(f"AffineScale {json_value!r} is not one of exp, softBounded, clamped, sigmoid, softClipped, "
                               "softplus, sigmoidWithFloor")
        (kind, options), = json_value.items()
        self.kind, self.options = kind, options or {}
        if kind == "softBounded":
            self.b = float(self.options["_0"])
        elif kind == "softClipped":
            self.b = float(self.options["bound"])
        elif kind == "clamped":
            self.lo, self.hi = float(self.options["min"]), float(self.options["max"])
        elif kind == "sigmoid":
            self.bias = float(self.options["bias"])
        elif kind == "softplus":
            self.floor = float(self.options["floor"])
        elif kind == "sigmoidWithFloor":
            self.bias, self.floor = float(self.options["bias"]), float(self.options["floor"])
        elif kind != "exp":
            raise MappingError(f"AffineScale '{kind}' is not mapped")
        if kind in ("softplus", "sigmoidWithFloor") and not 0 <= self.floor < 1:
            raise MappingError(f"AffineScale {kind}: the floor under σ must lie in [0, 1), got {self.floor}")

    def log_scale(self, s):
        k = self.kind
        if k == "exp":
            return s
        if k == "softBounded":
            return self.b * torch.tanh(s / self.b)
        if k == "softClipped":
            return soft_clip(s, self.b)
        if k == "clamped":
            return s.clamp(self.lo, self.hi)
        if k == "softplus":
            return torch.log(s.clamp(min=0) + torch.log1p(torch.exp(-s.abs())) + self.floor)
        if k == "sigmoidWithFloor":
            # Each branch sees its side only, so the other's overflow cannot reach the gradient.
            t = s + self.bias
            below = torch.log(torch.sigmoid(t.clamp(max=0)) + self.floor)
            above = torch.log1p(self.floor - torch.sigmoid(-t.clamp(min=0)))
            return torch.where(t <= 0, below, above)
        return F.logsigmoid(s + self.bias)

    def identity_raw(self):
        if self.kind == "sigmoid":
            return 30 - self.bias
        if self.kind == "softplus":
            return math.log(math.expm1(1 - self.floor))
        if self.kind == "sigmoidWithFloor":
            return 30 - self.bias if self.floor == 0 else math.log1p(-self.floor) - math.log(self.floor) - self.bias
        return 0.0


class AffineTransform:
    """y = μ + σ·x with raw (μ, s) in the last axis, log σ = L(s); log|dy/dx| = L(s)."""

    parameter_count = 2

    def __init__(self, scale):
        self.scale = scale

    def identity(self):
        return [0.0, self.scale.identity_raw()]

    def forward(self, x, raw):
        log_scale = self.scale.log_scale(raw[..., 1])
        return x * torch.exp(log_scale) + raw[..., 0], log_scale

    def inverse(self, y, raw):
        log_scale = self.scale.log_scale(raw[..., 1])
        return (y - raw[..., 0]) * torch.exp(-log_scale), -log_scale


class ShiftTransform:
    """y = x + t (NICE's additive coupling); log|dy/dx| = 0."""

    parameter_count = 1

    def identity(self):
        return [0.0]

    def forward(self, x, raw):
        return x + raw[..., 0], torch.zeros_like(x)

    def inverse(self, y, raw):
        return y - raw[..., 0], torch.zeros_like(y)


def elementwise_transform(kind, options):
    """The transform of an autoregressive, coupling or free-parameter bijector."""
    if kind == "affine":
        return AffineTransform(AffineScale(options))
    if kind == "shift":
        return ShiftTransform()
    if kind == "spline":
        return SplineTransform(options)
    raise MappingError(f"elementwise transform '{kind}' is not mapped")


# ---------------------------------------------------------------------------------------------
# Conditioners


def hidden_degrees(size, d, context):
    """Swift ``MaskedAutoregressiveNetwork.hiddenDegrees``: 1…D−1 cycled (0…D−1 with a
    context), sorted ascending."""
    if context:
        return sorted(i % d for i in range(size))
    return sorted(i % max(d - 1, 1) + 1 for i in range(size))


class MADE(nn.Module):
    """The masked autoregressive network (DenseAutoregressive.swift).

    Input i has degree = its position in ``order`` + 1, context inputs degree 0; hidden units
    have ``hidden_degrees``; a hidden unit sees units of degree ≤ its own, an output of
    dimension i (outputs laid out [D, P]) sees units of degree < deg(i). The applied weight is
    stored weight ⊙ mask × multiplier (1, or 1/fan-in under ``meanField``). The optional skip
    map (no bias) connects inputs to outputs with the strict mask and multiplier 1/D
    (meanField) or 1. Tensors: ``order`` (float64), ``layers.<l>.weight|bias``, ``skip.weight``.
    With ``residual_blocks`` n > 0 it is nflows' residual MADE of one hidden width (Swift
    ``MADELayout.forwardResidual``): layer 0 without activation, blocks of layers 2k + 1 and
    2k + 2 adding W₂ act(W₁ act(h) + b₁) + b₂ to h, and the output layer on h.
    With ``context_layers`` (Swift ``DenseAutoregressive.contextLayers``, nflows'
    ``MADE(context_features)``) the context is no input: ``context_layers.0`` adds
    act(W_c·c + b_c) to the first layer's pre-activation and ``context_layers.k+1`` adds
    W_c,k·c + b_c,k to residual block k's first layer's; hidden degrees are those without a context.
    """

    def __init__(self, d, context_size, hidden_sizes, activation_name, outputs_per_dimension, skip,
                 parameterization, order, dtype, residual_blocks=0, context_layers=False):
        super().__init__()
        if d < 1 or not hidden_sizes or min(hidden_sizes) < 1:
            raise MappingError(f"DenseAutoregressive needs D ≥ 1 and hidden layers, got D = {d}, hidden {hidden_sizes}")
        if residual_blocks < 0 or (residual_blocks > 0 and len(hidden_sizes) != 1):
            raise MappingError(f"a residual MADE needs residualBlocks ≥ 0 and one hidden width, got {residual_blocks} "
                               f"blocks of {hidden_sizes}")
        # A residual MADE's 2n + 1 hidden layers share one width (and the units' degrees).
        self.residual_blocks = residual_blocks
        hidden_sizes = list(hidden_sizes) * (2 * residual_blocks + 1)
        if parameterization not in ("standard", "meanField"):
            raise MappingError(f"weight parameterization '{parameterization}' is not mapped")
        self.d, self.context_size, self.p = d, context_size, outputs_per_dimension
        # The context's columns among the first layer's inputs (none when it has layers of its own).
        self.input_context = 0 if context_layers else context_size
        self.hidden_sizes = list(hidden_sizes)
        self.activation = activation(activation_name)
        self.parameterization = parameterization
        sizes = [d + self.input_context] + self.hidden_sizes + [d * outputs_per_dimension]
        if context_layers and context_size > 0:
            self.context_layers = nn.ModuleList(nn.Linear(context_size, self.hidden_sizes[0], dtype=dtype)
                                                for _ in range(1 + residual_blocks))
        else:
            self.context_layers = None
        self.layers = nn.ModuleList(
            nn.Linear(a, b, dtype=dtype) for a, b in zip(sizes[:-1], sizes[1:]))
        self.skip = nn.Linear(d, d * outputs_per_dimension, bias=False, dtype=dtype) if skip else None
        self.register_buffer("order", torch.tensor(order, dtype=torch.float64))
        self.after_load()

    def _multiplier(self, fan_in):
        return 1.0 / fan_in if self.parameterization == "meanField" else 1.0

    def after_load(self):
        d, p = self.d, self.p
        order = [int(v) for v in self.order.tolist()]
        if sorted(order) != list(range(d)):
            raise MappingError(f"the MADE order {order} is not a permutation of 0..<{d}")
        input_degree = [0] * d
        for position, dimension in enumerate(order):
            input_degree[dimension] = position + 1
        previous = input_degree + [0] * self.input_context
        dtype = self.layers[0].weight.dtype
        masks = []
        for h in self.hidden_sizes:
            degrees = hidden_degrees(h, d, self.input_context > 0)
            mask = torch.tensor([[1.0 if r >= c else 0.0 for c in previous] for r in degrees], dtype=torch.float64)
            masks.append(mask * self._multiplier(len(previous)))
            previous = degrees
        output_degrees = [input_degree[j // p] for j in range(d * p)]
        mask = torch.tensor([[1.0 if r > c else 0.0 for c in previous] for r in output_degrees], dtype=torch.float64)
        masks.append(mask * self._multiplier(len(previous)))
        for i, m in enumerate(masks):
            self.register_buffer(f"_mask{i}", m.to(dtype), persistent=False)
        if self.skip is not None:
            skip = torch.tensor([[1.0 if r > c else 0.0 for c in input_degree] for r in output_degrees], dtype=torch.float64)
            self.register_buffer("_skip_mask", (skip * self._multiplier(d)).to(dtype), persistent=False)
        self.input_degree = input_degree

    def forward(self, x, context=None):
        h = x
        if self.context_size > 0:
            if context is None:
                raise MappingError(f"this conditional flow needs a context of size {self.context_size}")
            context = context.expand(x.shape[:-1] + (self.context_size,))
            if self.input_context:
                h = torch.cat([x, context], dim=-1)
        last = len(self.layers) - 1
        offsets = None
        if self.context_layers is not None:
            offsets = [self.activation(layer(context)) if k == 0 else layer(context) for k, layer in enumerate(self.context_layers)]

        def masked(i, v, offset=None):
            out = F.linear(v, self.layers[i].weight * getattr(self, f"_mask{i}"), self.layers[i].bias)
            return out if offset is None else out + offset

        if self.residual_blocks > 0:
            # nflows' residual MADE: h₀ = W₀x + b₀ (+ e₀); h ← h + W₂ act(W₁ act(h) + b₁ (+ e_k+1)) + b₂;
            # y = W_f h + b_f.
            h = masked(0, h, offsets and offsets[0])
            for k in range(self.residual_blocks):
                h = h + masked(2 * k + 2, self.activation(masked(2 * k + 1, self.activation(h), offsets and offsets[k + 1])))
            h = masked(last, h)
        else:
            for i in range(len(self.layers)):
                h = masked(i, h, offsets[0] if offsets and i == 0 else None)
                if i < last:
                    h = self.activation(h)
        if self.skip is not None:
            h = h + F.linear(x, self.skip.weight * self._skip_mask)
        return h.unflatten(-1, (self.d, self.p))


class MLP(nn.Module):
    """Dense layers ``layers.<l>`` with the activation after every layer but the last; a context
    is appended to the input (Swift ``MLP`` as a coupling network)."""

    def __init__(self, sizes, activation_name, dtype):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b, dtype=dtype) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = activation(activation_name)

    def forward(self, h, context=None):
        if context is not None:
            h = torch.cat([h, context], dim=-1)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < last:
                h = self.activation(h)
        return h


class ResidualBlock(nn.Module):
    """One block of :class:`ResidualNet`: ``linear_layers.{0,1}`` (H → H) and, with a context,
    ``context_layer`` (C → H)."""

    def __init__(self, features, context_size, dtype):
        super().__init__()
        if context_size > 0:
            self.context_layer = nn.Linear(context_size, features, dtype=dtype)
        self.linear_layers = nn.ModuleList(nn.Linear(features, features, dtype=dtype) for _ in range(2))


class ResidualNet(nn.Module):
    """nflows' ``ResidualNet`` without batch norm or dropout (Swift ``ResidualNet``), under nflows'
    names: h = W₀[x, c] + b₀; per block t = W₂ act(W₁ act(h) + b₁) + b₂, times
    sigmoid(W_c c + b_c) with a context, h ← h + t; y = W_f h + b_f."""

    def __init__(self, inputs, context_size, hidden, outputs, blocks, activation_name, dtype):
        super().__init__()
        self.initial_layer = nn.Linear(inputs + context_size, hidden, dtype=dtype)
        self.blocks = nn.ModuleList(ResidualBlock(hidden, context_size, dtype) for _ in range(blocks))
        self.final_layer = nn.Linear(hidden, outputs, dtype=dtype)
        self.activation = activation(activation_name)

    def forward(self, x, context=None):
        h = self.initial_layer(x if context is None else torch.cat([x, context], dim=-1))
        for block in self.blocks:
            t = block.linear_layers[1](self.activation(block.linear_layers[0](self.activation(h))))
            if context is not None:
                t = t * torch.sigmoid(block.context_layer(context))
            h = h + t
        return self.final_layer(h)


# ---------------------------------------------------------------------------------------------
# Bijectors with conditioners


class Autoregressive(Bijector):
    """y_i = f(x_i; θ_i(x_<i)) with θ from a MADE fed the input of ``forward`` (Swift
    ``AutoregressiveBijector``). ``forward`` is one pass; ``inverse`` is D passes, the first on
    zeros, each fixing one more dimension in the order. log|det| = Σ_i log|f′|."""

    def __init__(self, transform, conditioner):
        super().__init__()
        self.transform = transform
        self.conditioner = conditioner

    def _forward(self, x, context):
        y, d = self.transform.forward(x, self.conditioner(x, context))
        return y, d.sum(-1)

    def _inverse(self, y, context):
        # Step k fixes the k-th dimension of the order from the network fed the dimensions
        # fixed so far (the others held at zero, as Swift's sequential inverse leaves them):
        # values for dimensions not yet fixed are never computed, so an overflow there cannot
        # turn into NaN through a masked weight (0·∞).
        columns = [torch.zeros_like(y[..., 0])] * y.shape[-1]
        log_det = 0
        for dimension in self.conditioner.order.long().tolist():
            raw = self.conditioner(torch.stack(columns, dim=-1), context)
            x_i, d_i = self.transform.inverse(y[..., dimension], raw[..., dimension, :])
            columns[dimension] = x_i
            log_det = log_det + d_i
        return torch.stack(columns, dim=-1), log_det


class Coupling(Bijector):
    """y_A = x_A, y_B = f(x_B; θ(x_A, context)) with θ from an MLP or a ResidualNet (Swift ``CouplingBijector``);
    parameters laid out [|B|, P]. Both directions are one pass."""

    def __init__(self, transform, conditioning, conditioner, context_size):
        super().__init__()
        d = len(conditioning)
        self.kept = [i for i in range(d) if conditioning[i]]
        self.changed = [i for i in range(d) if not conditioning[i]]
        if not self.changed or (not self.kept and context_size == 0):
            raise MappingError(f"a coupling layer needs elements on both sides of its mask (events of {d} elements)")
        merge = [0] * d
        for k, i in enumerate(self.kept + self.changed):
            merge[i] = k
        self.merge = merge
        self.transform = transform
        self.context_size = context_size
        self.conditioner = conditioner

    def _apply(self, v, context, inverse):
        kept, changed = v[..., self.kept], v[..., self.changed]
        if self.context_size > 0:
            if context is None:
                raise MappingError(f"this conditional flow needs a context of size {self.context_size}")
            context = context.expand(v.shape[:-1] + (self.context_size,))
        else:
            context = None
        raw = self.conditioner(kept, context).unflatten(-1, (len(self.changed), self.transform.parameter_count))
        out, d = (self.transform.inverse if inverse else self.transform.forward)(changed, raw)
        return torch.cat([kept, out], dim=-1)[..., self.merge], d.sum(-1)

    def _forward(self, x, context):
        return self._apply(x, context, inverse=False)

    def _inverse(self, y, context):
        return self._apply(y, context, inverse=True)


class FreeElementwise(Bijector):
    """An elementwise transform with free parameters ``parameters`` [event shape + [P]]; with a
    context, plus a linear map ``context.weight`` [D·P, C] of it (Swift
    ``ParametricElementwiseBijector``)."""

    def __init__(self, transform, event_shape, context_size, dtype):
        super().__init__()
        self.transform = transform
        p = transform.parameter_count
        self.size = math.prod(event_shape)
        # Named "parameters" as in the file; nn.Module has a method of that name, so the entry is
        # put into the registry directly (named_parameters and state_dict find it there).
        self._parameters["parameters"] = nn.Parameter(torch.zeros(tuple(event_shape) + (p,), dtype=dtype))
        self.context = nn.Linear(context_size, self.size * p, bias=False, dtype=dtype) if context_size > 0 else None

    def _raw(self, context):
        raw = self._parameters["parameters"].reshape(self.size, self.transform.parameter_count)
        if self.context is not None:
            if context is None:
                raise MappingError("this conditional flow needs a context")
            raw = raw + self.context(context).unflatten(-1, (self.size, self.transform.parameter_count))
        return raw

    def _forward(self, x, context):
        y, d = self.transform.forward(x, self._raw(context))
        return y, d.sum(-1)

    def _inverse(self, y, context):
        x, d = self.transform.inverse(y, self._raw(context))
        return x, d.sum(-1)


# ---------------------------------------------------------------------------------------------
# Linear and normalising bijectors


class LULinear(Bijector):
    """y = W x + b with W = (L ⊙ strict-lower + I)(U ⊙ strict-upper + diag(exp(log_diagonal)));
    log|det| = Σ log_diagonal (LULinear.swift). Tensors ``lower``, ``upper``, ``log_diagonal``, ``bias``."""

    def __init__(self, d, dtype):
        super().__init__()
        self.lower = nn.Parameter(torch.zeros(d, d, dtype=dtype))
        self.upper = nn.Parameter(torch.zeros(d, d, dtype=dtype))
        self.log_diagonal = nn.Parameter(torch.zeros(d, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(d, dtype=dtype))

    def weight(self):
        eye = torch.eye(self.bias.shape[0], dtype=self.bias.dtype, device=self.bias.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(torch.exp(self.log_diagonal))
        return lower @ upper

    def _forward(self, x, context):
        return F.linear(x, self.weight(), self.bias), self.log_diagonal.sum().expand(x.shape[:-1])

    def _inverse(self, y, context):
        x = F.linear(y - self.bias, torch.linalg.inv(self.weight()))
        return x, (-self.log_diagonal.sum()).expand(y.shape[:-1])


class ActNorm(Bijector):
    """y = x·exp(log_scale) + shift (ActNorm.swift); in training mode the first inverse on ≥ 2
    rows sets shift = mean and log_scale = ½ log(var + 1e-12) of the batch (buffer
    ``initialized`` 0 → 1)."""

    def __init__(self, event_shape, dtype):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(event_shape, dtype=dtype))
        self.shift = nn.Parameter(torch.zeros(event_shape, dtype=dtype))
        self.register_buffer("initialized", torch.zeros(1, dtype=torch.float64))

    def _forward(self, x, context):
        s, t = self.log_scale.reshape(-1), self.shift.reshape(-1)
        return x * torch.exp(s) + t, s.sum().expand(x.shape[:-1])

    def _inverse(self, y, context):
        rows = y.reshape(-1, y.shape[-1])
        if self.training and rows.shape[0] >= 2 and self.initialized.item() == 0:
            with torch.no_grad():
                mean = rows.mean(0)
                variance = ((rows - mean) ** 2).mean(0)
                self.shift.copy_(mean.reshape(self.shift.shape))
                self.log_scale.copy_((0.5 * torch.log(variance + 1e-12)).reshape(self.log_scale.shape))
                self.initialized.fill_(1)
        s, t = self.log_scale.reshape(-1), self.shift.reshape(-1)
        return (y - t) * torch.exp(-s), (-s.sum()).expand(y.shape[:-1])


class BatchNorm(Bijector):
    """Batch normalisation as a bijector (BatchNorm.swift): inverse (data → noise)
    x = (y − mean)/√(var + ε)·exp(log_gamma) + beta with the running statistics in evaluation
    mode and the batch's (biased) statistics in training mode, where the running averages move
    by ``momentum`` toward the batch mean and unbiased variance; log|det| = Σ(log_gamma − ½ log(var + ε))."""

    def __init__(self, event_shape, momentum, epsilon, dtype):
        super().__init__()
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.log_gamma = nn.Parameter(torch.zeros(event_shape, dtype=dtype))
        self.beta = nn.Parameter(torch.zeros(event_shape, dtype=dtype))
        self.register_buffer("running_mean", torch.zeros(event_shape, dtype=dtype))
        self.register_buffer("running_variance", torch.ones(event_shape, dtype=dtype))

    def _log_det(self, variance):
        return (self.log_gamma.reshape(-1) - 0.5 * torch.log(variance + self.epsilon)).sum()

    def _forward(self, x, context):
        mean, variance = self.running_mean.reshape(-1), self.running_variance.reshape(-1)
        y = (x - self.beta.reshape(-1)) * torch.exp(-self.log_gamma.reshape(-1)) * torch.sqrt(variance + self.epsilon) + mean
        return y, (-self._log_det(variance)).expand(x.shape[:-1])

    def _inverse(self, y, context):
        mean, variance = self.running_mean.reshape(-1), self.running_variance.reshape(-1)
        rows = y.reshape(-1, y.shape[-1])
        if self.training and rows.shape[0] >= 2:
            mean = rows.mean(0)
            variance = ((rows - mean) ** 2).mean(0)
            with torch.no_grad():
                n = rows.shape[0]
                self.running_mean.mul_(1 - self.momentum).add_(mean.detach().reshape(self.running_mean.shape) * self.momentum)
                unbiased = variance.detach() * (n / (n - 1))
                self.running_variance.mul_(1 - self.momentum).add_(unbiased.reshape(self.running_variance.shape) * self.momentum)
        x = (y - mean) / torch.sqrt(variance + self.epsilon) * torch.exp(self.log_gamma.reshape(-1)) + self.beta.reshape(-1)
        return x, self._log_det(variance).expand(y.shape[:-1])


# ---------------------------------------------------------------------------------------------
# Parameter-free elementwise functions (Exp.swift, Sigmoid.swift, Tanh.swift, Softplus.swift,
# ELU.swift, LeakyReLU.swift, Power.swift, AffineFixed.swift)


def _kept_inside(y, lower, upper):
    """Swift ``keptInside``: clamped to the open interval by one ulp of the dtype."""
    lo = torch.nextafter(torch.tensor(lower, dtype=y.dtype), torch.tensor(upper, dtype=y.dtype))
    hi = torch.nextafter(torch.tensor(upper, dtype=y.dtype), torch.tensor(lower, dtype=y.dtype))
    return torch.clamp(y, lo.item(), hi.item())


class Elementwise(Bijector):
    """y_i = f(x_i) for a fixed function; log|det| = Σ log|f′(x_i)|. ``kind`` and ``options``
    are the plan's type name and options:

    - Exp: y = eˣ, log f′ = x
    - Sigmoid: y = σ(x), log f′ = log σ(x) + log σ(−x)
    - Tanh: y = tanh x, log f′ = −2(x + softplus(−2x)) + 2 log 2
    - Softplus: y = log(1 + eˣ), log f′ = log σ(x); inverse x = y + log(−expm1(−y))
    - ELU(α): y = x (x > 0) or α(eˣ − 1), log f′ = min(x, 0) + log α·[x ≤ 0]
    - LeakyReLU(a): y = x (x > 0) or a·x, log f′ = log a·[x ≤ 0]
    - Power(p), on x > 0: y = xᵖ, log f′ = (p − 1) log x + log|p|
    - AffineFixed(loc, scale): y = loc + scale·x, log f′ = log|scale|
    """

    def __init__(self, kind, options):
        super().__init__()
        self.kind, self.o = kind, options
        if kind == "ELU" and not float(options["alpha"]) > 0:
            raise MappingError(f"ELU needs α > 0, got {options['alpha']}")
        if kind == "LeakyReLU" and not float(options["negativeSlope"]) > 0:
            raise MappingError(f"LeakyReLU needs a positive slope, got {options['negativeSlope']}")
        if kind == "Power" and float(options["exponent"]) == 0:
            raise MappingError("Power needs a non-zero exponent")
        if kind == "AffineFixed" and float(options["scale"]) == 0:
            raise MappingError("AffineFixed needs a non-zero scale")

    def _forward(self, x, context):
        k, o = self.kind, self.o
        if k == "Exp":
            y, d = torch.exp(x), x
        elif k == "Sigmoid":
            y, d = _kept_inside(torch.sigmoid(x), 0.0, 1.0), F.logsigmoid(x) + F.logsigmoid(-x)
        elif k == "Tanh":
            y = _kept_inside(torch.tanh(x), -1.0, 1.0)
            d = (x + F.softplus(-2 * x)) * -2 + 2 * math.log(2.0)
        elif k == "Softplus":
            y, d = F.softplus(x), F.logsigmoid(x)
        elif k == "ELU":
            alpha = float(o["alpha"])
            positive = (x > 0).to(x.dtype)
            y, d = F.elu(x, alpha=alpha), x.clamp(max=0) + math.log(alpha) * (1 - positive)
        elif k == "LeakyReLU":
            a = float(o["negativeSlope"])
            y, d = F.leaky_relu(x, a), (1 - (x > 0).to(x.dtype)) * math.log(a)
        elif k == "Power":
            p = float(o["exponent"])
            y, d = x.pow(p), torch.log(x) * (p - 1) + math.log(abs(p))
        else:
            scale, loc = float(o["scale"]), float(o["loc"])
            y, d = x * scale + loc, torch.full_like(x, math.log(abs(scale)))
        return y, d.sum(-1)

    def _inverse(self, y, context):
        k, o = self.kind, self.o
        if k == "Exp":
            x = torch.log(y)
            d = -x
        elif k == "Sigmoid":
            log_y, log_1m_y = torch.log(y), torch.log1p(-y)
            x, d = log_y - log_1m_y, -(log_y + log_1m_y)
        elif k == "Tanh":
            a, c = torch.log1p(y), torch.log1p(-y)
            x, d = (a - c) * 0.5, -(a + c)
        elif k == "Softplus":
            x = y + torch.log(-torch.expm1(-y))
            d = -F.logsigmoid(x)
        elif k == "ELU":
            alpha = float(o["alpha"])
            positive = (y > 0).to(y.dtype)
            negative = y.clamp(max=0)
            x = torch.where(y > 0, y, torch.log1p(negative / alpha))
            d = -torch.log(negative + alpha) * (1 - positive)
        elif k == "LeakyReLU":
            a = float(o["negativeSlope"])
            x, d = F.leaky_relu(y, 1 / a), (1 - (y > 0).to(y.dtype)) * -math.log(a)
        elif k == "Power":
            q = 1 / float(o["exponent"])
            x, d = y.pow(q), torch.log(y) * (q - 1) + math.log(abs(q))
        else:
            scale, loc = float(o["scale"]), float(o["loc"])
            x, d = (y - loc) / scale, torch.full_like(y, -math.log(abs(scale)))
        return x, d.sum(-1)


class Bounds(Bijector):
    """ℝᴰ onto a box of open intervals, element by element (Bounds.swift): (a, b) by
    a + (b − a)·σ(x), (a, ∞) by a + softplus(x), (−∞, b) by b − softplus(−x), ℝ by the identity.
    The inverse works from the distances to the bounds, y − a and b − y. ``lower`` and ``upper``
    hold one bound per element, None where infinite (the plan's JSON)."""

    def __init__(self, lower, upper, event_size):
        super().__init__()
        if len(lower) != event_size or len(upper) != event_size:
            raise MappingError(f"Bounds needs one bound per element ({event_size}), got {len(lower)} and {len(upper)}")
        lo = [-math.inf if v is None else float(v) for v in lower]
        hi = [math.inf if v is None else float(v) for v in upper]
        if not all(a < b for a, b in zip(lo, hi)):
            raise MappingError(f"Bounds needs lower < upper for every element, got {lo} and {hi}")
        self.lower, self.upper = lo, hi

    def _constants(self, like):
        def t(values):
            return torch.tensor(values, dtype=like.dtype, device=like.device)
        finite_lo = [math.isfinite(a) for a in self.lower]
        finite_hi = [math.isfinite(b) for b in self.upper]
        both = t([float(a and b) for a, b in zip(finite_lo, finite_hi)]) > 0
        lower_only = t([float(a and not b) for a, b in zip(finite_lo, finite_hi)]) > 0
        upper_only = t([float(b and not a) for a, b in zip(finite_lo, finite_hi)]) > 0
        a = t([v if f else 0.0 for v, f in zip(self.lower, finite_lo)])
        b = t([v if f else 0.0 for v, f in zip(self.upper, finite_hi)])
        log_width = t([math.log(hi - lo) if f and g else 0.0
                       for lo, hi, f, g in zip(self.lower, self.upper, finite_lo, finite_hi)])
        return both, lower_only, upper_only, a, b, log_width

    def _forward(self, x, context):
        both, lower_only, upper_only, a, b, log_width = self._constants(x)
        y = torch.where(both, a + (b - a) * torch.sigmoid(x),
                        torch.where(lower_only, a + F.softplus(x),
                                    torch.where(upper_only, b - F.softplus(-x), x)))
        d = torch.where(both, log_width + F.logsigmoid(x) + F.logsigmoid(-x),
                        torch.where(lower_only, F.logsigmoid(x),
                                    torch.where(upper_only, F.logsigmoid(-x), torch.zeros_like(x))))
        # Kept strictly inside the box after rounding, as Swift does.
        inward = [torch.nextafter(torch.tensor(v, dtype=x.dtype), torch.tensor(w, dtype=x.dtype)).item()
                  for v, w in zip(self.lower, self.upper)]
        outward = [torch.nextafter(torch.tensor(w, dtype=x.dtype), torch.tensor(v, dtype=x.dtype)).item()
                   for v, w in zip(self.lower, self.upper)]
        y = torch.minimum(torch.maximum(y, torch.tensor(inward, dtype=x.dtype)), torch.tensor(outward, dtype=x.dtype))
        return y, d.sum(-1)

    def _inverse(self, y, context):
        both, lower_only, upper_only, a, b, log_width = self._constants(y)
        above = torch.where(both | lower_only, y - a, torch.ones_like(y))
        below = torch.where(both | upper_only, b - y, torch.ones_like(y))
        log_above, log_below = torch.log(above), torch.log(below)
        from_lower = above + torch.log(-torch.expm1(-above))
        from_upper = -(below + torch.log(-torch.expm1(-below)))
        x = torch.where(both, log_above - log_below,
                        torch.where(lower_only, from_lower, torch.where(upper_only, from_upper, y)))
        d = torch.where(both, log_width - log_above - log_below,
                        torch.where(lower_only, -F.logsigmoid(from_lower),
                                    torch.where(upper_only, -F.logsigmoid(-from_upper), torch.zeros_like(y))))
        return x, d.sum(-1)


class Householder(Bijector):
    """K reflections h ← h − 2(h·v)v/(‖v‖² + 1e-30), v the rows of ``vectors`` [K, D] (or, in a
    conditional layer, [..., K, D] per context), applied first to last forward and last to first
    inverse; volume preserving (Householder.swift)."""

    context_shifted = ("vectors",)

    def __init__(self, reflections, d, dtype):
        super().__init__()
        if reflections < 1:
            raise MappingError("Householder needs at least one reflection")
        self.vectors = nn.Parameter(torch.zeros(reflections, d, dtype=dtype))

    def _reflect(self, h, context, reverse):
        vectors, = self.parameters_for(context)
        k = vectors.shape[-2]
        for i in (reversed(range(k)) if reverse else range(k)):
            v = vectors[..., i, :]
            h = h - ((h * v).sum(-1, keepdim=True) * v) * (2 / ((v * v).sum(-1, keepdim=True) + 1e-30))
        return h, h.new_zeros(h.shape[:-1])

    def _forward(self, x, context):
        return self._reflect(x, context, reverse=False)

    def _inverse(self, y, context):
        return self._reflect(y, context, reverse=True)


# ---------------------------------------------------------------------------------------------
# Planar, radial and Sylvester layers (Planar.swift, Radial.swift, Sylvester.swift)


def solve_tanh_equation(target, c, maximum_iterations=100, layer="planar"):
    """The root s of s + c·tanh(s) = target (c ≥ −1), elementwise, in float64: Newton steps kept
    inside the bracket [target − |c|, target + |c|] by bisection, to |residual| ≤
    1e-12·(1 + |target|), as Swift's ``solveTanhEquation``; NaN for a non-finite target.
    Raises ``MappingError`` naming the first row that does not converge (never an approximation)."""
    target = target.detach().double()
    c = torch.as_tensor(c, dtype=torch.float64).detach().expand_as(target)
    finite = torch.isfinite(target)
    t = torch.where(finite, target, torch.zeros_like(target))
    tolerance = 1e-12 * (1 + t.abs())
    lo, hi, s = t - c.abs(), t + c.abs(), t.clone()
    done = torch.zeros_like(t, dtype=torch.bool)
    for _ in range(maximum_iterations):
        th = torch.tanh(s)
        g = s + c * th - t
        done = done | (g.abs() <= tolerance)
        if bool(done.all()):
            break
        hi = torch.where(~done & (g > 0), s, hi)
        lo = torch.where(~done & (g <= 0), s, lo)
        step = s - g / (1 + c * (1 - th * th))
        step = torch.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
        s = torch.where(done, s, step)
    residual = (s + c * torch.tanh(s) - t).abs()
    bad = finite & (residual > tolerance)
    if bool(bad.any()):
        row = int(bad.reshape(-1).nonzero()[0])
        raise MappingError(f"the {layer} inverse's equation did not converge for row {row} in {maximum_iterations} steps")
    return torch.where(finite, s, torch.full_like(s, math.nan))


class Planar(Bijector):
    """y = x + û·tanh(wᵀx + b), û = u + (c − wᵀu)·w/max(‖w‖², 1e-30), c = softplus(wᵀu) − 1 + ε
    (ε the plan's ``invertibilityMargin``, 0 in plans saved before it existed);
    log|det| = log(1 + (1 − tanh²)·c). The inverse solves s + c·tanh s = wᵀy + b per point
    (``solve_tanh_equation``) and records one Newton step so gradients are the implicit ones.
    In a conditional layer u, w, b carry the context's leading shape (one c per point)."""

    context_shifted = ("u", "w", "b")

    def __init__(self, d, dtype, margin=0.0):
        super().__init__()
        self.margin = float(margin)
        self.u = nn.Parameter(torch.zeros(d, dtype=dtype))
        self.w = nn.Parameter(torch.zeros(d, dtype=dtype))
        self.b = nn.Parameter(torch.zeros((), dtype=dtype))

    def _constrained(self, context):
        u, w, b = self.parameters_for(context)
        wu = (w * u).sum(-1, keepdim=True)
        c = F.softplus(wu) - (1 - self.margin)
        u_hat = u + (c - wu) * w / (w * w).sum(-1, keepdim=True).clamp(min=1e-30)
        return w, u_hat, c.squeeze(-1), b

    def _forward(self, x, context):
        w, u_hat, c, b = self._constrained(context)
        activation = torch.tanh((x * w).sum(-1) + b)
        return x + activation.unsqueeze(-1) * u_hat, torch.log((1 - activation * activation) * c + 1)

    def _inverse(self, y, context):
        w, u_hat, c, b = self._constrained(context)
        t = (y * w).sum(-1) + b
        solved = solve_tanh_equation(t, c, layer="planar").to(y.dtype)
        th = torch.tanh(solved)
        g = solved + c * th - t
        s = solved - (g - g.detach()) / ((1 - th * th) * c + 1).detach().clamp(min=1e-30)
        activation = torch.tanh(s)
        x = y - activation.unsqueeze(-1) * u_hat
        return x, -torch.log((1 - activation * activation) * c + 1)


class Radial(Bijector):
    """y = x + β·h(r)·(x − z₀), h = 1/(α + r), r = √(‖x − z₀‖² + 1e-30), α = softplus(α̃),
    β = softplus(β̃) − α; log|det| = (D − 1)·log(1 + βh) + log(1 + βα h²). The inverse takes
    the radius from r² + p·r − α‖y − z₀‖ = 0, p = α + β − ‖y − z₀‖, in its cancellation-free
    forms 2α‖y − z₀‖/q (p ≥ 0) or q/2, q = √(p² + 4α‖y − z₀‖ + 1e-30) + |p|. In a conditional
    layer z₀, α̃, β̃ carry the context's leading shape."""

    context_shifted = ("center", "alpha", "beta")

    def __init__(self, d, dtype):
        super().__init__()
        self.center = nn.Parameter(torch.zeros(d, dtype=dtype))
        self.alpha = nn.Parameter(torch.zeros((), dtype=dtype))
        self.beta = nn.Parameter(torch.zeros((), dtype=dtype))

    def _constrained(self, context):
        center, alpha, beta = self.parameters_for(context)
        a = F.softplus(alpha)
        return center, a, F.softplus(beta) - a

    def _log_det(self, r, a, b):
        h = 1 / (a + r)
        return torch.log(b * h + 1) * (self.center.shape[0] - 1) + torch.log(b * a * h * h + 1)

    def _forward(self, x, context):
        center, a, b = self._constrained(context)
        diff = x - center
        r = torch.sqrt((diff * diff).sum(-1) + 1e-30)
        y = diff * (b / (a + r) + 1).unsqueeze(-1) + center
        return y, self._log_det(r, a, b)

    def _inverse(self, y, context):
        center, a, b = self._constrained(context)
        diff = y - center
        ry = torch.sqrt((diff * diff).sum(-1) + 1e-30)
        p = a + b - ry
        q = torch.sqrt(p * p + 4 * a * ry + 1e-30) + p.abs()
        r = torch.where(p >= 0, 2 * a * ry / q, q * 0.5)
        x = diff / (b / (a + r) + 1).unsqueeze(-1) + center
        return x, -self._log_det(r, a, b)


class Sylvester(Bijector):
    """y = z + Q R tanh(R̃ Qᵀ z + b) with R, R̃ upper triangular (tanh diagonals) and Q of
    orthonormal columns: Björck iterations Q ← Q(3I − QᵀQ)/2 from q/(‖q‖_F + 1e-12) until
    max|QᵀQ − I| ≤ 1e-4 (float32) or 1e-8 (float64), then one more (orthogonal); a product of
    Householder reflections (householder); I (triangular). log|det| = Σ log(1 + (1 − tanh² u)·R̃ᵢᵢRᵢᵢ).
    The inverse solves u + R̃R tanh u = R̃Qᵀy + b by back substitution, one tanh equation per
    component, with one recorded Newton step for the implicit gradients. In a conditional layer
    R, R̃ and b carry the context's leading shape (one triangular pair per point); Q is shared."""

    context_shifted = ("r_diagonal", "r_upper", "r_tilde_diagonal", "r_tilde_upper", "b")

    def __init__(self, variant, d, m, k, dtype):
        super().__init__()
        if variant not in ("orthogonal", "householder", "triangular"):
            raise MappingError(f"Sylvester variant '{variant}' is not mapped")
        if not 1 <= m <= d or k < 1:
            raise MappingError(f"Sylvester needs 1 ≤ columns ≤ D (= {d}) and at least one reflection")
        self.variant, self.size, self.columns = variant, d, m
        self.r_diagonal = nn.Parameter(torch.zeros(m, dtype=dtype))
        self.r_upper = nn.Parameter(torch.zeros(m, m, dtype=dtype))
        self.r_tilde_diagonal = nn.Parameter(torch.zeros(m, dtype=dtype))
        self.r_tilde_upper = nn.Parameter(torch.zeros(m, m, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(m, dtype=dtype))
        self.q = nn.Parameter(torch.zeros(d, m, dtype=dtype)) if variant == "orthogonal" else None
        self.householder_vectors = nn.Parameter(torch.zeros(k, d, dtype=dtype)) if variant == "householder" else None

    def _triangular_factors(self, context):
        """R, R̃ ([..., M, M]), the products of their diagonals and b ([..., M]) for the context."""
        r_diagonal, r_upper, r_tilde_diagonal, r_tilde_upper, b = self.parameters_for(context)
        diagonal, tilde_diagonal = torch.tanh(r_diagonal), torch.tanh(r_tilde_diagonal)
        r = torch.triu(r_upper, 1) + torch.diag_embed(diagonal)
        r_tilde = torch.triu(r_tilde_upper, 1) + torch.diag_embed(tilde_diagonal)
        return r, r_tilde, diagonal * tilde_diagonal, b

    def _orthogonal(self):
        """Q (D×M, orthonormal columns), shared by every context."""
        dtype = self.r_diagonal.dtype
        if self.variant == "triangular":
            return torch.eye(self.size, dtype=dtype)
        if self.variant == "householder":
            q = torch.eye(self.size, dtype=dtype)
            for v in self.householder_vectors:
                v = v.unsqueeze(1)
                q = q - (q @ v) @ v.T * (2 / (v * v).sum().clamp(min=1e-30))
            return q
        q = self.q / (torch.sqrt((self.q * self.q).sum()) + 1e-12)
        eye = torch.eye(self.columns, dtype=dtype)
        tolerance = 1e-4 if dtype == torch.float32 else 1e-8
        for steps in range(101):
            gram = q.T @ q
            converged = float((gram.detach() - eye).abs().max()) <= tolerance
            if not converged and steps == 100:
                raise MappingError("the Sylvester layer's Björck orthogonalisation of Q did not converge")
            q = q @ (eye * 3 - gram) * 0.5
            if converged:
                break
        return q

    @staticmethod
    def _applying(matrices, rows):
        """A v for each row v of ``rows`` [..., M]: one matrix [M, M] for all rows, or one per row."""
        if matrices.dim() == 2:
            return rows @ matrices.T
        return (matrices @ rows.unsqueeze(-1)).squeeze(-1)

    def _forward(self, z, context):
        q = self._orthogonal()
        r, r_tilde, diagonal_product, b = self._triangular_factors(context)
        h = torch.tanh(self._applying(r_tilde, z @ q) + b)
        y = z + self._applying(r, h) @ q.T
        return y, torch.log((1 - h * h) * diagonal_product + 1).sum(-1)

    def _inverse(self, y, context):
        q = self._orthogonal()
        r, r_tilde, diagonal_product, b = self._triangular_factors(context)
        t = self._applying(r_tilde, y @ q) + b
        c = r_tilde @ r
        m = self.columns
        c64, t64 = c.detach().double(), t.detach().double()
        solved = [None] * m
        for i in reversed(range(m)):
            offset = torch.zeros_like(t64[..., i])
            for j in range(i + 1, m):
                offset = offset + c64[..., i, j] * torch.tanh(solved[j])
            solved[i] = solve_tanh_equation(t64[..., i] - offset, c64[..., i, i], layer=f"Sylvester (component {i})")
        u_star = torch.stack(solved, -1).to(t.dtype)
        h_star = torch.tanh(u_star)
        slopes = (1 - h_star * h_star).detach()
        residual = u_star + self._applying(c, h_star) - t
        g = residual - residual.detach()
        fixed = c.detach()
        delta = [None] * m
        for i in reversed(range(m)):
            numerator = g[..., i]
            for j in range(i + 1, m):
                numerator = numerator - delta[j] * slopes[..., j] * fixed[..., i, j]
            delta[i] = numerator / (slopes[..., i] * fixed[..., i, i] + 1).clamp(min=1e-30)
        u = u_star - torch.stack(delta, -1)
        h = torch.tanh(u)
        x = y - self._applying(r, h) @ q.T
        return x, -torch.log((1 - h * h) * diagonal_product + 1).sum(-1)


# The spline transforms live in splines.py (which imports this module's Bijector and
# MappingError); re-exported here under the names plans and exporters use.
from .splines import SplineTransform  # noqa: E402,F401
