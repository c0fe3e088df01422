"""zuko flows as model files of the Swift library.

Mapped exactly (zuko 1.x):

- ``MaskedAutoregressiveTransform`` with ``MonotonicAffineTransform`` (zuko's ``MAF``, any
  ``passes``, orders from ``order``) → ``Invert(AffineAutoregressive)``. zuko's affine map is
  z = x·exp(L(s)) + shift with L(s) = s/(1 + |s|/(−log slope)), our ``softClipped(bound:
  −log slope)``; raw parameters (shift, s) per dimension in the same [D, P] layout.
- ``GeneralCouplingTransform`` with ``MonotonicAffineTransform`` (zuko's ``RealNVP``/``NICE``)
  → ``Invert(AffineCoupling(mask: given))`` with the MLP's layers copied.
- ``MonotonicRQSTransform`` (zuko's ``NSF``, autoregressive or with ``passes=2``, which zuko
  builds as a masked network in blocks, not as a coupling network) under either transform →
  ``Invert(SplineAutoregressive)`` or ``Invert(SplineCoupling)`` whose spline has the
  parameterization ``{"softClipped": {"slope": slope}}`` and zuko's bound (5 unless the
  univariate's ``bound`` says otherwise). zuko (Durkan et al. 2019's spline) soft-clips the K
  width and K height logits, w/(1 + |2w/log slope|), softmaxes them with no minimum bin size
  and places the knots at B(2·cumsum − 1); the K − 1 interior derivatives are exp(d/(1 +
  |d/log slope|)) and the end ones 1; outside [−B, B] the map is the identity. That is our
  ``RationalQuadraticSplineTransform.Parameterization.softClipped(slope:)``. The raw
  parameters per feature are laid out (K widths, K heights, K − 1 derivatives), as ours.
- The base ``DiagNormal(loc, scale)`` → our ``Normal`` (``base.loc``, ``base.scale``) when they
  are buffers (zuko's flows), our trained ``DiagonalNormal`` (``base.loc``, ``base.log_scale`` =
  log scale) when they are parameters (``UnconditionalDistribution(DiagNormal, …, buffer=False)``).
- The base ``GMM`` without a context → our ``GaussianMixture`` (see ``_gmm``). A GMM with a
  context (its weights, means and covariances from a network) and other bases are refused.

zuko transforms map data to noise, first transform first; our flows map noise to data, so the
parts are written in reverse order, each inverted.

zuko's masked network gives hidden units the input sets of the outputs it serves (a unit per
distinct output row, cycled over the rows in ``torch.unique`` order); ours gives hidden units
degrees in ascending order (``hidden_degrees``). Both connect a unit to the units whose input
sets it contains, so each zuko unit is placed in a unit of ours whose degree is the largest
position (in our order) among its inputs. Our layer then needs, for every degree, as many
units as zuko uses of it: its width is (number of degrees) × (largest such count), and the
units zuko does not fill get zero weights in and out (they add nothing). Our mask contains
zuko's at the mapped places and zuko's masked-out weights are written as zeros, so the
network computes the same function. The hidden widths in the written plan can therefore
exceed zuko's ``hidden_features`` (they are equal when each width is a multiple of the number
of degrees, D − 1, or D with a context, and zuko cycles evenly).

Not mapped, with the reason in the error: circular splines (``NCSF``: ``CircularRQSTransform``
on a ``BoxUniform`` base; see ``_refuse_circular``), univariate keywords other than ``slope`` (and the spline's
``bound``), residual masked networks, LayerNorm (``normalize=True``), adjacency-given MADEs
without an ``order``, one-feature flows (``ElementWiseTransform``), and every other transform.
"""

import functools
import math

import torch
from torch import nn

from .bijectors import MappingError, hidden_degrees
from .flow import Flow, save_flow


def _zuko():
    try:
        import zuko  # noqa: F401
        from zuko.flows.autoregressive import MaskedAutoregressiveTransform
        from zuko.flows.coupling import GeneralCouplingTransform
        from zuko.transforms import MonotonicAffineTransform, MonotonicRQSTransform
    except ImportError as error:  # pragma: no cover - zuko is optional
        raise MappingError(f"zuko is not importable: {error}") from None
    return MaskedAutoregressiveTransform, GeneralCouplingTransform, (MonotonicAffineTransform, MonotonicRQSTransform)


_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}


