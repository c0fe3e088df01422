"""The monotonic neural families (NAF, UNAF, SOSPF, BPF; flows_torch.monotonic) against the
Swift `flows` binary and against independent computations: models fitted by `flows fit`
scored and sampled on both sides, random plans of every monotonic plan type written from torch
and scored in Swift (float32 and float64, with and without a context), the transforms against
direct formulas, numerical integrals and finite differences, the root finder and its errors,
and zuko's SOSPF written as a model file."""

import json
import math

import pytest

from conftest import requirements

requirements()
import numpy as np  # noqa: E402 (after the skip)
import torch

import flows_torch
from flows_torch import Flow, bases
from flows_torch import monotonic as m
from flows_torch.swift_random import SwiftRandom
from conftest import saved_copy_is_identical, adam_steps, assert_close, run, swift_logprob, torch_logprob, write_csv
from test_plans import jacobian_log_det, randomize, randomize_orders

F64 = {"rel": 1e-10, "abs_": 1e-10}

# (family, dimension, extra `flows fit` options); above two dimensions the orders are random.
FITTED = [
    ("naf", 2, ["--layers", "2", "--hidden", "8"]),
    ("naf", 3, ["--layers", "2", "--hidden", "10,8"]),
    ("unaf", 3, ["--layers", "2", "--hidden", "8"]),
    ("unaf", 1, ["--layers", "2"]),
    ("sospf", 3, ["--layers", "2", "--hidden", "9"]),
    ("sospf", 2, ["--layers", "3", "--hidden", "8,8"]),
    ("bpf", 3, ["--layers", "2", "--hidden", "8"]),
    ("bpf", 1, ["--layers", "1"]),
]
FITTED_IDS = [f"{f}-d{d}-{'_'.join(o).replace('--', '')}" for f, d, o in FITTED]


@pytest.fixture(scope="module", params=range(len(FITTED)), ids=FITTED_IDS)
def fitted(request, workdir, datasets):
    family, d, options = FITTED[request.param]
    train, points = datasets[d]
    model = workdir / f"monotonic-{FITTED_IDS[request.param]}.safetensors"
    if not model.exists():
        run("fit", "--data", train, "--flow", family, "--steps", 30, "--seed", request.param, "--out", model, *options)
    return str(model), train, points, d


def assert_close_allowing_underflow(ours, model, points, what, **bounds):
    """``flows logprob --allow-infinite`` against ours: the same rows −∞ (polynomial layers of
    high degree overflow float32 far out, on both sides), the others within the bounds, and at
    least 3/4 of the rows finite."""
    theirs = np.array([float(v) for v in run("logprob", "--model", model, "--data", points, "--allow-infinite").split()])
    assert np.array_equal(np.isinf(ours), np.isinf(theirs)), f"{what}: the -inf rows differ"
    finite = np.isfinite(theirs)
    assert finite.sum() >= 0.75 * len(theirs), f"{what}: {len(theirs) - finite.sum()} rows are -inf"
    assert_close(ours[finite], theirs[finite], what, **bounds)


def in_float64(flow):
    """The same flow with its tensors in float64 (plan and base kept)."""
    base = flow.base
    wide = Flow.from_plan(flow.plan, flow.event_shape, dtype=torch.float64,
                          base=bases.Normal(base.loc.double(), base.scale.double(), 1))
    wide.load_file_tensors({k: v.double() for k, v in flow.file_tensors().items()})
    return wide


def test_fitted_log_prob_matches_flows_logprob(fitted, tmp_path):
    """float32 as fitted; float64 on the same weights written back as a float64 file."""
    model, _, points, _ = fitted
    flow = flows_torch.load(model)
    assert json.loads(run("info", "--model", model, "--json"))["plan"]["type"] in ("NAF", "UNAF", "SOSPF", "BPF")
    assert_close(torch_logprob(flow, points), swift_logprob(model, points), f"log p {model} float32")
    wide = in_float64(flow)
    path = tmp_path / "float64.safetensors"
    flows_torch.save(wide, path)
    assert_close(torch_logprob(wide, points), swift_logprob(path, points), f"log p {model} float64", **F64)


