"""Every mapped plan type, written by flows_torch with random parameters and scored by
`flows logprob`: the plan JSON must decode in Swift, the tensor names and shapes must be the
ones Swift expects, and the formulas must agree. Conditional flows are checked for loading in
`flows info`, inverse ∘ forward = identity, the log-determinant against autograd's Jacobian, and
`flows logprob --context` against the module (test_conditional_cli.py compares models that
`flows fit --context-columns` fitted)."""

import json

import pytest

from conftest import requirements

requirements()
import numpy as np  # noqa: E402 (after the skip)
import torch

import flows_torch
from flows_torch import Flow
from conftest import adam_steps, assert_close, run, swift_logprob, torch_logprob, write_csv

MADE = {"activation": "relu", "hiddenSizes": [7, 6], "order": {"random": {}}, "parameterization": "standard",
        "skipConnections": False}
NET = {"activation": "tanh", "hiddenSizes": [8]}


def spline(bins=4, bound=3.0, logit=0.7):
    return {"bins": bins, "bound": bound, "minimumBinWidth": 1e-3, "minimumBinHeight": 2e-3,
            "minimumDerivative": 1e-3, "logitScale": logit}


def p(name, **options):
    return {"type": name, "options": options}


PLANS = {
    "maf-soft-clipped": p("MAF", layers=2, conditioner=MADE, scale={"softClipped": {"bound": 6.9}}),
    "maf-given-order-skip-meanfield-elu": p("MAF", layers=2, scale={"softBounded": {"_0": 3.0}}, conditioner=dict(
        MADE, order={"given": {"_0": [2, 0, 1]}}, skipConnections=True, parameterization="meanField", activation="elu")),
    "maf-reversed-sigmoid-scale": p("MAF", layers=1, scale={"sigmoid": {"bias": 2.0}},
                                    conditioner=dict(MADE, order={"reversed": {}}, activation="softplus")),
    "iaf-clamped": p("IAF", layers=2, scale={"clamped": {"min": -1.0, "max": 0.5}},
                     conditioner=dict(MADE, order={"natural": {}}, activation="leakyRelu")),
    "nsf": p("NSF", layers=2, bins=5, bound=2.0, conditioner=dict(MADE, activation="sigmoid")),
    "compose-ar-permute": p("Compose", parts=[
        p("AffineAutoregressive", conditioner=MADE, scale={"exp": {}}),
        p("Permute", order={"random": {}}),
        p("Invert", inner=p("SplineAutoregressive", transform=spline(), conditioner=MADE)),
        p("Permute", order={"given": {"_0": [1, 2, 0]}})]),
    "couplings": p("Compose", parts=[
        p("AffineCoupling", mask={"alternating": {"parity": 1}}, conditioner=NET, scale={"softClipped": {"bound": 2.0}}),
        p("AdditiveCoupling", mask={"given": {"_0": [True, True, False]}}, conditioner=NET),
        p("Invert", inner=p("SplineCoupling", mask={"alternating": {"parity": 0}}, transform=spline(6, 4.0), conditioner=NET))]),
    "realnvp-nsfc": p("Compose", parts=[p("RealNVP", layers=2, conditioner=NET),
                                        p("NSFCoupling", layers=2, bins=3, bound=3.0, conditioner=NET)]),
    "linear-norms": p("Compose", parts=[p("LULinear"), p("ActNorm"), p("BatchNorm", momentum=0.1, epsilon=1e-5),
                                        p("Householder", reflections=2), p("Invert", inner=p("LULinear"))]),
    "planar-radial": p("Compose", parts=[p("PlanarFlow", layers=2), p("Radial"), p("Planar")]),
    "sylvester-orthogonal-2-columns": p("Compose", parts=[p("Sylvester", variant="orthogonal", columns=2),
                                                          p("SylvesterFlow", layers=2, variant="orthogonal")]),
    "sylvester-householder-triangular": p("Compose", parts=[p("Sylvester", variant="householder", reflections=2),
                                                            p("SylvesterFlow", layers=2, variant="triangular")]),
    "free-elementwise": p("Compose", parts=[p("Affine", scale={"exp": {}}), p("Spline", transform=spline(4, 2.0)),
                                            p("Householder")]),
    "floored-scales": p("Compose", parts=[
        p("MAF", layers=1, scale={"softplus": {"floor": 1e-3}}, conditioner=MADE),
        p("AffineCoupling", mask={"alternating": {"parity": 0}}, conditioner=NET,
          scale={"sigmoidWithFloor": {"bias": 2.0, "floor": 1e-3}}),
        p("Affine", scale={"softplus": {"floor": 0.05}}),
        p("IAF", layers=1, scale={"sigmoidWithFloor": {"bias": -1.0, "floor": 0.2}}, conditioner=MADE)]),
    "functions-1": p("Compose", parts=[p("Exp"), p("Power", exponent=3.0), p("Invert", inner=p("Exp"))]),
    "functions-2": p("Compose", parts=[p("Tanh"), p("AffineFixed", loc=0.0, scale=2.5), p("Invert", inner=p("Tanh"))]),
    "functions-3": p("Compose", parts=[p("Sigmoid"), p("Power", exponent=2.0), p("Invert", inner=p("Sigmoid"))]),
    "functions-4": p("Compose", parts=[p("ELU", alpha=2.0), p("AffineFixed", loc=2.5, scale=1.5),
                                       p("Invert", inner=p("Exp")), p("LeakyReLU", negativeSlope=0.3)]),
    "functions-5": p("Compose", parts=[p("Softplus"), p("Power", exponent=0.5), p("Invert", inner=p("Softplus"))]),
}