def _activation_name(module):
    if type(module) in _ACTIVATIONS:
        return _ACTIVATIONS[type(module)]
    if isinstance(module, nn.ELU) and module.alpha == 1.0:
        return "elu"
    if isinstance(module, nn.LeakyReLU) and module.negative_slope == 0.01:
        return "leakyRelu"
    if isinstance(module, nn.Softplus) and module.beta == 1:
        return "softplus"
    raise MappingError(f"zuko activation {module!r} has no counterpart (relu, tanh, sigmoid, ELU(1), LeakyReLU(0.01), Softplus(1))")


def _layers(hyper, what):
    """The linear layers and the one activation of a zuko MLP or MaskedMLP."""
    linears, activations = [], set()
    for module in hyper.children():
        if hasattr(module, "weight") and isinstance(getattr(module, "weight"), torch.Tensor):
            if module.weight.dim() != 2:
                raise MappingError(f"{what}: stacked linear layers are not mapped")
            linears.append(module)
        elif type(module).__name__ == "Residual":
            raise MappingError(f"{what}: residual blocks (residual=True) are not mapped")
        elif type(module).__name__ == "LayerNorm":
            raise MappingError(f"{what}: LayerNorm (normalize=True) is not mapped")
        else:
            activations.add(_activation_name(module))
    if len(activations) > 1:
        raise MappingError(f"{what}: several activations {sorted(activations)} in one network are not mapped")
    return linears, (activations.pop() if activations else "relu")


def _univariate(transform, types, what):
    """Our elementwise transform for a zuko univariate: ``(plan type stem, transform options, P)``.

    ``MonotonicAffineTransform(slope)`` → ``("Affine", {"scale": softClipped(−log slope)}, 2)``;
    ``MonotonicRQSTransform(bound, slope)`` (raw shapes (K,), (K,), (K − 1,)) → ``("Spline",
    {"transform": zuko's parameterization}, 3K − 1)``; anything else is refused.
    """
    affine_type, spline_type = types
    univariate = transform.univariate
    keywords = {}
    if isinstance(univariate, functools.partial):
        keywords, univariate = univariate.keywords, univariate.func
    if univariate not in (affine_type, spline_type):
        name = getattr(univariate, "__name__", type(univariate).__name__)
        if name in _MONOTONIC_REFUSED:
            raise MappingError(f"{what}: {_MONOTONIC_REFUSED[name]}")
        raise MappingError(f"{what}: univariate transform {name} is not mapped (MonotonicAffineTransform and "
                           "MonotonicRQSTransform are)")
    unknown = set(keywords) - {"slope", "bound"} if univariate is spline_type else set(keywords) - {"slope"}
    if unknown:
        raise MappingError(f"{what}: univariate keywords {sorted(unknown)} are not mapped")
    slope = float(keywords.get("slope", 1e-3))
    if not 0 < slope < 1:
        raise MappingError(f"{what}: slope {slope} must lie in (0, 1)")
    shapes = [tuple(s) for s in transform.shapes]
    if univariate is affine_type:
        if shapes != [(), ()]:
            raise MappingError(f"{what}: parameter shapes {transform.shapes} are not the affine (shift, scale)")
        return "Affine", {"scale": {"softClipped": {"bound": -math.log(slope)}}}, 2
    bins = shapes[0][0] if len(shapes) == 3 and len(shapes[0]) == 1 else 0
    if bins < 2 or shapes != [(bins,), (bins,), (bins - 1,)]:
        raise MappingError(f"{what}: spline parameter shapes {transform.shapes} are not (K,), (K,), (K − 1,) with K ≥ 2")
    bound = float(keywords.get("bound", 5.0))
    if not 0 < bound < math.inf:
        raise MappingError(f"{what}: spline bound {bound} must be positive and finite")
    # The minimum sizes and logit scale do not apply to the soft-clipped parameterization; they
    # are written with their defaults so that the plan decodes as any spline plan does.
    options = {"bins": bins, "bound": bound, "minimumBinWidth": 1e-3, "minimumBinHeight": 1e-3, "minimumDerivative": 1e-3,
               "logitScale": 1.0, "parameterization": {"softClipped": {"slope": slope}}}
    return "Spline", {"transform": options}, 3 * bins - 1


