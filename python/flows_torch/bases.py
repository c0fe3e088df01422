"""The base distributions a model file can hold, as torch modules in zuko's convention.

Each class mirrors a Swift base (``Sources/NormalizingFlows/Distributions``; how a file stores
it: ``IO/BaseCoding.swift``): the same tensors under the same names (``base.<name>`` in the
file, ``<name>`` here), the same settings in the file's ``base`` metadata, and the same
parameterization, so that a gradient step in torch moves the same numbers the Swift optimizer
would. Calling a base, ``base(context)``, returns the equivalent ``torch.distributions``
distribution over flattened events [..., D] (the flow's bijector works on those):

=========================== ============================================ =====================================
type (file ``base`` JSON)   tensors (trained ones are parameters)        torch distribution
=========================== ============================================ =====================================
Normal                      buffers ``loc``, ``scale``                   Independent(Normal(loc, scale))
StudentT (degreesOfFreedom) buffers ``loc``, ``scale``                   Independent(StudentT(ν, loc, scale))
Uniform                     buffers ``low``, ``high``                    Independent(Uniform(low, high))
DiagonalNormal              ``loc``, ``log_scale``                       Independent(Normal(loc, exp(log_scale)))
ConditionalDiagonalNormal   ``network.layers.<l>.weight|bias``           Independent(Normal(μ(c), exp(log σ(c))))
GaussianMixture diagonal    ``logits``, ``means``, ``log_scales``        MixtureSameFamily(Categorical(logits),
                                                                         Independent(Normal(means, exp(log_scales))))
GaussianMixture full        ``logits``, ``means``,                       MixtureSameFamily(Categorical(logits),
                            ``precision_log_diagonal``,                  PrecisionCholeskyNormal(...))
                            ``precision_lower``
=========================== ============================================ =====================================

Sampling from given noise (``sample_from_noise``) is the Swift sampler's map from its noise,
and ``swift_noise(generator, n)`` draws that noise from :class:`flows_torch.swift_random.SwiftRandom`
exactly as the Swift base draws it, so ``flows sample --seed S`` can be rebuilt value for value.
"""

import json
import math
import sys

import torch
from torch import nn
from torch import distributions as D

from .bijectors import MLP, MappingError

# Swift's BaseSettings.logScale: |log σ| below log of the dtype's largest value keeps σ and 1/σ finite.
_LOG_LIMIT = {torch.float32: math.log(torch.finfo(torch.float32).max), torch.float64: math.log(sys.float_info.max)}


def _independent(distribution, rank=1):
    return D.Independent(distribution, rank, validate_args=False) if rank > 0 else distribution


class Base(nn.Module):
    """A base distribution over events of ``event_shape`` (batches of ``batch_shape``).

    ``base(context)``: the torch distribution over flattened events [..., D];
    ``sample_from_noise(noise, context)``: the Swift sampler's map from its noise;
    ``swift_noise(generator, n)``: that noise as the Swift base draws it;
    ``settings()``: the file's ``base`` metadata beside the type.
    """

    type_name = None
    #: Whether samples carry gradients to the base's parameters (a mixture's do not).
    has_rsample = True
    context_size = 0

    def __init__(self, shape, event_rank, dtype):
        super().__init__()
        shape = tuple(int(s) for s in shape)
        if not 0 <= event_rank <= len(shape):
            raise MappingError(f"the {self.type_name} base's event rank {event_rank} does not fit its shape {shape}")
        if dtype not in (torch.float32, torch.float64):
            raise MappingError(f"the {self.type_name} base's dtype {dtype} is neither float32 nor float64")
        self.event_rank = int(event_rank)
        self.event_shape = torch.Size(shape[len(shape) - event_rank:])
        self.batch_shape = torch.Size(shape[: len(shape) - event_rank])
        self.event_size = math.prod(self.event_shape)
        self.dtype = dtype

    def settings(self):
        return {"eventRank": self.event_rank}

    def json(self):
        """The file's ``base`` metadata, laid out as Swift's ``BaseCoding.json`` writes it."""
        fields = [("type", self.type_name)] + sorted(self.settings().items())
        return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in fields) + "}"

    def flat(self, tensor):
        """A tensor of the base's batch and event shape with the event flattened: [batch..., D]."""
        return tensor.reshape(self.batch_shape + (self.event_size,))

    def check(self):
        """Refuses loaded values the Swift base refuses (its ``buffersDidLoad`` and file checks)."""

    def rsample(self, shape, context=None):
        """Samples [*shape, batch..., D] from the torch distribution, differentiable where it is."""
        distribution = self(context)
        return distribution.rsample(shape) if self.has_rsample else distribution.sample(shape)

    def _noise_shape(self, n):
        return (n,) + tuple(self.batch_shape) + (self.event_size,)


