"""A model file as a ``torch.nn.Module`` in zuko's convention, and back.

``flow(context)`` returns a ``torch.distributions.Distribution``:
log p(y | c) = log p_base(f⁻¹(y; c) | c) + log|det ∂f⁻¹/∂y|, samples y = f(x; c) with x from the
base (:mod:`flows_torch.bases`: normal, Student's t, uniform, trained or conditional diagonal
normal, Gaussian mixture).
"""

import json
import math

import torch
from torch import nn

from . import _format
from . import bases
from .bijectors import MappingError
from .plans import Spec, build


class FlowDistribution(torch.distributions.Distribution):
    """The distribution of a flow for one context (or none)."""

    arg_constraints = {}
    has_rsample = True

    def __init__(self, flow, context=None):
        self.flow, self.context = flow, context
        batch = flow.base.batch_shape
        if context is not None:
            batch = torch.broadcast_shapes(batch, context.shape[:-1])
        super().__init__(batch_shape=batch, event_shape=flow.event_shape, validate_args=False)

    def _flatten(self, value):
        rank = len(self.event_shape)
        if tuple(value.shape[value.dim() - rank:]) != tuple(self.event_shape):
            raise ValueError(f"values must end with the event shape {tuple(self.event_shape)}, got {tuple(value.shape)}")
        return value.reshape(value.shape[: value.dim() - rank] + (self.flow.event_size,))

    def _unflatten(self, y):
        return y.reshape(y.shape[:-1] + self.event_shape)

    def log_prob(self, value):
        """log p(y); rows whose inverse overflows (non-finite noise) or whose result is NaN get −∞,
        as in Swift's ``Flow.logProb``."""
        x, log_det = self.flow.bijector.inverse(self._flatten(value), self.context)
        finite = torch.isfinite(x).all(-1)
        result = self.flow.base(self.context).log_prob(torch.where(finite.unsqueeze(-1), x, torch.zeros_like(x))) + log_det
        overflowed = ~finite | torch.isnan(result)
        return torch.where(overflowed, torch.full_like(result, -math.inf), result)

    def _base_sample(self, sample_shape):
        """x from the base for ``sample_shape`` + the batch shape (differentiable unless the base's
        samples are not, as a mixture's)."""
        base = self.flow.base
        shape = torch.Size(sample_shape) + self.batch_shape[: len(self.batch_shape) - len(base.batch_shape)]
        if self.context is not None and base.context_size > 0:
            # The conditional base's distribution already has the context's batch shape.
            return base.rsample(torch.Size(sample_shape), self.context)
        return base.rsample(shape, self.context)

    def rsample(self, sample_shape=torch.Size()):
        y, _ = self.flow.bijector(self._base_sample(sample_shape), self.context)
        return self._unflatten(y)

    def sample_from_noise(self, noise):
        """y = f(x) for x the base's sample from its noise (``flow.base.sample_from_noise``: for a
        normal base, x = loc + scale·ε for standard normal ε [..., D]), the Swift sampler's map."""
        y, _ = self.flow.bijector(self.flow.base.sample_from_noise(noise, self.context), self.context)
        return self._unflatten(y)

    def rsample_and_log_prob(self, sample_shape=torch.Size()):
        x = self._base_sample(sample_shape)
        y, log_det = self.flow.bijector(x, self.context)
        return self._unflatten(y), self.flow.base(self.context).log_prob(x) - log_det