def _masked_autoregressive(t, types, context, dtype, what):
    """Plan and tensors for a zuko MaskedAutoregressiveTransform (see the module docstring)."""
    sum_of_squares = _sum_of_squares(t, what)
    stem, transform_options, p = sum_of_squares[:3] if sum_of_squares else _univariate(t, types, what)
    if t.order is None:
        raise MappingError(f"{what}: MADEs built from an adjacency matrix (no order) are not mapped")
    linears, activation = _layers(t.hyper, what)
    d = t.order.shape[0]
    rank = t.order.tolist()
    # Our order: dimensions by zuko's rank (ties, zuko's blocks for passes < D, by index).
    order = sorted(range(d), key=lambda i: (rank[i], i))
    widths, tensors = place_masked_network(
        [(lin.weight, lin.bias, lin.mask) for lin in linears], d, context, order, p)
    tensors["conditioner.order"] = torch.tensor(order, dtype=torch.float64)
    if sum_of_squares:
        _map_outputs(tensors, f"conditioner.layers.{len(linears) - 1}", *sum_of_squares[3:])
    plan = {"type": "Invert", "options": {"inner": {"type": stem + "Autoregressive", "options": {
        "conditioner": {"activation": activation, "hiddenSizes": widths, "order": {"given": {"_0": order}},
                        "parameterization": "standard", "skipConnections": False},
        **transform_options}}}}
    return plan, tensors


# zuko's monotonic univariates whose maps no parameters of ours reproduce, with the reason.
_MONOTONIC_REFUSED = {
    "MNN": "zuko's NAF transformer (MNN) is a monotonic MLP with positive weights shared by all features and fed "
           "(x, signal); ours is the deep sigmoidal flow y = logit Σⱼ wⱼσ(aⱼx + bⱼ) of Huang et al. with every weight "
           "from the conditioner (DeepSigmoidalAutoregressive): no parameters of ours compute the same map",
    "UMNN": "zuko's UNAF integrand (UMNN) is one ELU MLP shared by all features and fed (t, signal), "
            "g = exp(h/(1 + |h/7|)); ours is g = softplus(c + Σₖ vₖ tanh(aₖt + bₖ)) + 10⁻³ with every weight from the "
            "conditioner (UnconstrainedMonotonicAutoregressive): the integrands differ",
    "BoundedBernsteinTransform": "zuko's BPF coefficients are a softmax of the network's outputs scaled to 2B − 4δ, with two fixed "
                                 "steps δ = 2B/(M + 4) at each end (a polynomial of degree outputs + 4); ours are a cumulative "
                                 "softplus of the outputs (BernsteinPolynomialAutoregressive): the outputs map to different "
                                 "polynomials, and no network of ours outputs the softmax's inverse",
    "BernsteinTransform": "zuko's BernsteinTransform repeats its end steps, shifts its coefficients by n·log(2)/2 and "
                          "extrapolates from u = ε and 1 − ε; ours (BernsteinPolynomialAutoregressive) has none of these",
}


def _sum_of_squares(t, what):
    """zuko's SOSPF univariate (``ShiftedSOSPTransform``: y = c + ∫₀ˣ g with
    g(t) = (1/K) Σₖ (1 + Σⱼ aₖⱼ (t/B)ʲ)² + s, B = 10, by an exact Gauss–Legendre rule) as our
    ``SumOfSquaresPolynomialTransform`` (g = ε + ((1 − ε)/K) Σₖ (1 + Σⱼ qₖⱼ tʲ)², ε = 10⁻³, integral
    in closed form): equal when s = ε and qₖ₀ = (1 + aₖ₀)/√(1 − ε) − 1, qₖⱼ = aₖⱼ/(Bʲ√(1 − ε)),
    c unchanged. Returns ``(stem, options, P, scale, shift)`` (the affine map of each of the P
    outputs), or None for other univariates; refuses other slopes and keywords."""
    univariate, keywords = t.univariate, {}
    if isinstance(univariate, functools.partial):
        keywords, univariate = univariate.keywords, univariate.func
    if getattr(univariate, "__name__", "") != "ShiftedSOSPTransform":
        return None
    floor = 1e-3
    unknown = set(keywords) - {"slope"}
    if unknown:
        raise MappingError(f"{what}: SOSPF keywords {sorted(unknown)} are not mapped")
    slope = float(keywords.get("slope", floor))
    if slope != floor:
        raise MappingError(f"{what}: SOSPF slope {slope}: our sum-of-squares polynomial's floor ε is fixed at 10⁻³, "
                           "the slope of zuko's default SOSPF")
    shapes = [tuple(s) for s in t.shapes]
    if len(shapes) != 2 or len(shapes[0]) != 2 or shapes[1] != ():
        raise MappingError(f"{what}: SOSPF parameter shapes {t.shapes} are not (K, L + 1) and ()")
    k, terms = shapes[0]
    # zuko scales t by its transform's bound (MonotonicTransform's, 10 in zuko 1.x): read it off one.
    polynomial = univariate(torch.zeros(k, terms), torch.zeros(()), **keywords).transforms[0]
    bound = float(polynomial.bound)
    root = math.sqrt(1 - floor)
    scale = [bound ** -(r % terms) / root for r in range(k * terms)] + [1.0]
    shift = [1 / root - 1 if r % terms == 0 else 0.0 for r in range(k * terms)] + [0.0]
    return ("SumOfSquaresPolynomial", {"transform": {"polynomials": k, "degree": terms - 1}}, k * terms + 1,
            torch.tensor(scale, dtype=torch.float64), torch.tensor(shift, dtype=torch.float64))