class Normal(Base):
    """N(loc, scale²) per element, ``loc`` and ``scale`` fixed buffers (Swift ``Normal``)."""

    type_name = "Normal"

    def __init__(self, loc, scale, event_rank):
        if loc.shape != scale.shape or loc.dtype != scale.dtype:
            raise MappingError("the base's loc and scale must have one shape and dtype")
        super().__init__(loc.shape, event_rank, loc.dtype)
        self.register_buffer("loc", loc.clone())
        self.register_buffer("scale", scale.clone())

    def forward(self, context=None):
        return _independent(D.Normal(self.flat(self.loc), self.flat(self.scale), validate_args=False))

    def sample_from_noise(self, noise, context=None):
        """loc + scale·ε for standard normal ε [..., D]."""
        return self.flat(self.loc) + self.flat(self.scale) * noise

    def swift_noise(self, generator, n):
        return torch.tensor(generator.normals(math.prod(self._noise_shape(n))), dtype=torch.float64).to(self.dtype).reshape(self._noise_shape(n))


class StudentT(Base):
    """Student's t per element with ν degrees of freedom, ``loc`` and ``scale`` fixed buffers
    (Swift ``StudentT``): log p = log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(νπ) − log σ
    − (ν+1)/2 · log(1 + z²/ν), z = (x − μ)/σ, which is ``torch.distributions.StudentT``'s."""

    type_name = "StudentT"

    def __init__(self, degrees_of_freedom, loc, scale, event_rank):
        nu = float(degrees_of_freedom)
        if not (nu >= 1e-3 and math.isfinite(nu)):
            raise MappingError(f"the StudentT base's 'degreesOfFreedom' is {degrees_of_freedom}; it must be at least 0.001 and finite")
        if loc.shape != scale.shape or loc.dtype != scale.dtype:
            raise MappingError("the StudentT base's loc and scale must have one shape and dtype")
        super().__init__(loc.shape, event_rank, loc.dtype)
        self.degrees_of_freedom = nu
        self.register_buffer("loc", loc.clone())
        self.register_buffer("scale", scale.clone())

    def settings(self):
        return {"degreesOfFreedom": self.degrees_of_freedom, "eventRank": self.event_rank}

    def check(self):
        if not torch.isfinite(self.loc).all():
            raise MappingError("the StudentT base's loc must be finite")
        if not (torch.isfinite(self.scale) & (self.scale > 0)).all():
            raise MappingError("the StudentT base's scale must be positive and finite")

    def forward(self, context=None):
        df = torch.tensor(self.degrees_of_freedom, dtype=self.dtype, device=self.loc.device)
        return _independent(D.StudentT(df, self.flat(self.loc), self.flat(self.scale), validate_args=False))

    def sample_from_noise(self, noise, context=None):
        """loc + scale·t for standard t deviates t [..., D] (Z/√(G/ν), G ~ χ²_ν)."""
        return self.flat(self.loc) + self.flat(self.scale) * noise

    def swift_noise(self, generator, n):
        values = generator.student_ts(self.degrees_of_freedom, math.prod(self._noise_shape(n)))
        return torch.tensor(values, dtype=torch.float64).to(self.dtype).reshape(self._noise_shape(n))


