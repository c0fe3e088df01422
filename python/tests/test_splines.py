"""Linear-rational splines (LRS, LRSCoupling and their layers), circular splines, circular
shifts and NCSF on the torus: models fitted by `flows fit` (float32, and a float64 copy) read
with flows_torch.load and compared with `flows logprob` and `flows sample`; plans written by
flows_torch scored by Swift; the spline formulas against independent computations (the paper's
weighted form of the linear-rational spline, autograd derivatives, periodicity). zuko's NCSF
is refused with its reason (test_zuko.py)."""

import json
import math

import pytest

from conftest import requirements

requirements()
import numpy as np  # noqa: E402 (after the skip)
import torch
from safetensors.torch import save_file

import flows_torch
from flows_torch import Flow, splines
from flows_torch.swift_random import SwiftRandom
from conftest import saved_copy_is_identical, read_all, assert_close, make_data, run, swift_logprob, torch_logprob, write_csv

FLOAT64 = {"rel": 1e-10, "abs_": 1e-10}


def torus_data(d, n, seed):
    """Correlated angles in [−3.14, 3.14] (inside [−π, π) also after rounding to float32): a von
    Mises first angle, each next one near twice the previous plus one, wrapped."""
    r = np.random.default_rng(seed)
    x = np.empty((n, d))
    x[:, 0] = r.vonmises(0.5, 2.0, size=n)
    for j in range(1, d):
        x[:, j] = 2 * x[:, j - 1] + 1 + r.vonmises(0.0, 4.0, size=n)
    x = np.mod(x + np.pi, 2 * np.pi) - np.pi
    return np.clip(x, -3.14, 3.14)


# (family, dimension, extra `flows fit` options)
CASES = [
    ("lrs", 3, ["--layers", "2", "--bins", "4"]),
    ("lrs", 2, ["--layers", "3", "--hidden", "12,12"]),
    ("lrs", 1, ["--layers", "2", "--bins", "5"]),
    ("lrs-coupling", 3, ["--layers", "2"]),
    ("lrs-coupling", 2, ["--layers", "3", "--bins", "5", "--hidden", "9,9"]),
    ("ncsf", 2, ["--layers", "3", "--bins", "4"]),
    ("ncsf", 3, ["--layers", "2", "--hidden", "16,16"]),
]
IDS = [f"{f}-d{d}-{'_'.join(o).replace('--', '')}" for f, d, o in CASES]


def float64_copy(model, path):
    """The model file with its float32 tensors widened to float64 (a float64 model for Swift too)."""
    metadata, tensors = read_all(model)
    save_file({k: v.double() for k, v in tensors.items()}, str(path), metadata=metadata)
    return str(path)


@pytest.fixture(scope="module", params=range(len(CASES)), ids=IDS)
def fitted(request, workdir):
    """(float32 model, float64 copy, training CSV, evaluation CSV, d, circular)."""
    family, d, options = CASES[request.param]
    name = IDS[request.param]
    circular = family == "ncsf"
    if circular:
        train = write_csv(workdir / f"{name}-train.csv", torus_data(d, 400, d))
        points = torus_data(d, 64, 50 + d)
        points[0, 0] = -math.pi   # the circle's cut, from both sides
        points[1, 0] = 3.14159
        points[2, -1] = 0.0
    else:
        train = write_csv(workdir / f"{name}-train.csv", make_data(d, 400, d))
        points = make_data(d, 64, 100 + d)
        points[:3] *= 4.0  # beyond the spline bound of 5 in some coordinates
        points[3] = 5.0    # at the bound
    evaluation = write_csv(workdir / f"{name}-eval.csv", points)
    model = workdir / f"{name}.safetensors"
    run("fit", "--data", train, "--flow", family, "--steps", 30, "--seed", request.param, "--out", model, *options)
    return str(model), float64_copy(model, workdir / f"{name}-f64.safetensors"), str(train), str(evaluation), d, circular


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_log_prob_matches_flows_logprob(fitted, precision):
    model32, model64, _, points, _, _ = fitted
    model = model32 if precision == "float32" else model64
    flow = flows_torch.load(model)
    assert flow.dtype == (torch.float32 if precision == "float32" else torch.float64)
    ours, theirs = torch_logprob(flow, points), swift_logprob(model, points)
    assert np.isfinite(theirs).all()
    assert_close(ours, theirs, f"log p {precision} {model}", **({} if precision == "float32" else FLOAT64))


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_same_noise_same_samples(fitted, precision):
    """`flows sample --seed S` draws its base noise (normal, or uniform on the torus) from the
    Swift generator, rebuilt here value for value."""
    model32, model64, _, _, d, circular = fitted
    model = model32 if precision == "float32" else model64
    n, seed = 100, 11
    theirs = np.loadtxt(run("sample", "--model", model, "-n", n, "--seed", seed).splitlines(), delimiter=",", ndmin=2)
    flow = flows_torch.load(model)
    noise = flow.base.swift_noise(SwiftRandom(seed), n)
    with torch.no_grad():
        ours = flow().sample_from_noise(noise).double().numpy()
    if circular:
        assert ((ours >= -math.pi - 1e-6) & (ours < math.pi + 1e-6)).all()
        # Angles: the same point of the circle (a sample a rounding step from ±π may be the other end).
        gap = np.abs(ours - theirs)
        ours = np.where(gap > math.pi, ours - np.sign(ours - theirs) * 2 * math.pi, ours)
    assert_close(ours, theirs, f"samples {precision} {model}", **({} if precision == "float32" else FLOAT64))


