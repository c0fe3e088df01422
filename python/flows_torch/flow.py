"""A model file as a ``torch.nn.Module`` in zuko's convention, and back.

``flow(context)`` returns a ``torch.distributions.Distribution``:
log p(y) = log N(f⁻¹(y); loc, scale) + log|det ∂f⁻¹/∂y|, samples y = f(loc + scale·ε).
"""

import json
import math

import torch
from torch import nn

from . import _format
from .bijectors import MappingError
from .plans import Spec, build


class FlowDistribution(torch.distributions.Distribution):
    """The distribution of a flow for one context (or none)."""

    arg_constraints = {}
    has_rsample = True

    def __init__(self, flow, context=None):
        self.flow, self.context = flow, context
        batch = flow.base_batch_shape
        if context is not None:
            batch = torch.broadcast_shapes(batch, context.shape[:-1])
        super().__init__(batch_shape=batch, event_shape=flow.event_shape, validate_args=False)

    def _flatten(self, value):
        rank = len(self.event_shape)
        if tuple(value.shape[value.dim() - rank:]) != tuple(self.event_shape):
            raise ValueError(f"values must end with the event shape {tuple(self.event_shape)}, got {tuple(value.shape)}")
        return value.reshape(value.shape[: value.dim() - rank] + (self.flow.event_size,))

    def log_prob(self, value):
        """log p(y); rows whose inverse overflows (non-finite noise) or whose result is NaN get −∞,
        as in Swift's ``Flow.logProb``."""
        x, log_det = self.flow.bijector.inverse(self._flatten(value), self.context)
        finite = torch.isfinite(x).all(-1)
        result = self.flow.base_log_prob(torch.where(finite.unsqueeze(-1), x, torch.zeros_like(x))) + log_det
        overflowed = ~finite | torch.isnan(result)
        return torch.where(overflowed, torch.full_like(result, -math.inf), result)

    def rsample(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.batch_shape + (self.flow.event_size,)
        loc = self.flow.loc_flat
        noise = torch.randn(shape, dtype=loc.dtype, device=loc.device)
        return self.sample_from_noise(noise)

    def sample_from_noise(self, noise):
        """y = f(loc + scale·ε) for standard normal noise ε [..., D] (the Swift sampler's map)."""
        x = self.flow.loc_flat + self.flow.scale_flat * noise
        y, _ = self.flow.bijector(x, self.context)
        return y.reshape(y.shape[:-1] + self.event_shape)

    def rsample_and_log_prob(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.batch_shape + (self.flow.event_size,)
        noise = torch.randn(shape, dtype=self.flow.loc_flat.dtype, device=self.flow.loc_flat.device)
        x = self.flow.loc_flat + self.flow.scale_flat * noise
        y, log_det = self.flow.bijector(x, self.context)
        return y.reshape(y.shape[:-1] + self.event_shape), self.flow.base_log_prob(x) - log_det


class Flow(nn.Module):
    """A flow read from (or written to) a model file.

    Attributes: ``bijector`` (parameters named as in the file without the ``bijector.``
    prefix), the base's buffers ``base.loc`` and ``base.scale`` (not trained, as in Swift), so
    ``state_dict()`` holds exactly the file's tensors under the file's names, ``plan`` (the plan JSON text, written back as read),
    ``context_size``. Created in evaluation mode (BatchNorm uses its running statistics,
    ActNorm does not initialise itself), as Swift's ``Flow``; call ``.train()`` to train.
    """

    def __init__(self, plan_json, loc, scale, event_rank, context_size=0):
        super().__init__()
        plan = json.loads(plan_json) if isinstance(plan_json, str) else plan_json
        self.plan = plan_json if isinstance(plan_json, str) else json.dumps(plan_json, sort_keys=True, separators=(",", ":"))
        if loc.shape != scale.shape or loc.dtype != scale.dtype:
            raise MappingError("the base's loc and scale must have one shape and dtype")
        if not 0 <= event_rank <= loc.dim():
            raise MappingError(f"base event rank {event_rank} does not fit loc of shape {tuple(loc.shape)}")
        if loc.dtype not in (torch.float32, torch.float64):
            raise MappingError(f"the base's dtype {loc.dtype} is neither float32 nor float64")
        self.event_rank, self.context_size = int(event_rank), int(context_size)
        self.event_shape = torch.Size(loc.shape[loc.dim() - event_rank:])
        self.base_batch_shape = torch.Size(loc.shape[: loc.dim() - event_rank])
        self.event_size = math.prod(self.event_shape)
        self.base = nn.Module()
        self.base.register_buffer("loc", loc.clone())
        self.base.register_buffer("scale", scale.clone())
        self.bijector = build(plan, Spec(tuple(self.event_shape), self.context_size, loc.dtype))
        self.eval()

    @classmethod
    def from_plan(cls, plan, event_shape, context_size=0, dtype=torch.float32):
        """A flow for ``plan`` (JSON text or object) on a standard normal base over ``event_shape``,
        its parameters zero (fill them, or load a state, before use)."""
        shape = tuple(event_shape)
        return cls(plan, torch.zeros(shape, dtype=dtype), torch.ones(shape, dtype=dtype), len(shape), context_size)

    @property
    def base_loc(self):
        return self.base.loc

    @property
    def loc_flat(self):
        return self.base.loc.reshape(self.base_batch_shape + (self.event_size,))

    @property
    def scale_flat(self):
        return self.base.scale.reshape(self.base_batch_shape + (self.event_size,))

    def base_log_prob(self, x):
        """Σ over the event of −½((x − μ)/σ)² − log σ − ½ log 2π."""
        z = (x - self.loc_flat) / self.scale_flat
        return (-0.5 * z * z - torch.log(self.scale_flat) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def forward(self, context=None):
        if self.context_size > 0:
            if context is None:
                raise ValueError(f"this flow is conditional: pass a context of size {self.context_size}")
            if context.shape[-1] != self.context_size:
                raise ValueError(f"the context must have shape [..., {self.context_size}], got {tuple(context.shape)}")
        elif context is not None:
            raise ValueError("this flow takes no context")
        return FlowDistribution(self, context)

    # -- file state -------------------------------------------------------------------------

    def file_tensors(self):
        """The tensors a model file holds, by their file names."""
        tensors = {"base.loc": self.base.loc, "base.scale": self.base.scale}
        for name, value in self.bijector.state_dict().items():
            tensors[f"bijector.{name}"] = value
        return tensors

    @classmethod
    def from_transforms(cls, plans, states, features, dtype, source, context_size=0, loc=None, scale=None):
        """The flow of another library's transforms, given first to last in the data-to-noise
        direction, each as our plan object and its tensors under our names: one ``Compose`` of
        them, reversed (our Compose runs its parts' inverses last to first), on a normal base with
        ``loc`` and ``scale`` (standard when omitted). ``source`` names the flow in errors."""
        plan = {"type": "Compose", "options": {"parts": plans[::-1]}}
        flow = cls.from_plan(plan, (features,), context_size=context_size, dtype=dtype)
        tensors = {f"bijector.{i}.{name}": value for i, state in enumerate(states[::-1]) for name, value in state.items()}
        flow.load_file_tensors(tensors, source)
        with torch.no_grad():
            if loc is not None:
                flow.base.loc.copy_(loc)
            if scale is not None:
                flow.base.scale.copy_(scale)
        flow.plan = json.dumps(plan, sort_keys=True, separators=(",", ":"))
        return flow

    def load_file_tensors(self, tensors, path="the state"):
        """Fills parameters and buffers from file tensors, refusing missing, extra or mis-shaped entries."""
        state = self.bijector.state_dict()
        given = {k[len("bijector."):]: v for k, v in tensors.items() if k.startswith("bijector.")}
        extra = sorted(set(tensors) - {f"bijector.{k}" for k in state} - {"base.loc", "base.scale"})
        if extra:
            raise MappingError(f"{path}: the file has an entry '{extra[0]}' that the plan's flow does not")
        for name, value in state.items():
            if name not in given:
                raise MappingError(f"{path}: the file lacks 'bijector.{name}'")
            if tuple(given[name].shape) != tuple(value.shape):
                raise MappingError(f"{path}: 'bijector.{name}' has shape {tuple(given[name].shape)} in the file and {tuple(value.shape)} in the plan")
            if not torch.isfinite(given[name]).all():
                raise MappingError(f"{path}: 'bijector.{name}' holds NaN or ±inf")
        with torch.no_grad():
            self.bijector.load_state_dict({k: given[k].to(v.dtype) for k, v in state.items()})
        for module in self.bijector.modules():
            if hasattr(module, "after_load"):
                module.after_load()


def load(path):
    """A model file as a :class:`Flow` (see the module docstring)."""
    tensors, metadata = _format.read(path)
    try:
        base = json.loads(metadata["base"])
        base_type = base.get("type") if isinstance(base, dict) else None
    except (ValueError, KeyError, TypeError) as error:
        raise MappingError(f"{path}: the metadata cannot be read: {error}") from None
    if base_type != "Normal":
        # StudentT, Uniform, DiagonalNormal, ConditionalDiagonalNormal, GaussianMixture: read by
        # the Swift library, not mapped here.
        raise MappingError(f"{path}: the base distribution '{base_type}' is not mapped to PyTorch (only Normal)")
    try:
        event_rank = int(base["eventRank"])
        context_size = int(metadata["context_size"])
        plan = json.loads(metadata["plan"])
    except (ValueError, KeyError, TypeError) as error:
        raise MappingError(f"{path}: the metadata cannot be read: {error}") from None
    if "base.loc" not in tensors or "base.scale" not in tensors:
        raise MappingError(f"{path}: the file lacks base.loc or base.scale")
    try:
        flow = Flow(plan, tensors["base.loc"], tensors["base.scale"], event_rank, context_size)
    except MappingError as error:
        raise MappingError(f"{path}: {error}") from None
    flow.plan = metadata["plan"]
    flow.load_file_tensors(tensors, path)
    return flow


def save_flow(flow, path):
    """Writes a :class:`Flow` as a model file: its plan text, base and tensors under the file's names."""
    _format.write(path, flow.file_tensors(), flow.plan, flow.event_rank, flow.context_size)