class Uniform(Base):
    """Uniform on the box [low, high) per element, ``low`` and ``high`` fixed buffers (Swift
    ``Uniform``): log p = −Σ log(high − low) inside, −∞ outside."""

    type_name = "Uniform"

    def __init__(self, low, high, event_rank):
        if low.shape != high.shape or low.dtype != high.dtype:
            raise MappingError("the Uniform base's low and high must have one shape and dtype")
        super().__init__(low.shape, event_rank, low.dtype)
        self.register_buffer("low", low.clone())
        self.register_buffer("high", high.clone())

    def check(self):
        ok = (self.low < self.high) & torch.isfinite(self.low) & torch.isfinite(self.high) & torch.isfinite(self.high - self.low)
        if not ok.all():
            raise MappingError("the Uniform base's low must lie below its high, both finite with a finite width")

    def forward(self, context=None):
        return _independent(D.Uniform(self.flat(self.low), self.flat(self.high), validate_args=False))

    def sample_from_noise(self, noise, context=None):
        """low + (high − low)·u for u [..., D] in [0, 1)."""
        low, high = self.flat(self.low), self.flat(self.high)
        return low + (high - low) * noise

    def swift_noise(self, generator, n):
        count = math.prod(self._noise_shape(n))
        u = torch.tensor([generator.uniform() for _ in range(count)], dtype=torch.float64).to(self.dtype)
        # Swift's fillUniform keeps the interval half-open when rounding lands on 1.
        u = torch.where(u >= 1, torch.nextafter(torch.ones_like(u), torch.zeros_like(u)), u)
        return u.reshape(self._noise_shape(n))


def _check_log_scale(value, what):
    limit = _LOG_LIMIT[value.dtype]
    if not (value.abs() < limit).all():
        raise MappingError(f"{what} must lie within ±{limit:.1f} so that its scales are finite and positive")


class DiagonalNormal(Base):
    """N(loc, exp(log_scale)²) per element with ``loc`` and ``log_scale`` trained parameters
    (Swift ``DiagonalNormal``, nflows' ``DiagonalNormal``): σ is stored as log σ, so no step
    makes it negative."""

    type_name = "DiagonalNormal"

    def __init__(self, loc, log_scale, event_rank):
        if loc.shape != log_scale.shape or loc.dtype != log_scale.dtype:
            raise MappingError("the DiagonalNormal base's loc and log_scale must have one shape and dtype")
        super().__init__(loc.shape, event_rank, loc.dtype)
        self.loc = nn.Parameter(loc.clone())
        self.log_scale = nn.Parameter(log_scale.clone())

    def check(self):
        if not torch.isfinite(self.loc).all():
            raise MappingError("the DiagonalNormal base's loc must be finite")
        _check_log_scale(self.log_scale, "the DiagonalNormal base's 'base.log_scale'")

    def forward(self, context=None):
        return _independent(D.Normal(self.flat(self.loc), self.flat(self.log_scale).exp(), validate_args=False))

    def sample_from_noise(self, noise, context=None):
        """loc + exp(log_scale)·ε for standard normal ε [..., D]."""
        return self.flat(self.loc) + self.flat(self.log_scale).exp() * noise

    swift_noise = Normal.swift_noise