def test_round_trip_is_identical(fitted, tmp_path):
    model, _, _, points, _, _ = fitted
    copy = saved_copy_is_identical(model, tmp_path)


def test_torch_training_written_back(fitted, tmp_path):
    """Gradients reach every parameter; after a few Adam steps the saved file scores in Swift as
    the module does."""
    model, _, train, points, _, _ = fitted
    flow = flows_torch.load(model)
    names = {name for name, _ in flow.named_parameters()}
    assert names and all(name.startswith("bijector.") for name in names)
    data = torch.tensor(np.loadtxt(train, delimiter=",", dtype=np.float32, ndmin=2))
    before = {name: p.detach().clone() for name, p in flow.named_parameters()}
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-2)
    flow.train()
    losses = []
    for step in range(5):
        optimizer.zero_grad()
        loss = -flow().log_prob(data).mean()
        loss.backward()
        if step == 0:
            missing = [n for n, p in flow.named_parameters()
                       if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
            assert not missing, f"no gradient reaches {missing}"
        optimizer.step()
        losses.append(loss.item())
    flow.eval()
    assert all(np.isfinite(losses))
    assert all(not torch.equal(before[n], p) for n, p in flow.named_parameters())
    out = tmp_path / "trained.safetensors"
    flows_torch.save(flow, out)
    assert_close(torch_logprob(flow, points), swift_logprob(out, points), f"trained {model}")


# --- Plans written by flows_torch, scored by Swift ----------------------------------------------

MADE = {"activation": "tanh", "hiddenSizes": [7, 6], "order": {"given": {"_0": [2, 0, 1]}}, "parameterization": "standard",
        "skipConnections": False}
NET = {"activation": "relu", "hiddenSizes": [8]}


def p(name, **options):
    return {"type": name, "options": options}


def lr_spline(bins=4, bound=3.0, logit=0.7, minimum_lambda=0.05):
    return {"bins": bins, "bound": bound, "minimumBinWidth": 1e-3, "minimumBinHeight": 2e-3, "minimumDerivative": 1e-3,
            "minimumLambda": minimum_lambda, "logitScale": logit}


def circular_spline(bins=4, logit=0.8, parameterization=None):
    options = {"bins": bins, "bound": math.pi, "minimumBinWidth": 1e-3, "minimumBinHeight": 1e-3,
               "minimumDerivative": 1e-3, "logitScale": logit, "boundary": "circular"}
    if parameterization:
        options["parameterization"] = parameterization
    return options


PLANS = {
    "lr-layers": (p("Compose", parts=[
        p("LinearRationalSpline", transform=lr_spline(5, 2.0)),
        p("LinearRationalSplineAutoregressive", transform=lr_spline(), conditioner=MADE),
        p("Invert", inner=p("LinearRationalSplineCoupling", mask={"given": {"_0": [True, False, True]}},
                            transform=lr_spline(3, 4.0, 1.0, 0.025), conditioner=NET))]), False),
    "lrs-presets": (p("Compose", parts=[p("LRS", layers=2, bins=4, bound=3.0, conditioner=MADE),
                                        p("LRSCoupling", layers=2, bins=3, bound=2.5, conditioner=NET)]), False),
    "circular-layers": (p("Compose", parts=[
        p("CircularShift", shift={"learned": {}}),
        p("Spline", transform=circular_spline(5)),
        p("CircularShift", shift={"fixed": {"_0": 1.25}}),
        p("Invert", inner=p("SplineAutoregressive", transform=circular_spline(
            4, 1.0, {"softClipped": {"slope": 1e-3}}), conditioner=MADE)),
        p("SplineAutoregressive", transform=circular_spline(3), conditioner=MADE)]), True),
    "ncsf": (p("NCSF", layers=3, bins=4, conditioner=MADE), True),
}


def random_flow(plan, circular, dtype, context_size=0, seed=0):
    d = 3
    base = None
    if circular:
        base = flows_torch.bases.Uniform(torch.full((d,), -math.pi, dtype=dtype), torch.full((d,), math.pi, dtype=dtype), 1)
    flow = Flow.from_plan(plan, (d,), context_size=context_size, dtype=dtype, base=base)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=g, dtype=dtype) * 0.5)
    return flow