def test_fitted_same_noise_same_samples(fitted, tmp_path):
    """Sampling root-finds every layer (Chandrupatla to 10⁻⁶·(1 + |x|) in float32, 10⁻¹⁴·(1 + |x|)
    in float64) on both sides."""
    model, _, _, d = fitted
    n, seed = 100, 11
    wide = tmp_path / "float64.safetensors"
    flows_torch.save(in_float64(flows_torch.load(model)), wide)
    for path, dtype, bounds in ((model, torch.float32, {}), (wide, torch.float64, F64)):
        theirs = np.loadtxt(run("sample", "--model", path, "-n", n, "--seed", seed).splitlines(), delimiter=",", ndmin=2)
        noise = torch.tensor(SwiftRandom(seed).normals(n * d), dtype=torch.float64).to(dtype).reshape(n, d)
        with torch.no_grad():
            ours = flows_torch.load(path)().sample_from_noise(noise).double().numpy()
        assert_close(ours, theirs, f"samples {model} {str(dtype)[6:]}", **bounds)


def test_fitted_round_trip_is_identical(fitted, tmp_path):
    model, _, points, _ = fitted
    copy = saved_copy_is_identical(model, tmp_path)
    assert_close(swift_logprob(copy, points), swift_logprob(model, points), f"round trip {model}", rel=0, abs_=0)


def test_fitted_trained_in_torch_and_written_back(fitted, tmp_path):
    """Gradients reach every parameter, through the density (one pass) and through samples (the
    root-found inverse's implicit gradients); after Adam steps the file scores as the module."""
    model, train, points, _ = fitted
    flow = flows_torch.load(model)
    data = torch.tensor(np.loadtxt(train, delimiter=",", dtype=np.float32, ndmin=2))
    adam_steps(flow, lambda: (-flow().log_prob(data).mean()))
    flow().rsample((16,)).square().sum().backward()
    missing = [n for n, p in flow.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no gradient reaches {missing} through samples"
    flow.eval()
    out = tmp_path / "trained.safetensors"
    flows_torch.save(flow, out)
    # A few large steps can leave far points (those × 4) with densities that underflow on both sides.
    assert_close_allowing_underflow(torch_logprob(flow, points), out, points, f"trained {model}")


# --- Random plans of every monotonic plan type, written from torch --------------------------

MADE = {"activation": "tanh", "hiddenSizes": [9, 7], "order": {"random": {}}, "parameterization": "standard",
        "skipConnections": False}


def p(name, **options):
    return {"type": name, "options": options}


PLANS = {
    "naf": p("NAF", layers=2, units=5, conditioner=MADE),
    "unaf-7-nodes": p("UNAF", layers=2, hiddenUnits=4, nodes=7, conditioner=MADE),
    "sospf": p("SOSPF", layers=2, polynomials=2, degree=3, conditioner=dict(MADE, order={"reversed": {}})),
    "bpf": p("BPF", layers=2, degree=7, bound=2.0, conditioner=dict(MADE, skipConnections=True)),
    "elementwise": p("Compose", parts=[
        p("DeepSigmoidal", transform={"units": 3}),
        p("UnconstrainedMonotonic", transform={"hiddenUnits": 2, "nodes": 5}),
        p("SumOfSquaresPolynomial", transform={"polynomials": 2, "degree": 1}),
        p("BernsteinPolynomial", transform={"degree": 4, "bound": 1.5})]),
    "layers": p("Compose", parts=[
        p("DeepSigmoidalAutoregressive", transform={"units": 4}, conditioner=MADE),
        p("Invert", inner=p("UnconstrainedMonotonicAutoregressive", transform={"hiddenUnits": 3, "nodes": 16},
                            conditioner=MADE)),
        p("SumOfSquaresPolynomialAutoregressive", transform={"polynomials": 3, "degree": 2}, conditioner=MADE),
        p("Invert", inner=p("BernsteinPolynomialAutoregressive", transform={"degree": 6, "bound": 3.0},
                            conditioner=MADE))]),
}


def random_flow(name, dtype, context_size=0, seed=0):
    flow = Flow.from_plan(PLANS[name], (3,), context_size=context_size, dtype=dtype)
    randomize(flow, seed)
    randomize_orders(flow, seed)
    return flow


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(PLANS))
def test_plan_written_by_torch_scores_the_same_in_swift(name, dtype, tmp_path):
    bounds = {} if dtype == torch.float32 else F64
    flow = random_flow(name, dtype, seed=len(name))
    path = tmp_path / "model.safetensors"
    flows_torch.save(flow, path)
    rows = np.random.default_rng(5).normal(size=(50, 3)) * 1.5
    rows[:2] *= 3
    points = write_csv(tmp_path / "points.csv", rows)
    what = f"plan {name} {str(dtype)[6:]}"
    assert_close_allowing_underflow(torch_logprob(flow, points), path, points, what, **bounds)
    assert_close_allowing_underflow(torch_logprob(flows_torch.load(path), points), path, points, f"{what} reloaded", **bounds)