def _map_outputs(tensors, layer, scale, shift):
    """Output j·P + r of the network's last layer becomes scale[r]·output + shift[r] (computed in float64)."""
    weight, bias = tensors[f"{layer}.weight"], tensors[f"{layer}.bias"]
    p = scale.shape[0]
    rows = weight.shape[0] // p
    tensors[f"{layer}.weight"] = (weight.double() * scale.repeat(rows)[:, None]).to(weight.dtype)
    tensors[f"{layer}.bias"] = (bias.double() * scale.repeat(rows) + shift.repeat(rows)).to(bias.dtype)


def place_masked_network(layers, d, context, order, p, shared_units=False, return_slots=False):
    """Our MADE's widths and tensors (``conditioner.layers.<l>.weight|bias``) computing what a
    degree-masked network of another library computes.

    ``layers``: (weight, bias, mask) per layer, inputs [x (D), context (C)], outputs laid out
    [D, P]; ``order``: our variable order (dimensions by position). Each hidden unit of theirs
    gets the largest degree among the units (or inputs) its mask connects it to, and a unit of
    ours of that degree (ours come ``hidden_degrees``-sorted, equally many per degree, so a
    layer is (number of degrees) × (most units of one degree) wide); units left over have zero
    weights in and out. Our masks contain theirs at the mapped places (checked), and their
    masked-out weights are written as zeros, so both compute the same function.
    ``shared_units``: the hidden layers add to one another (a residual MADE), so each unit must
    land in the same place in every layer (checked). ``return_slots``: also return, per hidden
    layer, the unit of ours each of their units landed in.
    """
    position = [0] * d
    for k, i in enumerate(order):
        position[i] = k + 1
    input_degree = position + [0] * context
    base = 0 if context > 0 else 1
    count = d if context > 0 else max(d - 1, 1)   # our hidden degrees: 1…max(D − 1, 1), or 0…D − 1
    degrees, previous = [], input_degree
    for weight, _, mask in layers[:-1]:
        mask = mask.bool()
        unit_degrees = [max([previous[j] for j in range(mask.shape[1]) if mask[u, j]] + [base])
                        for u in range(mask.shape[0])]
        degrees.append(unit_degrees)
        previous = unit_degrees
    widths, slots = [], []
    for unit_degrees in degrees:
        per = max(sum(1 for g in unit_degrees if g == k) for k in set(unit_degrees))
        ours = hidden_degrees(count * per, d, context > 0)
        used, slot = {}, []
        for g in unit_degrees:
            slot.append(ours.index(g) + used.get(g, 0))
            used[g] = used.get(g, 0) + 1
        widths.append(count * per)
        slots.append(slot)
    if shared_units and any(slot != slots[0] for slot in slots):
        raise MappingError("the residual network's layers give their units different degrees; ours share them")
    # Check: our connectivity contains theirs at the mapped places.
    our_degrees = [input_degree] + [hidden_degrees(w, d, context > 0) for w in widths]
    output_degree = [position[j // p] for j in range(d * p)]
    rows_of = slots + [list(range(d * p))]
    columns_of = [list(range(d + context))] + slots
    tensors, sizes = {}, [d + context] + widths + [d * p]
    for l, (weight, bias, mask) in enumerate(layers):
        rows, columns = rows_of[l], columns_of[l]
        last = l == len(layers) - 1
        target = torch.tensor([output_degree[r] if last else our_degrees[l + 1][r] for r in rows])
        source = torch.tensor([our_degrees[l][c] for c in columns])
        allowed = target[:, None] > source[None, :] if last else target[:, None] >= source[None, :]
        if (mask.bool() & ~allowed).any():
            raise MappingError(f"masked layer {l} connects units across degrees our network cannot connect")
        full = torch.zeros(sizes[l + 1], sizes[l], dtype=torch.float64)
        full_bias = torch.zeros(sizes[l + 1], dtype=torch.float64)
        full[torch.tensor(rows).unsqueeze(1), torch.tensor(columns).unsqueeze(0)] = weight.detach().double() * mask.double()
        if bias is not None:
            full_bias[torch.tensor(rows)] = bias.detach().double()
        tensors[f"conditioner.layers.{l}.weight"] = full.to(weight.dtype)
        tensors[f"conditioner.layers.{l}.bias"] = full_bias.to(weight.dtype)
    return (widths, tensors, slots) if return_slots else (widths, tensors)


def _coupling(t, types, context, dtype, what):
    stem, transform_options, _ = _univariate(t, types, what)
    linears, activation = _layers(t.hyper, what)
    mask = [bool(v) for v in t.mask.tolist()]
    tensors = {}
    for l, linear in enumerate(linears):
        tensors[f"conditioner.layers.{l}.weight"] = linear.weight.detach().to(dtype)
        tensors[f"conditioner.layers.{l}.bias"] = linear.bias.detach().to(dtype)
    plan = {"type": "Invert", "options": {"inner": {"type": stem + "Coupling", "options": {
        "mask": {"given": {"_0": mask}},
        "conditioner": {"activation": activation, "hiddenSizes": [lin.weight.shape[0] for lin in linears[:-1]]},
        **transform_options}}}}
    return plan, tensors


def _base(lazy):
    """Our base for a zuko flow's base (a ``LazyDistribution``); see the module docstring."""
    from . import bases

    if type(lazy).__name__ == "GMM" and type(lazy).__module__.startswith("zuko"):
        return _gmm(lazy)
    base = lazy()
    inner = getattr(base, "base_dist", None)
    if type(base).__name__ != "DiagNormal" or inner is None:
        raise MappingError(f"the zuko base {type(base).__name__} is not mapped (DiagNormal and GMM are)")
    loc, scale = inner.loc.detach(), inner.scale.detach()
    if loc.dim() != 1:
        raise MappingError(f"the zuko base has shape {tuple(loc.shape)}; only vectors are mapped")
    if any(p.requires_grad for p in lazy.parameters()):
        # Trainable loc and scale (UnconditionalDistribution(..., buffer=False)): our trained
        # DiagonalNormal, which stores log σ.
        return bases.DiagonalNormal(loc, scale.log(), 1)
    return bases.Normal(loc, scale, 1)


def _gmm(gmm):
    """zuko's ``GMM`` without a context → our ``GaussianMixture``: diagonal and spherical
    covariances have σ = exp(s) + ε (stored as log σ, expanded over the features; tied ones
    repeated per component); full ones Σ = LLᵀ with L = diag(exp(s) + ε) + tril, stored as our
    precision factor P = chol(Σ⁻¹) (computed in float64)."""
    from . import bases

    if not hasattr(gmm, "phi"):
        raise MappingError("the zuko base GMM with a context (its parameters from a network) is not mapped: "
                           "our GaussianMixture is unconditional")
    with torch.no_grad():
        distribution = gmm()
        logits = distribution.logits.detach() if hasattr(distribution, "logits") else None
        inner = getattr(distribution, "base", None)
        if logits is None or inner is None:
            raise MappingError("the zuko base GMM did not build zuko's Mixture(…, logits) (a changed zuko release?)")
        k, dtype = logits.shape[0], logits.dtype
        if gmm.covariance_type in ("diagonal", "spherical"):
            loc, scale = inner.base_dist.loc, inner.base_dist.scale
            d = loc.shape[-1]
            return bases.GaussianMixture("diagonal", logits, loc.expand(k, d), log_scales=scale.log().expand(k, d))
        if gmm.covariance_type != "full":
            raise MappingError(f"the zuko base GMM with covariance_type {gmm.covariance_type!r} is not mapped")
        loc, tril = inner.loc, inner.scale_tril.double()
        d = loc.shape[-1]
        covariance = (tril @ tril.transpose(-1, -2)).expand(k, d, d)
        factor = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(covariance)))
        eye = torch.eye(d, dtype=torch.bool)
        lower = torch.where(eye, torch.zeros_like(factor), factor).tril(-1)
        return bases.GaussianMixture("full", logits, loc.expand(k, d),
                                     precision_log_diagonal=factor.diagonal(dim1=-2, dim2=-1).log().to(dtype),
                                     precision_lower=lower.to(dtype))