class Flow(nn.Module):
    """A flow read from (or written to) a model file.

    Attributes: ``bijector`` (parameters named as in the file without the ``bijector.``
    prefix), ``base`` (a :mod:`flows_torch.bases` module: ``base(context)`` is its torch
    distribution over flattened events; a Normal base's ``loc`` and ``scale`` are buffers, not
    trained, as in Swift, while trained bases hold parameters), so ``state_dict()`` holds exactly
    the file's tensors under the file's names, ``plan`` (the plan JSON text, written back as
    read), ``base_json`` (the base metadata, likewise), ``context_size``, ``data_layout`` (the
    ``data_layout`` metadata text, how ``flows fit`` read the data file, likewise; None when the
    file has none). Created in evaluation
    mode (BatchNorm uses its running statistics, ActNorm does not initialise itself), as Swift's
    ``Flow``; call ``.train()`` to train.
    """

    def __init__(self, plan_json, base, context_size=0):
        super().__init__()
        plan = json.loads(plan_json) if isinstance(plan_json, str) else plan_json
        self.plan = plan_json if isinstance(plan_json, str) else json.dumps(plan_json, sort_keys=True, separators=(",", ":"))
        if not isinstance(base, bases.Base):
            raise MappingError(f"the base must be a flows_torch.bases module, got {type(base).__name__}")
        self.context_size = int(context_size)
        if base.context_size and base.context_size != self.context_size:
            raise MappingError(f"the base takes a context of size {base.context_size}, but the flow's context size is {self.context_size}")
        self.event_shape = base.event_shape
        self.event_size = base.event_size
        self.base = base
        self.base_json = base.json()
        self.data_layout = None
        self.bijector = build(plan, Spec(tuple(self.event_shape), self.context_size, base.dtype))
        self.eval()

    @classmethod
    def from_plan(cls, plan, event_shape, context_size=0, dtype=torch.float32, base=None):
        """A flow for ``plan`` (JSON text or object) on ``base`` (a standard normal over
        ``event_shape`` when omitted), its bijector's parameters zero (fill them, or load a state,
        before use)."""
        shape = tuple(event_shape)
        if base is None:
            base = bases.Normal(torch.zeros(shape, dtype=dtype), torch.ones(shape, dtype=dtype), len(shape))
        return cls(plan, base, context_size)

    @property
    def dtype(self):
        """The dtype of the base, the bijector and every sample and density."""
        return self.base.dtype

    @property
    def event_rank(self):
        return self.base.event_rank

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
        tensors = {f"base.{name}": value for name, value in self.base.state_dict().items()}
        for name, value in self.bijector.state_dict().items():
            tensors[f"bijector.{name}"] = value
        return tensors

    @classmethod
    def from_transforms(cls, plans, states, features, dtype, source, context_size=0, base=None, embedding=None):
        """The flow of another library's transforms, given first to last in the data-to-noise
        direction, each as our plan object and its tensors under our names: one ``Compose`` of
        them, reversed (our Compose runs its parts' inverses last to first), on ``base`` (a
        :mod:`flows_torch.bases` module; a standard normal when omitted). ``embedding``, a pair
        (``ContextEmbedding`` options without ``inner``, its tensors ``embedding.…``), wraps the
        Compose so its parts see the embedded context. ``source`` names the flow in errors."""
        plan = {"type": "Compose", "options": {"parts": plans[::-1]}}
        tensors = {}
        if embedding is not None:
            plan = {"type": "ContextEmbedding", "options": {**embedding[0], "inner": plan}}
            tensors = {f"bijector.{name}": value for name, value in embedding[1].items()}
        flow = cls.from_plan(plan, (features,), context_size=context_size, dtype=dtype, base=base)
        tensors.update({f"bijector.{i}.{name}": value for i, state in enumerate(states[::-1]) for name, value in state.items()})
        flow.load_file_tensors(tensors, source)
        flow.plan = json.dumps(plan, sort_keys=True, separators=(",", ":"))
        return flow

    def load_file_tensors(self, tensors, path="the state"):
        """Fills the bijector's parameters and buffers from file tensors (``bijector.…``),
        refusing missing, extra or mis-shaped entries; the base's (``base.…``) are
        :func:`flows_torch.bases.check_tensors`' business."""
        state = self.bijector.state_dict()
        given = {k[len("bijector."):]: v for k, v in tensors.items() if k.startswith("bijector.")}
        extra = sorted(k for k in set(tensors) - {f"bijector.{k}" for k in state} if not k.startswith("base."))
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


def from_file_state(plan_text, base_text, context_size, tensors, path):
    """The :class:`Flow` of a plan, base metadata and context size (as a model file or a
    checkpoint holds them) with its tensors loaded and checked."""
    try:
        base_settings = json.loads(base_text)
        context_size = int(context_size)
        plan = json.loads(plan_text)
    except (ValueError, TypeError) as error:
        raise MappingError(f"{path}: the metadata cannot be read: {error}") from None
    try:
        base = bases.from_file(base_settings, tensors)
        bases.check_tensors(base, tensors, path)
        flow = Flow(plan, base, context_size)
    except MappingError as error:
        text = str(error)
        raise MappingError(text if text.startswith(f"{path}:") else f"{path}: {text}") from None
    flow.plan = plan_text
    flow.base_json = base_text
    flow.load_file_tensors(tensors, path)
    return flow


def load(path):
    """A model file as a :class:`Flow` (see the module docstring)."""
    tensors, metadata = _format.read(path)
    flow = from_file_state(metadata["plan"], metadata["base"], metadata["context_size"], tensors, path)
    flow.data_layout = metadata.get("data_layout")
    return flow


def save_flow(flow, path):
    """Writes a :class:`Flow` as a model file: its plan and base metadata and tensors under the file's names."""
    _format.write(path, flow.file_tensors(), flow.plan, flow.base_json, flow.context_size, flow.data_layout)