@pytest.mark.parametrize("name", sorted(PLANS))
def test_conditional_plan(name, tmp_path):
    """With a context: inverse ∘ forward = identity, log|det| against autograd's Jacobian and
    `flows logprob --context` against the module (float64)."""
    flow = random_flow(name, torch.float64, context_size=2, seed=3)
    path = tmp_path / "conditional.safetensors"
    flows_torch.save(flow, path)
    loaded = flows_torch.load(path)
    x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    c = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y, log_det = loaded.bijector(x, c)
    back, inverse_log_det = loaded.bijector.inverse(y, c)
    assert torch.allclose(back, x, rtol=0, atol=1e-11), "inverse(forward(x)) ≠ x"
    assert torch.allclose(log_det, -inverse_log_det, rtol=0, atol=1e-10)
    # The quadrature's y is within its rule's error of the exact integral whose derivative log g is.
    quadrature = any(word in json.dumps(PLANS[name]) for word in ('"UNAF"', "UnconstrainedMonotonic"))
    tolerance = 1e-3 if quadrature else 1e-9
    assert torch.allclose(log_det, jacobian_log_det(loaded.bijector, x, c), rtol=0, atol=tolerance)
    points, contexts = write_csv(tmp_path / "y.csv", y.detach().numpy()), write_csv(tmp_path / "c.csv", c.numpy())
    theirs = np.array([float(v) for v in run("logprob", "--model", path, "--data", points, "--context", contexts).split()])
    with torch.no_grad():
        assert_close(loaded(c).log_prob(y).numpy(), theirs, f"conditional {name} in Swift", **F64)


# --- The transforms against independent computations ----------------------------------------


def raw_for(transform, n, seed, scale=0.7):
    g = torch.Generator().manual_seed(seed)
    identity = torch.tensor(transform.identity(), dtype=torch.float64)
    return identity + torch.randn(n, transform.parameter_count, dtype=torch.float64, generator=g) * scale


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def softplus(v):
    return np.log1p(np.exp(v))


def direct_deep_sigmoidal(x, raw, k):
    a, b, w = softplus(np.maximum(raw[:k], -30)), raw[k:2 * k], np.exp(raw[2 * k:]) / np.exp(raw[2 * k:]).sum()
    s = (w * sigmoid(a * x + b)).sum()
    return math.log(s / (1 - s))


def direct_integrand(t, raw, h):
    return softplus(raw[3 * h] + (raw[2 * h:3 * h] * np.tanh(raw[:h] * t + raw[h:2 * h])).sum()) + 1e-3


def simpson(f, a, b, intervals=2000):
    t = np.linspace(a, b, intervals + 1)
    values = np.array([f(v) for v in t])
    return (b - a) / (3 * intervals) * (values[0] + values[-1] + 4 * values[1:-1:2].sum() + 2 * values[2:-1:2].sum())


def direct_sum_of_squares(x, raw, k, degree):
    """c + ∫₀ˣ g with numpy's polynomial algebra (squares, sum, antiderivative)."""
    terms = degree + 1
    total = np.polynomial.Polynomial([0.0])
    for i in range(k):
        coefficients = raw[i * terms:(i + 1) * terms].copy()
        coefficients[0] += 1
        total = total + np.polynomial.Polynomial(coefficients) ** 2
    g = total * ((1 - 1e-3) / k) + 1e-3
    return raw[k * terms] + g.integ()(x), math.log(g(x))