def _refuse_circular(parts):
    """Refuses zuko's circular splines, saying why they have no exact counterpart.

    zuko's ``CircularRQSTransform`` is, per feature, the half turn x ↦ (x mod 2π) − π followed by
    a ``MonotonicRQSTransform`` on [−π, π] whose end derivatives are 1, all inside the
    univariate transform, so its masked network is fed the angles before the half turn. The
    spline itself is exact in our file (a circular spline with the soft-clipped
    parameterization whose end-derivative outputs are zero, e^0 = 1), but our
    ``SplineAutoregressive`` feeds its network the spline's own input: a half turn written as a
    ``CircularShift`` before it would feed the network the turned angles, and the turn
    (x + π wrapped) jumps by 2π at x = 0, which no weights of the network's first (linear) layer
    can undo. The flow would be a different one.
    """
    for i, t in enumerate(parts):
        univariate = getattr(t, "univariate", None)
        if isinstance(univariate, functools.partial):
            univariate = univariate.func
        if getattr(univariate, "__name__", "") == "CircularRQSTransform":
            raise MappingError(
                f"zuko transform {i} ({type(t).__name__}): zuko's circular spline (NCSF's CircularRQSTransform) is not "
                "mapped: it turns each angle by π inside the univariate transform, so its network sees the angles before "
                "the turn, while ours sees the spline's input; the turn is discontinuous at 0, so no network weights "
                "make the two equal (fit with flows fit --flow ncsf for our circular spline flow)")