class ConditionalDiagonalNormal(Base):
    """N(μ(c), diag σ(c)²) with [μ(c), log σ(c)] = network(c), a dense network ``network.layers.<l>``
    with the activation after every layer but the last (Swift ``ConditionalDiagonalNormal``,
    nflows' ``ConditionalDiagonalNormal``)."""

    type_name = "ConditionalDiagonalNormal"

    def __init__(self, features, context_size, hidden_sizes, activation_name, dtype):
        if features < 1 or context_size < 1 or any(h < 1 for h in hidden_sizes):
            raise MappingError(f"a ConditionalDiagonalNormal base needs positive sizes, got features {features}, "
                               f"context {context_size}, hidden {list(hidden_sizes)}")
        super().__init__((features,), 1, dtype)
        self.features, self.context_size = int(features), int(context_size)
        self.hidden_sizes, self.activation_name = [int(h) for h in hidden_sizes], activation_name
        self.network = MLP([self.context_size] + self.hidden_sizes + [2 * self.features], activation_name, dtype)

    def settings(self):
        return {"activation": self.activation_name, "contextSize": self.context_size, "features": self.features,
                "hiddenSizes": self.hidden_sizes}

    def loc_and_log_scale(self, context):
        if context is None:
            raise ValueError(f"the ConditionalDiagonalNormal base needs a context of size {self.context_size}")
        out = self.network(context)
        return out[..., : self.features], out[..., self.features:]

    def forward(self, context=None):
        loc, log_scale = self.loc_and_log_scale(context)
        return _independent(D.Normal(loc, log_scale.exp(), validate_args=False))

    def sample_from_noise(self, noise, context=None):
        """μ(c) + σ(c)·ε for standard normal ε [..., D]."""
        loc, log_scale = self.loc_and_log_scale(context)
        return loc + log_scale.exp() * noise

    swift_noise = Normal.swift_noise


class PrecisionCholeskyNormal(D.Distribution):
    """N(μ, Σ) with Σ⁻¹ = PPᵀ, P lower triangular with diagonal exp(ℓ) (the components of Swift's
    full-covariance ``GaussianMixture``; scikit-learn's ``precisions_cholesky``):
    log p = −½‖Pᵀ(x − μ)‖² + Σ ℓ − (D/2) log 2π; samples μ + P⁻ᵀε."""

    arg_constraints = {}
    has_rsample = True

    def __init__(self, loc, log_diagonal, lower):
        self.loc, self.log_diagonal = loc, log_diagonal
        d = loc.shape[-1]
        mask = torch.ones(d, d, dtype=torch.bool, device=loc.device).tril(-1)
        self.factor = torch.where(mask, lower, torch.zeros_like(lower)) + torch.diag_embed(log_diagonal.exp())
        super().__init__(batch_shape=loc.shape[:-1], event_shape=loc.shape[-1:], validate_args=False)

    def log_prob(self, value):
        z = ((value - self.loc).unsqueeze(-2) @ self.factor).squeeze(-2)   # (x − μ)ᵀP = (Pᵀ(x − μ))ᵀ
        d = self.loc.shape[-1]
        return -0.5 * (z * z).sum(-1) + self.log_diagonal.sum(-1) - 0.5 * d * math.log(2 * math.pi)

    def rsample(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.batch_shape + self.event_shape
        return self.from_noise(torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device))

    def from_noise(self, noise):
        """μ + P⁻ᵀε: Pᵀ·offset = ε, solved by back substitution."""
        factor = self.factor.expand(noise.shape[:-1] + self.factor.shape[-2:])
        offset = torch.linalg.solve_triangular(factor.transpose(-1, -2), noise.unsqueeze(-1), upper=True).squeeze(-1)
        return self.loc + offset