def direct_bernstein(x, raw, m, bound):
    steps = softplus(np.maximum(raw[1:], -30))
    beta = np.concatenate([[raw[0]], raw[0] + np.cumsum(steps)])

    def polynomial(v):
        u = (v + bound) / (2 * bound)
        return sum(beta[k] * math.comb(m, k) * u ** k * (1 - u) ** (m - k) for k in range(m + 1))

    clamped = min(max(x, -bound), bound)
    u = (clamped + bound) / (2 * bound)
    slope = sum(steps[k] * math.comb(m - 1, k) * u ** k * (1 - u) ** (m - 1 - k) for k in range(m)) * m / (2 * bound)
    return polynomial(clamped) + (x - clamped) * slope, math.log(slope)


def test_deep_sigmoidal_against_its_formula():
    t = m.DeepSigmoidalTransform(5)
    raw = raw_for(t, 40, 1)
    x = torch.linspace(-4, 4, 40, dtype=torch.float64)
    y, log_derivative = t.forward(x, raw)
    expected = [direct_deep_sigmoidal(float(v), r.numpy(), 5) for v, r in zip(x, raw)]
    h = 1e-6
    slopes = [(direct_deep_sigmoidal(float(v) + h, r.numpy(), 5) - direct_deep_sigmoidal(float(v) - h, r.numpy(), 5)) / (2 * h)
              for v, r in zip(x, raw)]
    assert_close(y.numpy(), expected, "DSF y", rel=1e-12, abs_=1e-12)
    assert_close(log_derivative.numpy(), np.log(slopes), "DSF log dy/dx", rel=1e-7, abs_=1e-7)
    # Far out the log-space form stays finite where the plain logit rounds to ±∞.
    far, far_log = t.forward(torch.tensor([-400.0, 400.0], dtype=torch.float64), raw[:2])
    assert torch.isfinite(far).all() and torch.isfinite(far_log).all()


def test_unconstrained_monotonic_against_a_simpson_integral():
    """32 Gauss–Legendre nodes against a composite Simpson rule of 2000 intervals (the rule's
    nodes also checked against numpy's)."""
    nodes, weights = m.gauss_legendre_rule(32)
    reference_nodes, reference_weights = np.polynomial.legendre.leggauss(32)
    assert np.abs(np.array(nodes) - reference_nodes).max() < 1e-15
    assert np.abs(np.array(weights) - reference_weights).max() < 1e-14
    t = m.UnconstrainedMonotonicTransform(4, 32)
    raw = raw_for(t, 20, 2)
    x = torch.linspace(-3.5, 3.5, 20, dtype=torch.float64)
    y, log_derivative = t.forward(x, raw)
    expected = [r[-1] + simpson(lambda v: direct_integrand(v, r, 4), 0.0, float(v)) for v, r in zip(x, raw.numpy())]
    assert_close(y.numpy(), expected, "UMNN integral", rel=1e-10, abs_=1e-10)
    integrand = [math.log(direct_integrand(float(v), r, 4)) for v, r in zip(x, raw.numpy())]
    assert_close(log_derivative.numpy(), integrand, "UMNN log g", rel=1e-13, abs_=1e-13)


def test_sum_of_squares_against_polynomial_algebra():
    t = m.SumOfSquaresPolynomialTransform(3, 4)
    raw = raw_for(t, 30, 3, scale=0.5)
    x = torch.linspace(-2.5, 2.5, 30, dtype=torch.float64)
    y, log_derivative = t.forward(x, raw)
    expected = [direct_sum_of_squares(float(v), r, 3, 4) for v, r in zip(x, raw.numpy())]
    assert_close(y.numpy(), [e[0] for e in expected], "SOS y", rel=1e-12, abs_=1e-12)
    assert_close(log_derivative.numpy(), [e[1] for e in expected], "SOS log g", rel=1e-12, abs_=1e-12)


