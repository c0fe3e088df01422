"""Conditional planar, radial, Householder and Sylvester layers, and context embeddings.

**Context parameter networks** (Swift ``ContextParameterNetwork``,
Conditioners/ContextParameterNetwork.swift). A layer whose parameters no autoregressive or
coupling conditioner produces becomes conditional through a hypernetwork (Ha, Dai & Le 2016)
g of the context c: its free parameters θ are shifted per context,

    θ(c) = θ + g(c),

as in Pyro's ``ConditionalPlanar``, ``ConditionalRadial`` and ``ConditionalHouseholder``, with
the layer's constraints applied to θ(c). g is a perceptron (tensors
``context_network.network.layers.<l>.weight``/``.bias``; ReLU and two hidden layers of 10·D
units unless the plan's ``contextNetwork`` says otherwise) whose outputs are the shifts of the
parameters, flattened and concatenated in the layer's order (``Bijector.context_shifted``):

- Planar (Rezende & Mohamed 2015): u [D], w [D], b []
- Radial (Rezende & Mohamed 2015): center z₀ [D], α̃ [], β̃ []
- Householder (Tomczak & Welling 2016): vectors [K, D]
- Sylvester (van den Berg et al. 2018): R's diagonal [M], R's upper part [M, M], R̃'s diagonal
  [M], R̃'s upper part [M, M], b [M]; Q is shared by every context.

The layer's formulas are the unconditional ones of :mod:`flows_torch.bijectors`, evaluated with
θ(c), which carries the context's leading shape: one set of parameters for a context [C], one
per point for contexts [..., C].

**Context embeddings** (Swift ``ContextEmbedding``, Bijectors/ContextEmbedding.swift; nflows'
``embedding_net``): a perceptron e: ℝᶜ → ℝᴱ applied to the context before the inner bijector
sees it, log p(y | c) = log p_base(f⁻¹(y; e(c))) + log|det ∂f⁻¹(y; e(c))/∂y|. The inner plan is
built for a context of size E; the network is the inner bijector's child ``embedding`` (tensors
``embedding.layers.<l>.weight``/``.bias``; the inner bijector's keep their names, as in Swift). A
conditional base still receives the raw context.
"""

import math

import torch
from torch import nn

from . import bijectors as b
from .bijectors import MappingError


def _perceptron(network, inputs, outputs, dtype, what):
    """Our MLP for a plan's ``CouplingNetwork`` JSON (hidden sizes, activation; no residual blocks)."""
    if not isinstance(network, dict):
        raise MappingError(f"{what}: the network {network!r} is not a CouplingNetwork object")
    hidden = [int(h) for h in network.get("hiddenSizes", [])]
    if int(network.get("residualBlocks", 0)) != 0 or any(h < 1 for h in hidden):
        raise MappingError(f"{what}: the network must be a perceptron (residualBlocks 0) with positive hidden sizes, got {network}")
    return b.MLP([inputs] + hidden + [outputs], network.get("activation", "relu"), dtype)


class ContextParameterNetwork(nn.Module):
    """g: a context [..., C] → the shifts of a layer's parameters (module ``network``, an MLP)."""

    def __init__(self, context_size, shapes, network, dtype, what="a conditional layer"):
        super().__init__()
        self.shapes = [tuple(shape) for shape in shapes]
        self.counts = [math.prod(shape) for shape in self.shapes]
        self.context_size = int(context_size)
        self.network = _perceptron(network, self.context_size, sum(self.counts), dtype, what)

    def shifted(self, parameters, context):
        """θ + g(c) for each parameter θ, with the leading shape of ``context``."""
        if context is None:
            raise MappingError(f"this layer is conditional: pass a context of size {self.context_size}")
        if context.shape[-1] != self.context_size:
            raise MappingError(f"this layer needs a context of size {self.context_size}, got shape {tuple(context.shape)}")
        output = self.network(context)
        leading = tuple(output.shape[:-1])
        shifts = torch.split(output, self.counts, dim=-1)
        return [parameter + shift.reshape(leading + shape) for parameter, shift, shape in zip(parameters, shifts, self.shapes)]


def default_context_network(event_size):
    """Swift ``CouplingNetwork.contextNetworkDefault``: two ReLU layers of 10·D units."""
    return {"hiddenSizes": [10 * event_size, 10 * event_size], "activation": "relu"}


def made_conditional(layer, options, spec, what):
    """``layer`` (planar, radial, Householder or Sylvester) with a context network shifting its
    ``context_shifted`` parameters when the spec has a context; the layer itself otherwise."""
    if spec.context_size == 0:
        return layer
    network = options.get("contextNetwork") or default_context_network(spec.event_size)
    shapes = [tuple(getattr(layer, name).shape) for name in layer.context_shifted]
    layer.context_network = ContextParameterNetwork(spec.context_size, shapes, network, spec.dtype, what)
    return layer


def embedded(inner, options, spec):
    """The inner bijector (built for a context of size ``features``) with the embedding network
    from the raw context, for the plan ``ContextEmbedding``."""
    if spec.context_size == 0:
        raise MappingError("ContextEmbedding embeds a context: the flow must be conditional (context_size > 0)")
    features = int(options["features"])
    if features < 1:
        raise MappingError(f"ContextEmbedding needs features ≥ 1, got {features}")
    if "embedding" in inner._modules:
        raise MappingError("a ContextEmbedding directly inside another has no tensor names of its own in the file "
                           "(both would be 'embedding.…'); wrap the inner plan in a Compose")
    inner.embedding = _perceptron(options["network"], spec.context_size, features, spec.dtype, "ContextEmbedding")
    return inner