class GaussianMixture(Base):
    """Σⱼ wⱼ N(μⱼ, Σⱼ), w = softmax(logits), diagonal (σ = exp(log_scales)) or full covariances
    (Σⱼ⁻¹ = PⱼPⱼᵀ, see :class:`PrecisionCholeskyNormal`), every tensor a trained parameter (Swift
    ``GaussianMixture``). Samples pick a component by its weight, so they carry no gradient to
    the mixture (as in Swift and torch's ``MixtureSameFamily``)."""

    type_name = "GaussianMixture"
    has_rsample = False

    def __init__(self, covariance, logits, means, log_scales=None, precision_log_diagonal=None, precision_lower=None):
        if means.dim() != 2 or logits.shape != means.shape[:1] or min(means.shape) < 1:
            raise MappingError(f"the GaussianMixture base needs logits [K] and means [K, D], got {tuple(logits.shape)} and {tuple(means.shape)}")
        k, d = means.shape
        super().__init__((d,), 1, means.dtype)
        if covariance not in ("diagonal", "full"):
            raise MappingError(f"the GaussianMixture base's 'covariance' must be one of diagonal, full, got {covariance!r}")
        self.covariance = covariance
        self.logits = nn.Parameter(logits.clone())
        self.means = nn.Parameter(means.clone())
        if covariance == "diagonal":
            self.log_scales = nn.Parameter((torch.zeros(k, d, dtype=means.dtype) if log_scales is None else log_scales).clone())
        else:
            self.precision_log_diagonal = nn.Parameter(
                (torch.zeros(k, d, dtype=means.dtype) if precision_log_diagonal is None else precision_log_diagonal).clone())
            self.precision_lower = nn.Parameter(
                (torch.zeros(k, d, d, dtype=means.dtype) if precision_lower is None else precision_lower).clone())

    def settings(self):
        return {"covariance": self.covariance}

    def check(self):
        name = "log_scales" if self.covariance == "diagonal" else "precision_log_diagonal"
        _check_log_scale(getattr(self, name), f"the GaussianMixture base's 'base.{name}'")

    def components(self):
        if self.covariance == "diagonal":
            return _independent(D.Normal(self.means, self.log_scales.exp(), validate_args=False))
        return PrecisionCholeskyNormal(self.means, self.precision_log_diagonal, self.precision_lower)

    def forward(self, context=None):
        return D.MixtureSameFamily(D.Categorical(logits=self.logits, validate_args=False), self.components(),
                                   validate_args=False)

    def sample_from_noise(self, noise, context=None):
        """The Swift sampler's map from (u [N], ε [N, D]): component j is the first whose
        cumulative weight exceeds u, then μⱼ + σⱼ·ε (diagonal) or μⱼ + Pⱼ⁻ᵀε (full)."""
        u, eps = noise
        weights = torch.softmax(self.logits, 0).double()
        cumulative = torch.cumsum(weights, 0)[:-1]
        j = (u.double().unsqueeze(-1) >= cumulative).sum(-1)
        if self.covariance == "diagonal":
            return self.means[j] + self.log_scales[j].exp() * eps
        components = PrecisionCholeskyNormal(self.means[j], self.precision_log_diagonal[j], self.precision_lower[j])
        return components.from_noise(eps)

    def swift_noise(self, generator, n):
        """Per row one uniform, then D normals, in the order Swift draws them."""
        u, eps = [], []
        for _ in range(n):
            u.append(generator.uniform())
            eps.extend(generator.normals(self.event_size))
        return (torch.tensor(u, dtype=torch.float64),
                torch.tensor(eps, dtype=torch.float64).to(self.dtype).reshape(n, self.event_size))


TYPES = {cls.type_name: cls for cls in (Normal, StudentT, Uniform, DiagonalNormal, ConditionalDiagonalNormal, GaussianMixture)}


def _tensor(tensors, name, type_name):
    if f"base.{name}" not in tensors:
        raise MappingError(f"the {type_name} base's tensor 'base.{name}' is missing")
    return tensors[f"base.{name}"]


def _int(settings, key, type_name, lowest=0):
    value = settings.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
        raise MappingError(f"the {type_name} base's '{key}' is missing or not a whole number ≥ {lowest}")
    return value