def test_bernstein_against_its_sum_inside_and_beyond_the_bound():
    t = m.BernsteinPolynomialTransform(9, 2.0)
    raw = raw_for(t, 40, 4)
    x = torch.linspace(-5, 5, 40, dtype=torch.float64)
    y, log_derivative = t.forward(x, raw)
    expected = [direct_bernstein(float(v), r, 9, 2.0) for v, r in zip(x, raw.numpy())]
    assert_close(y.numpy(), [e[0] for e in expected], "Bernstein y", rel=1e-12, abs_=1e-12)
    assert_close(log_derivative.numpy(), [e[1] for e in expected], "Bernstein log y'", rel=1e-12, abs_=1e-12)


TRANSFORMS = {
    "dsf": lambda: m.DeepSigmoidalTransform(4),
    "umnn": lambda: m.UnconstrainedMonotonicTransform(3, 32),
    "sos": lambda: m.SumOfSquaresPolynomialTransform(2, 3),
    "bernstein": lambda: m.BernsteinPolynomialTransform(6, 2.5),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_identity_parameters_are_the_identity(name):
    t = TRANSFORMS[name]()
    x = torch.linspace(-6, 6, 25, dtype=torch.float64)
    y, log_derivative = t.forward(x, torch.tensor(t.identity(), dtype=torch.float64))
    assert torch.allclose(y, x, rtol=0, atol=1e-12) and torch.allclose(log_derivative, torch.zeros_like(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_inverse_and_its_implicit_gradients(name):
    """The root within the finder's tolerance, in float64 and float32; ∂x/∂y and ∂x/∂θ from the
    recorded Newton step against finite differences of the root-found inverse (gradcheck). The
    recorded dx/dy is 1/g(x), the exact integral's; the quadrature's differs from it by the rule's
    error, under 10⁻⁹ with 32 nodes here (0.08% with 9)."""
    t = TRANSFORMS[name]()
    raw = raw_for(t, 12, 5, scale=0.5)
    x = torch.linspace(-4, 4, 12, dtype=torch.float64)
    y, log_derivative = t.forward(x, raw)
    back, inverse_log = t.inverse(y, raw)
    assert torch.allclose(back, x, rtol=0, atol=1e-12)
    assert torch.allclose(inverse_log, -log_derivative, rtol=0, atol=1e-12)
    back32, _ = t.inverse(y.float(), raw.float())
    assert ((back32.double() - x).abs() <= 1e-5 * (1 + x.abs())).all()
    torch.autograd.gradcheck(lambda v, r: t.inverse(v, r), (y.clone().requires_grad_(), raw.clone().requires_grad_()),
                             eps=1e-6, atol=1e-6, rtol=1e-5)


def test_root_finder_against_a_cubic_and_its_errors():
    """x + x³ = y solved to 10⁻¹⁴·(1 + |x|) (checked with numpy's roots); a non-finite target gives
    NaN; a bounded map, a NaN map and too few steps raise NotConverged naming the row."""
    targets = torch.tensor([-1e6, -3.0, 0.0, 0.5, 7.0, 1e9, math.inf], dtype=torch.float64)
    roots = m.chandrupatla(lambda v: v + v ** 3, targets, 1e-14)
    for target, root in zip(targets[:-1].tolist(), roots[:-1].tolist()):
        real = [r.real for r in np.roots([1, 0, 1, -target]) if abs(r.imag) < 1e-9][0]
        assert abs(root - real) <= 3e-14 * (1 + abs(real)), (target, root, real)
    assert math.isnan(roots[-1])
    with pytest.raises(m.NotConverged, match="element 1 .*no bracket"):
        m.chandrupatla(torch.tanh, torch.tensor([0.5, 2.0], dtype=torch.float64), 1e-14)
    with pytest.raises(m.NotConverged, match="NaN"):
        m.chandrupatla(lambda v: torch.where(v > 3, torch.full_like(v, math.nan), v), torch.tensor([5.0], dtype=torch.float64), 1e-14)
    with pytest.raises(m.NotConverged, match="did not narrow .* in 2 Chandrupatla steps"):
        m.chandrupatla(lambda v: v + v ** 3, torch.tensor([7.3], dtype=torch.float64), 1e-14, maximum_iterations=2)
    # Through a transform the error names the row and element of the input.
    # Slopes at their floor (softplus(−30) ≈ 9·10⁻¹⁴): y = 10¹⁰ lies beyond 2⁶⁴ doublings of x.
    t = m.BernsteinPolynomialTransform(3, 1.0)
    raw = torch.tensor([0.0, -40.0, -40.0, -40.0], dtype=torch.float64)
    assert torch.isnan(t.inverse(torch.tensor([[0.0, 1.0], [math.nan, 2.0]], dtype=torch.float64), raw)[0][1, 0])
    with pytest.raises(m.NotConverged, match="row 1, element 1 .*no bracket"):
        t.inverse(torch.tensor([[0.0, 1.0], [2.0, 1e10]], dtype=torch.float64), raw)


# --- zuko ---------------------------------------------------------------------------------------

ZUKO_SOSPF = {
    "sospf-3-degree-2-of-4": dict(features=3, transforms=1, degree=2, polynomials=4, hidden_features=(16, 12)),
    "sospf-5-degree-5-of-2-randperm": dict(features=5, transforms=1, degree=5, polynomials=2, hidden_features=(20,),
                                           randperm=True),
    "sospf-4-passes-2-tanh": dict(features=4, transforms=1, degree=3, polynomials=3, hidden_features=(9, 9), passes=2,
                                  activation=torch.nn.Tanh),
    "sospf-3-context-2": dict(features=3, context=2, transforms=1, degree=3, polynomials=2, hidden_features=(11,)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ZUKO_SOSPF))
def test_zuko_sospf_scores_the_same_in_swift(name, dtype, tmp_path):
    """zuko's t/10 and (1/K)Σp² + 10⁻³ are folded into the network's last layer (see
    zuko_export._sum_of_squares); zuko's Gauss–Legendre rule of L + 1 nodes is exact for the
    polynomial our closed form integrates."""
    zuko = pytest.importorskip("zuko", reason="zuko is not installed: the zuko export tests are skipped")
    torch.manual_seed(4)
    arguments = ZUKO_SOSPF[name]
    zflow = zuko.flows.SOSPF(**arguments).to(dtype)
    with torch.no_grad():
        for parameter in zflow.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    path = tmp_path / "zuko.safetensors"
    flows_torch.save(zflow, path)
    d, c = arguments["features"], arguments.get("context", 0)
    rows = np.random.default_rng(2).normal(size=(150, d)) * 1.5
    points = write_csv(tmp_path / "points.csv", rows)
    y = torch.tensor(rows, dtype=dtype)
    context = torch.tensor(np.random.default_rng(3).normal(size=(150, c)), dtype=dtype) if c else None
    arguments_swift = ["logprob", "--model", path, "--data", points]
    if c:
        arguments_swift += ["--context", write_csv(tmp_path / "context.csv", context.double().numpy())]
    with torch.no_grad():
        theirs = zflow(context).log_prob(y).double().numpy()
        ours = flows_torch.load(path)(context).log_prob(y).double().numpy()
    swift = np.array([float(v) for v in run(*arguments_swift).split()])
    bounds = {} if dtype == torch.float32 else F64
    assert_close(swift, theirs, f"zuko {name} {str(dtype)[6:]}: flows logprob vs zuko", **bounds)
    assert_close(ours, theirs, f"zuko {name} {str(dtype)[6:]}: flows_torch.load vs zuko", **bounds)


@pytest.mark.parametrize("make, message", [
    (lambda z: z.flows.NAF(3, transforms=1), "NAF transformer .MNN."),
    (lambda z: z.flows.UNAF(3, transforms=1), "UNAF integrand .UMNN."),
    (lambda z: z.flows.BPF(3, transforms=2), "BPF coefficients are a softmax"),
    (lambda z: z.flows.SOSPF(3, transforms=2), "SoftclipTransform"),
    (lambda z: z.flows.SOSPF(3, transforms=1, slope=1e-2), "floor ε is fixed at 10⁻³"),
], ids=["naf", "unaf", "bpf", "sospf-soft-clip", "sospf-slope"])
def test_zuko_monotonic_flows_that_differ_are_refused(make, message, tmp_path):
    zuko = pytest.importorskip("zuko", reason="zuko is not installed: the zuko export tests are skipped")
    with pytest.raises(flows_torch.MappingError, match=message):
        flows_torch.save(make(zuko), tmp_path / "refused.safetensors")
    assert not (tmp_path / "refused.safetensors").exists()