def points_for(circular, n=60, seed=5):
    r = np.random.default_rng(seed)
    if circular:
        rows = r.uniform(-3.14, 3.14, size=(n, 3))
        rows[0, 0], rows[1, 1] = -math.pi, 0.0
        return rows
    rows = r.normal(size=(n, 3)) * 1.5
    rows[:3] *= 3
    return rows


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(PLANS))
def test_plan_written_by_torch_scores_the_same_in_swift(name, dtype, tmp_path):
    plan, circular = PLANS[name]
    flow = random_flow(plan, circular, dtype, seed=len(name))
    path = tmp_path / "model.safetensors"
    flows_torch.save(flow, path)
    info = json.loads(run("info", "--model", path, "--json"))
    assert info["parameters"] == sum(p.numel() for p in flow.parameters())
    points = write_csv(tmp_path / "points.csv", points_for(circular))
    bounds = {} if dtype == torch.float32 else FLOAT64
    theirs = swift_logprob(path, points)
    assert np.isfinite(theirs).all()
    assert_close(torch_logprob(flow, points), theirs, f"plan {name} {dtype}", **bounds)
    assert_close(torch_logprob(flows_torch.load(path), points), theirs, f"plan {name} {dtype} reloaded", **bounds)


@pytest.mark.parametrize("name", ["lrs-presets", "ncsf", "circular-layers"])
def test_conditional_plan_scores_the_same_in_swift(name, tmp_path):
    plan, circular = PLANS[name]
    flow = random_flow(plan, circular, torch.float64, context_size=2, seed=3)
    path = tmp_path / "conditional.safetensors"
    flows_torch.save(flow, path)
    y = points_for(circular, 30, 8)
    c = np.random.default_rng(9).normal(size=(30, 2))
    ours = np.array([float(v) for v in run("logprob", "--model", path, "--data", write_csv(tmp_path / "y.csv", y),
                                           "--context", write_csv(tmp_path / "c.csv", c)).split()])
    with torch.no_grad():
        theirs = flow(torch.tensor(c)).log_prob(torch.tensor(y)).numpy()
        other = flow(torch.tensor(c[::-1].copy())).log_prob(torch.tensor(y)).numpy()
    assert not np.allclose(theirs, other), "the context changes nothing"
    assert_close(ours, theirs, f"conditional {name}", **FLOAT64)


# --- The formulas against independent computations ----------------------------------------------