def from_file(settings, tensors):
    """The base a file's ``base`` metadata (decoded) describes, filled with its ``base.`` tensors
    and checked as the Swift loader checks them."""
    name = settings.get("type") if isinstance(settings, dict) else None
    if name not in TYPES:
        raise MappingError(f"unsupported base distribution {str(name)[:80]!r} (model files hold {', '.join(TYPES)})")
    if name in ("Normal", "StudentT", "DiagonalNormal"):
        loc = _tensor(tensors, "loc", name)
        rank = _int(settings, "eventRank", name)
        if name == "Normal":
            base = Normal(loc, _tensor(tensors, "scale", name), rank)
        elif name == "StudentT":
            nu = settings.get("degreesOfFreedom")
            if not isinstance(nu, (int, float)) or isinstance(nu, bool):
                raise MappingError("the StudentT base's 'degreesOfFreedom' is missing or not a finite number")
            base = StudentT(nu, loc, _tensor(tensors, "scale", name), rank)
        else:
            base = DiagonalNormal(loc, _tensor(tensors, "log_scale", name), rank)
    elif name == "Uniform":
        base = Uniform(_tensor(tensors, "low", name), _tensor(tensors, "high", name), _int(settings, "eventRank", name))
    elif name == "ConditionalDiagonalNormal":
        hidden = settings.get("hiddenSizes")
        if not isinstance(hidden, list) or not all(isinstance(h, int) and not isinstance(h, bool) for h in hidden):
            raise MappingError("the ConditionalDiagonalNormal base's 'hiddenSizes' is missing or not a list of whole numbers")
        activation = settings.get("activation")
        first = _tensor(tensors, "network.layers.0.weight", name)
        base = ConditionalDiagonalNormal(_int(settings, "features", name, 1), _int(settings, "contextSize", name, 1),
                                         hidden, activation, first.dtype)
        base.network.load_state_dict(_network_state(base, tensors, name))
    else:
        covariance = settings.get("covariance")
        if covariance == "diagonal":
            base = GaussianMixture("diagonal", _tensor(tensors, "logits", name), _tensor(tensors, "means", name),
                                   log_scales=_tensor(tensors, "log_scales", name))
        elif covariance == "full":
            base = GaussianMixture("full", _tensor(tensors, "logits", name), _tensor(tensors, "means", name),
                                   precision_log_diagonal=_tensor(tensors, "precision_log_diagonal", name),
                                   precision_lower=_tensor(tensors, "precision_lower", name))
        else:
            raise MappingError(f"the GaussianMixture base's 'covariance' must be one of diagonal, full, got {covariance!r}")
    return base


def _network_state(base, tensors, name):
    state = {}
    for key, value in base.network.state_dict().items():
        given = _tensor(tensors, f"network.{key}", name)
        if given.shape != value.shape:
            raise MappingError(f"the {name} base's 'base.network.{key}' has shape {tuple(given.shape)}, "
                               f"not {tuple(value.shape)} as its settings say")
        state[key] = given
    return state


def check_tensors(base, tensors, path):
    """Refuses file tensors under ``base.`` that the base does not hold, mis-shaped or non-finite
    ones, and values the Swift base refuses; then loads them."""
    state = base.state_dict()
    given = {k[len("base."):]: v for k, v in tensors.items() if k.startswith("base.")}
    extra = sorted(set(given) - set(state))
    if extra:
        raise MappingError(f"{path}: the file has an entry 'base.{extra[0]}' that its {base.type_name} base does not")
    for name, value in state.items():
        if name not in given:
            raise MappingError(f"{path}: the file lacks 'base.{name}'")
        if tuple(given[name].shape) != tuple(value.shape):
            raise MappingError(f"{path}: 'base.{name}' has shape {tuple(given[name].shape)} in the file and {tuple(value.shape)} in the base")
        if given[name].dtype != base.dtype:
            raise MappingError(f"{path}: 'base.{name}' is {given[name].dtype}, the base's other tensors {base.dtype}")
        if not torch.isfinite(given[name]).all():
            raise MappingError(f"{path}: 'base.{name}' holds NaN or ±inf")
    with torch.no_grad():
        base.load_state_dict({k: given[k] for k in state})
    try:
        base.check()
    except MappingError as error:
        raise MappingError(f"{path}: {error}") from None