def randomize(flow, seed, scale=0.4):
    """Random parameters N(0, scale²), as a trained flow might have (running variances in [0.5, 1.5))."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in flow.named_parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=g, dtype=parameter.dtype) * scale)
        for name, buffer in flow.bijector.named_buffers():
            if name.endswith("running_variance"):
                buffer.copy_(torch.rand(buffer.shape, generator=g, dtype=buffer.dtype) + 0.5)
            elif name.endswith("running_mean"):
                buffer.copy_(torch.randn(buffer.shape, generator=g, dtype=buffer.dtype))
            elif name.endswith("initialized"):
                buffer.fill_(1)
    plan_text = json.dumps(flow.plan) if not isinstance(flow.plan, str) else flow.plan
    return plan_text


def randomize_orders(flow, seed):
    """Random permutations for orders the plan leaves to the draw ('random')."""
    g = torch.Generator().manual_seed(seed + 1)
    for module in flow.bijector.modules():
        if isinstance(module, flows_torch.bijectors.MADE) and '"random"' in flow.plan:
            module.order.copy_(torch.randperm(module.d, generator=g).double())
            module.after_load()
        if isinstance(module, flows_torch.bijectors.Permute) and '"random"' in flow.plan:
            module.permutation.copy_(torch.randperm(len(module.permutation), generator=g).double())
            module.after_load()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(PLANS))
def test_plan_written_by_torch_scores_the_same_in_swift(name, dtype, tmp_path):
    """Bounds: relative 1e-5 (absolute 1e-4 near zero) in float32, 1e-10 in float64."""
    bounds = {} if dtype == torch.float32 else {"rel": 1e-10, "abs_": 1e-10}
    flow = Flow.from_plan(PLANS[name], (3,), dtype=dtype)
    randomize(flow, hash(name) % 1000)
    randomize_orders(flow, 3)
    path = tmp_path / "model.safetensors"
    flows_torch.save(flow, path)
    run("info", "--model", path)
    # Points in the support: functions-* flows are defined on all of R³ by construction.
    rows = np.random.default_rng(5).normal(size=(50, 3)) * 1.5
    rows[:2] *= 3
    points = write_csv(tmp_path / "points.csv", rows)
    what = f"plan {name} {str(dtype)[6:]}"
    assert_close(torch_logprob(flow, points), swift_logprob(path, points), what, **bounds)
    assert_close(torch_logprob(flows_torch.load(path), points), swift_logprob(path, points), f"{what} reloaded", **bounds)


def jacobian_log_det(bijector, x, context):
    """log|det ∂f/∂x| by autograd, one point at a time (float64)."""
    out = []
    for i in range(x.shape[0]):
        c = None if context is None else context[i]
        j = torch.autograd.functional.jacobian(lambda v: bijector(v, c)[0], x[i])
        out.append(torch.linalg.slogdet(j)[1])
    return torch.stack(out)


CONDITIONAL = {
    "maf": p("MAF", layers=2, conditioner=MADE, scale={"exp": {}}),
    "nsf": p("NSF", layers=2, bins=4, bound=3.0, conditioner=MADE),
    "realnvp": p("RealNVP", layers=2, conditioner=NET),
    "nsf-coupling": p("NSFCoupling", layers=2, bins=4, bound=3.0, conditioner=NET),
    "affine-free-1d": p("Affine", scale={"exp": {}}),
    "maf-1d": p("MAF", layers=2, conditioner=MADE, scale={"softClipped": {"bound": 3.0}}),
    "nsf-1d": p("NSF", layers=1, bins=4, bound=3.0, conditioner=MADE),
    "maf-context-layers": p("MAF", layers=2, conditioner={**MADE, "contextLayers": True}, scale={"exp": {}}),
    "nsf-residual-context-layers": p("NSF", layers=2, bins=4, bound=3.0,
                                     conditioner={**MADE, "hiddenSizes": [7], "residualBlocks": 2, "contextLayers": True}),
}


@pytest.mark.parametrize("name", sorted(CONDITIONAL))
def test_conditional_flow(name, tmp_path):
    d = 1 if name.endswith("-1d") else 3
    flow = Flow.from_plan(CONDITIONAL[name], (d,), context_size=2, dtype=torch.float64)
    randomize(flow, 7)
    randomize_orders(flow, 7)
    path = tmp_path / "conditional.safetensors"
    flows_torch.save(flow, path)
    info = json.loads(run("info", "--model", path, "--json"))
    assert info["context_size"] == 2
    loaded = flows_torch.load(path)
    x = torch.randn(6, d, dtype=torch.float64)
    c = torch.randn(6, 2, dtype=torch.float64)
    y, log_det = loaded.bijector(x, c)
    back, inverse_log_det = loaded.bijector.inverse(y, c)
    assert torch.allclose(back, x, atol=1e-10), "inverse(forward(x)) ≠ x"
    assert torch.allclose(log_det, -inverse_log_det, atol=1e-10)
    assert torch.allclose(log_det, jacobian_log_det(loaded.bijector, x, c), atol=1e-8)
    # The context matters, and log_prob broadcasts one context over many points.
    lp1 = loaded(c[0]).log_prob(y)
    lp2 = loaded(c[1]).log_prob(y)
    assert not torch.allclose(lp1, lp2)
    assert loaded(c[0]).rsample((4,)).shape == (4, d)
    # Swift scores the same rows with their contexts (float64 bounds).
    points, contexts = write_csv(tmp_path / "y.csv", y.detach().numpy()), write_csv(tmp_path / "c.csv", c.numpy())
    ours = np.array([float(v) for v in run("logprob", "--model", path, "--data", points, "--context", contexts).split()])
    with torch.no_grad():
        assert_close(ours, loaded(c).log_prob(y).numpy(), f"conditional {name} in Swift", rel=1e-10, abs_=1e-10)


@pytest.mark.parametrize("name", sorted(n for n in PLANS if not n.startswith("functions")))
def test_plan_trained_in_torch_is_written_back(name, tmp_path):
    """Gradients reach every parameter (BatchNorm in training mode also moves its running
    statistics); after a few Adam steps the saved file scores as the module does."""
    flow = Flow.from_plan(PLANS[name], (3,))
    randomize(flow, 11)
    randomize_orders(flow, 11)
    data = torch.tensor(np.random.default_rng(1).normal(size=(64, 3)), dtype=torch.float32)
    adam_steps(flow, lambda: (-flow().log_prob(data).mean()), nonzero=False)
    path = tmp_path / "trained.safetensors"
    flows_torch.save(flow, path)
    points = write_csv(tmp_path / "points.csv", np.random.default_rng(6).normal(size=(40, 3)))
    assert_close(torch_logprob(flow, points), swift_logprob(path, points), f"trained plan {name}")