def paper_linear_rational(x, xs, ys, ds, lambdas):
    """Dolatabadi et al. (2020) eq. 8–10 in their weighted form, in float64 numpy, bin by bin:
    w_a = 1, w_b = √(d_k/d_{k+1}), w_c = (λ w_a d_k + (1 − λ) w_b d_{k+1})/s,
    y_c = ((1 − λ) w_a y_k + λ w_b y_{k+1})/((1 − λ) w_a + λ w_b), and
    y = (w_a y_k (λ − φ) + w_c y_c φ)/(w_a (λ − φ) + w_c φ) for φ ≤ λ,
    y = (w_c y_c (1 − φ) + w_b y_{k+1} (φ − λ))/(w_c (1 − φ) + w_b (φ − λ)) above; identity outside."""
    out = np.array(x, dtype=np.float64)
    for i, v in enumerate(x):
        if not xs[i, 0] <= v <= xs[i, -1]:
            continue
        k = min(int(np.searchsorted(xs[i], v, side="right")) - 1, len(lambdas[i]) - 1)
        x0, x1, y0, y1, d0, d1, lam = xs[i, k], xs[i, k + 1], ys[i, k], ys[i, k + 1], ds[i, k], ds[i, k + 1], lambdas[i, k]
        s = (y1 - y0) / (x1 - x0)
        wa, wb = 1.0, math.sqrt(d0 / d1)
        wc = (lam * wa * d0 + (1 - lam) * wb * d1) / s
        yc = ((1 - lam) * wa * y0 + lam * wb * y1) / ((1 - lam) * wa + lam * wb)
        phi = (v - x0) / (x1 - x0)
        if phi <= lam:
            out[i] = (wa * y0 * (lam - phi) + wc * yc * phi) / (wa * (lam - phi) + wc * phi)
        else:
            out[i] = (wc * yc * (1 - phi) + wb * y1 * (phi - lam)) / (wc * (1 - phi) + wb * (phi - lam))
    return out


def test_linear_rational_spline_is_the_papers():
    t = splines.LinearRationalSplineTransform(splines.LinearRationalSplineTransform.options(6, 2.5, 0.8, minimum_lambda=0.05))
    g = torch.Generator().manual_seed(4)
    n = 400
    raw = torch.randn(n, t.parameter_count, generator=g, dtype=torch.float64) * 1.5
    x = torch.linspace(-3.0, 3.0, n, dtype=torch.float64)
    k = t.bins
    xs = splines.spline_knots(raw[:, :k], k, t.bound, t.min_width, t.logit_scale).numpy()
    ys = splines.spline_knots(raw[:, k:2 * k], k, t.bound, t.min_height, t.logit_scale).numpy()
    ones = np.ones((n, 1))
    ds = np.concatenate([ones, 1e-3 + np.log1p(np.exp(raw[:, 2 * k:3 * k - 1].numpy())), ones], axis=1)
    lambdas = 0.05 + 0.9 / (1 + np.exp(-raw[:, 3 * k - 1:].numpy()))
    y, log_derivative = t.forward(x, raw)
    assert np.abs(y.numpy() - paper_linear_rational(x.numpy(), xs, ys, ds, lambdas)).max() < 1e-12
    # log dy/dx against a central difference of the paper's form.
    h = 1e-6
    numeric = (paper_linear_rational(x.numpy() + h, xs, ys, ds, lambdas)
               - paper_linear_rational(x.numpy() - h, xs, ys, ds, lambdas)) / (2 * h)
    inside = np.abs(x.numpy()) < 2.5 - 2 * h
    knots_near = np.min(np.abs(x.numpy()[:, None] - xs), axis=1) > 2 * h
    assert np.abs(log_derivative.numpy() - np.log(numeric))[inside & knots_near].max() < 1e-6
    assert (log_derivative.numpy()[~inside & knots_near] == 0).all()