def to_flow(zflow):
    """The :class:`Flow` that computes what the zuko flow computes."""
    MAT, GCT, univariates = _zuko()
    transforms = getattr(zflow, "transform", None)
    if transforms is None or not hasattr(zflow, "base"):
        raise MappingError(f"{type(zflow).__name__} is not a zuko Flow (transform and base)")
    parts = list(transforms.transforms) if hasattr(transforms, "transforms") else [transforms]
    _refuse_circular(parts)
    base = _base(zflow.base)
    d, dtype = base.event_size, base.dtype
    context = None
    plans, states = [], []
    for i, t in enumerate(parts):
        what = f"zuko transform {i} ({type(t).__name__})"
        if isinstance(t, MAT):
            features = t.order.shape[0] if t.order is not None else None
            c = t.hyper[0].weight.shape[1] - features if features is not None else 0
            plan, tensors = _masked_autoregressive(t, univariates, c, dtype, what)
        elif isinstance(t, GCT):
            c = t.hyper[0].weight.shape[1] - int(t.mask.sum())
            plan, tensors = _coupling(t, univariates, c, dtype, what)
        elif getattr(getattr(t, "f", None), "__name__", "") == "SoftclipTransform":
            raise MappingError(f"{what}: zuko's SoftclipTransform x/(1 + |x/B|), which zuko's NAF, UNAF and SOSPF put "
                               "between their layers, has no counterpart here (our monotonic layers are bijections of "
                               "the whole real line and need none); a one-transform SOSPF (transforms=1) is mapped")
        else:
            hint = " (zuko's one-feature flows use it)" if type(t).__name__ == "ElementWiseTransform" else ""
            raise MappingError(f"{what} is not mapped{hint}: MaskedAutoregressiveTransform and GeneralCouplingTransform "
                               "with MonotonicAffineTransform or MonotonicRQSTransform are")
        if context is not None and c != context:
            raise MappingError(f"{what}: context size {c} differs from the other transforms' {context}")
        context = c
        plans.append(plan)
        states.append(tensors)
    # Data → noise runs zuko's transforms first to last.
    return Flow.from_transforms(plans, states, d, dtype, "the zuko flow", context_size=context or 0, base=base)


def save_zuko(zflow, path):
    """Writes a zuko flow as a model file (see the module docstring for what is mapped)."""
    flow = to_flow(zflow)
    save_flow(flow, path)
    return flow