@pytest.mark.parametrize("kind", ["linear-rational", "circular", "circular-soft-clipped"])
def test_inverse_log_derivative_and_gradients(kind):
    """inverse ∘ forward = identity, log-derivatives against autograd's dy/dx, and gradients of
    log p reach every raw parameter (float64)."""
    if kind == "linear-rational":
        t = splines.LinearRationalSplineTransform(splines.LinearRationalSplineTransform.options(5, 3.0, 0.7))
        x = torch.linspace(-4, 4, 301, dtype=torch.float64)
    else:
        t = splines.SplineTransform(circular_spline(5, 0.7, {"softClipped": {"slope": 1e-3}} if kind.endswith("clipped") else None))
        x = torch.linspace(-math.pi, math.pi, 301, dtype=torch.float64)[:-1]
    raw = (torch.randn(x.shape[0], t.parameter_count, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
           * 1.5).requires_grad_()
    xr = x.clone().requires_grad_()
    y, log_derivative = t.forward(xr, raw)
    slope, = torch.autograd.grad(y.sum(), xr, retain_graph=True)
    assert torch.allclose(log_derivative, slope.log(), atol=1e-10)
    back, inverse_log = t.inverse(y.detach(), raw)
    gap = (back - x).abs()
    if kind != "linear-rational":
        gap = torch.minimum(gap, 2 * math.pi - gap)
        assert ((y >= -math.pi) & (y < math.pi)).all()
    assert gap.max() < 1e-10
    assert torch.allclose(inverse_log, -log_derivative, atol=1e-10)
    inverse_log.sum().backward()
    used = raw.grad.abs().sum(0) > 0
    assert used.all(), f"raw parameters {torch.nonzero(~used).flatten().tolist()} get no gradient"


def test_circular_spline_is_a_smooth_circle_map():
    """f(−π) = −π; inputs a turn apart give one output; the derivative at −π equals the limit at
    π (the shared end derivative), so f is C¹ on the circle; the density integrates to 1."""
    t = splines.SplineTransform(circular_spline(6, 1.0))
    raw = torch.randn(1, t.parameter_count, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 1.5
    x = torch.tensor([-math.pi, -1.0, 0.5, 3.0], dtype=torch.float64)
    y, log_derivative = t.forward(x, raw)
    assert y[0].item() == -math.pi
    y_turned, log_turned = t.forward(x + 2 * math.pi, raw)
    assert torch.allclose(y, y_turned, atol=1e-12) and torch.allclose(log_derivative, log_turned, atol=1e-12)
    _, near_end = t.forward(torch.tensor([math.pi - 1e-9], dtype=torch.float64), raw)
    end = 1e-3 + math.log1p(math.exp(raw[0, -1].item()))
    assert abs(log_derivative[0].item() - math.log(end)) < 1e-12
    assert abs(near_end.item() - math.log(end)) < 1e-6
    grid = torch.linspace(-math.pi, math.pi, 200001, dtype=torch.float64)
    _, inverse_log = t.inverse(grid, raw)
    density = torch.exp(inverse_log) / (2 * math.pi)
    assert abs(torch.trapezoid(density, grid).item() - 1) < 1e-6


def test_circular_shift_and_fixed_shift():
    x = torch.tensor([-math.pi, -0.5, 0.0, 3.0], dtype=torch.float64)
    shift = splines.FixedCircularShift(math.pi)
    y, log_det = shift(x.unsqueeze(0))
    assert torch.allclose(y[0], torch.tensor([0.0, math.pi - 0.5, -math.pi, 3.0 - math.pi], dtype=torch.float64))
    assert log_det.item() == 0
    assert torch.allclose(shift.inverse(y)[0][0], torch.tensor([-math.pi, -0.5, 0.0, 3.0], dtype=torch.float64))
    learned = splines.CircularShiftTransform()
    y, _ = learned.forward(x, torch.full((4, 1), 1.0, dtype=torch.float64))
    expected = np.mod(x.numpy() + 1.0 + np.pi, 2 * np.pi) - np.pi
    assert np.abs(y.numpy() - expected).max() < 1e-15
    with pytest.raises(flows_torch.MappingError, match="finite angle"):
        splines.FixedCircularShift(math.inf)


def test_bad_spline_options_are_refused():
    with pytest.raises(flows_torch.MappingError, match="bound must be π"):
        splines.SplineTransform({**circular_spline(4), "bound": 3.0})
    with pytest.raises(flows_torch.MappingError, match="minimum λ"):
        splines.LinearRationalSplineTransform(lr_spline(minimum_lambda=0.5))
    with pytest.raises(flows_torch.MappingError, match="incomplete"):
        splines.LinearRationalSplineTransform({"bins": 4, "bound": 3.0})
    with pytest.raises(flows_torch.MappingError, match="boundary 'periodic'"):
        splines.SplineTransform({**circular_spline(4), "boundary": "periodic"})

