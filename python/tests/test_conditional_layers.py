"""Conditional planar, radial, Householder and Sylvester layers (parameters θ + g(c) from a
network of the context) and context embeddings (``ContextEmbedding``, nflows' ``embedding_net``).

- Models fitted by ``flows fit --context-columns 0`` (float32) read with flows_torch.load:
  ``flow(c).log_prob`` against ``flows logprob``, samples from the same noise against
  ``flows sample --context``, gradients reaching every parameter, and a model trained further in
  torch and saved back scored by ``flows logprob``.
- Plans written from Python with random parameters in float32 and float64 (Householder has no
  ``--flow``): ``flows logprob --context`` against the module, inverse ∘ forward, the
  log-determinant against autograd's Jacobian, one shared context against per-row contexts, and
  gradients against central differences.
- nflows flows with an ``embedding_net``, saved by flows_torch and scored by ``flows logprob``
  against nflows' own log_prob; inexpressible embedding nets refused by name.

Bounds: relative 1e-5 or absolute 1e-4 in float32, 1e-10 in float64."""

import json

import pytest

from conftest import requirements

requirements()
import numpy as np  # noqa: E402 (after the skip)
import torch

import flows_torch
from flows_torch import Flow, MappingError
from flows_torch.swift_random import SwiftRandom
from conftest import adam_steps, assert_close, run, write_csv
from test_plans import jacobian_log_det, randomize

FLOAT64 = {"rel": 1e-10, "abs_": 1e-10}


def conditional_rows(d, n, seed):
    """One context column c ~ U(−2, 2) first, then d columns of y | c (curved in c)."""
    r = np.random.default_rng(seed)
    c = r.uniform(-2, 2, size=n)
    y = np.column_stack([np.sin(c) * (k + 1) + 0.4 * c + 0.3 * r.normal(size=n) for k in range(d)])
    return np.column_stack([c, y])


def swift_values(*arguments):
    return np.array([float(v) for v in run(*arguments).split()])


# --- Models fitted by `flows fit` -------------------------------------------------------------

# (name, family, dimension of y, extra `flows fit` options)
FITTED = [
    ("planar", "planar", 2, ["--layers", "3"]),
    ("radial", "radial", 3, ["--layers", "3"]),
    ("sylvester", "sylvester", 3, ["--layers", "2"]),
    ("planar-embedded", "planar", 2, ["--layers", "2", "--context-embedding", "8,3"]),
    ("maf-embedded", "maf", 2, ["--layers", "2", "--hidden", "8", "--context-embedding", "6,6,2"]),
]


@pytest.fixture(scope="module", params=FITTED, ids=[case[0] for case in FITTED])
def fitted(request, tmp_path_factory):
    name, family, d, options = request.param
    folder = tmp_path_factory.mktemp(name)
    write_csv(folder / "train.csv", conditional_rows(d, 300, 1))
    rows = conditional_rows(d, 48, 2)
    rows[:2, 1:] *= 3.0                                  # a few points far out
    model = folder / "model.safetensors"
    run("fit", "--data", folder / "train.csv", "--context-columns", 0, "--flow", family, "--steps", 30,
        "--seed", 3, "--out", model, *options)
    return dict(name=name, model=str(model), folder=folder, d=d, rows=write_csv(folder / "eval.csv", rows),
                y=torch.tensor(rows[:, 1:].astype(np.float32)), c=torch.tensor(rows[:, :1].astype(np.float32)))


def test_fitted_model_scores_as_flows_logprob(fitted):
    flow = flows_torch.load(fitted["model"])
    assert flow.context_size == 1 and flow.dtype == torch.float32
    plan = json.loads(flow.plan)
    if "embedded" in fitted["name"]:
        assert plan["type"] == "ContextEmbedding"
        assert any(k.startswith("bijector.embedding.layers.") for k in flow.state_dict())
    else:
        assert any(".context_network.network.layers." in k for k in flow.state_dict())
    theirs = swift_values("logprob", "--model", fitted["model"], "--data", fitted["rows"], "--context-columns", 0)
    with torch.no_grad():
        ours = flow(fitted["c"]).log_prob(fitted["y"]).double().numpy()
        elsewhere = flow(fitted["c"] + 1.5).log_prob(fitted["y"]).double().numpy()
    assert_close(ours, theirs, f"load {fitted['name']}: log p(y | c) float32")
    assert np.abs(elsewhere - ours).max() > 1e-3, "the context changes nothing"


def test_fitted_model_samples_from_the_same_noise(fitted):
    flow, d, n, seed = flows_torch.load(fitted["model"]), fitted["d"], 40, 11
    noise = torch.tensor(SwiftRandom(seed).normals(n * d), dtype=torch.float64).to(torch.float32).reshape(n, d)
    one = np.loadtxt(run("sample", "--model", fitted["model"], "-n", n, "--seed", seed, "--context", "0.7").splitlines(),
                     delimiter=",", ndmin=2)
    contexts = fitted["c"][:n]
    per_row_file = write_csv(fitted["folder"] / "sample-context.csv", contexts.double().numpy())
    per_row = np.loadtxt(run("sample", "--model", fitted["model"], "-n", n, "--seed", seed, "--context", per_row_file).splitlines(),
                         delimiter=",", ndmin=2)
    with torch.no_grad():
        assert_close(one, flow(torch.tensor([0.7])).sample_from_noise(noise).double().numpy(),
                     f"sample {fitted['name']} at c = 0.7 float32")
        assert_close(per_row, flow(contexts).sample_from_noise(noise).double().numpy(),
                     f"sample {fitted['name']} at per-row contexts float32")


def test_fitted_model_trains_in_torch_and_is_written_back(fitted, tmp_path):
    flow = flows_torch.load(fitted["model"])
    adam_steps(flow, lambda: (-flow(fitted["c"]).log_prob(fitted["y"]).mean()))
    path = tmp_path / "trained.safetensors"
    flows_torch.save(flow, path)
    theirs = swift_values("logprob", "--model", path, "--data", fitted["rows"], "--context-columns", 0)
    with torch.no_grad():
        ours = flow(fitted["c"]).log_prob(fitted["y"]).double().numpy()
    assert_close(ours, theirs, f"save {fitted['name']} after training in torch: float32")
    assert flows_torch.load(path).plan == flow.plan


# --- Plans written from Python ---------------------------------------------------------------


def p(name, **options):
    return {"type": name, "options": options}


NETWORK = {"activation": "tanh", "hiddenSizes": [7]}
MADE = {"activation": "relu", "hiddenSizes": [8], "order": {"natural": {}}, "parameterization": "standard",
        "skipConnections": False}
PLANS = {
    "planar": p("Planar", invertibilityMargin=0.1),
    "planar-flow": p("PlanarFlow", layers=2, invertibilityMargin=0.1),
    "radial": p("Radial", contextNetwork=NETWORK),
    "radial-flow": p("RadialFlow", layers=2),
    "householder": p("Householder", reflections=2, contextNetwork={"activation": "elu", "hiddenSizes": [5, 4]}),
    "householder-default": p("Householder"),
    "sylvester-orthogonal": p("Sylvester", variant="orthogonal", columns=2, contextNetwork=NETWORK),
    "sylvester-householder": p("Sylvester", variant="householder", reflections=2),
    "sylvester-triangular-flow": p("SylvesterFlow", layers=2, variant="triangular"),
    "embedding-householder-maf": p("ContextEmbedding", features=2, network={"activation": "softplus", "hiddenSizes": [6]},
                                   inner=p("Compose", parts=[p("Householder"), p("MAF", layers=1, conditioner=MADE,
                                                                                  scale={"exp": {}})])),
    "embedding-linear-radial": p("ContextEmbedding", features=4, network={"activation": "relu", "hiddenSizes": []},
                                 inner=p("RadialFlow", layers=2)),
}


def python_flow(name, dtype, context_size=2, d=3, seed=5):
    flow = Flow.from_plan(PLANS[name], (d,), context_size=context_size, dtype=dtype)
    randomize(flow, seed, scale=0.4)
    return flow


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(PLANS))
def test_python_plan_scores_the_same_in_swift(name, dtype, tmp_path):
    bounds = {} if dtype == torch.float32 else FLOAT64
    flow = python_flow(name, dtype)
    path = tmp_path / "model.safetensors"
    flows_torch.save(flow, path)
    assert json.loads(run("info", "--model", path, "--json"))["context_size"] == 2
    r = np.random.default_rng(9)
    y, c = r.normal(size=(40, 3)) * 1.5, r.normal(size=(40, 2))
    points, contexts = write_csv(tmp_path / "y.csv", y), write_csv(tmp_path / "c.csv", c)
    numpy_dtype = np.float32 if dtype == torch.float32 else np.float64
    with torch.no_grad():
        ours = flows_torch.load(path)(torch.tensor(c.astype(numpy_dtype))).log_prob(torch.tensor(y.astype(numpy_dtype)))
    theirs = swift_values("logprob", "--model", path, "--data", points, "--context", contexts)
    assert_close(ours.double().numpy(), theirs, f"save {name} {str(dtype)[6:]}", **bounds)
    # One context for every row, as `flows sample --context 0.3,-0.8` gives it.
    n, seed = 30, 4
    noise = torch.tensor(SwiftRandom(seed).normals(n * 3), dtype=torch.float64).to(dtype).reshape(n, 3)
    samples = np.loadtxt(run("sample", "--model", path, "-n", n, "--seed", seed, "--context", "0.3,-0.8").splitlines(),
                         delimiter=",", ndmin=2)
    with torch.no_grad():
        drawn = flow(torch.tensor([0.3, -0.8], dtype=dtype)).sample_from_noise(noise).double().numpy()
    # `flows sample` prints float64 values with 17 digits and float32 ones as float32.
    assert_close(drawn, samples, f"sample {name} {str(dtype)[6:]}", **bounds)


@pytest.mark.parametrize("name", sorted(PLANS))
def test_python_plan_is_a_bijection_with_its_jacobian(name):
    flow = python_flow(name, torch.float64)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    c = torch.randn(6, 2, generator=g, dtype=torch.float64)
    y, log_det = flow.bijector(x, c)
    back, inverse_log_det = flow.bijector.inverse(y, c)
    assert torch.allclose(back, x, atol=1e-10), "inverse(forward(x)) ≠ x"
    assert torch.allclose(log_det, -inverse_log_det, atol=1e-10)
    assert torch.allclose(log_det, jacobian_log_det(flow.bijector, x, c), atol=1e-9)
    # One context [C] for every row equals that context repeated per row, and differs from another.
    shared, _ = flow.bijector(x, c[0])
    repeated, _ = flow.bijector(x, c[0].expand(6, 2))
    assert torch.allclose(shared, repeated, atol=1e-12)
    assert not torch.allclose(shared, flow.bijector(x, c[1])[0], atol=1e-6)


@pytest.mark.parametrize("name", ["planar", "radial", "householder", "sylvester-orthogonal", "sylvester-triangular-flow",
                                  "embedding-householder-maf"])
def test_gradients_match_central_differences(name):
    """∂/∂θ of Σ log p(y | c) through the inverse (the per-point tanh equations included), for
    two entries of every parameter, against central differences in float64."""
    flow = python_flow(name, torch.float64)
    g = torch.Generator().manual_seed(8)
    y = torch.randn(8, 3, generator=g, dtype=torch.float64)
    c = torch.randn(8, 2, generator=g, dtype=torch.float64)

    def total():
        return flow(c).log_prob(y).sum()

    flow.zero_grad()
    total().backward()
    step = 1e-6
    for parameter_name, parameter in flow.named_parameters():
        assert parameter.grad is not None, f"no gradient reaches {parameter_name}"
        for index in torch.randperm(parameter.numel(), generator=g)[:2].tolist():
            with torch.no_grad():
                flat = parameter.view(-1)
                saved = flat[index].item()
                flat[index] = saved + step
                up = total().item()
                flat[index] = saved - step
                down = total().item()
                flat[index] = saved
            numeric, analytic = (up - down) / (2 * step), parameter.grad.view(-1)[index].item()
            assert abs(numeric - analytic) <= 1e-6 * (1 + abs(numeric)), \
                f"{name}: ∂/∂{parameter_name}[{index}] is {analytic} by autograd, {numeric} by central differences"


def test_conditional_layer_starts_as_its_own_parameters_when_the_network_is_zero():
    """θ + g(c) with g's last layer zero and bias zero is θ for every context: the unconditional layer."""
    conditional = python_flow("sylvester-orthogonal", torch.float64)
    unconditional = Flow.from_plan(PLANS["sylvester-orthogonal"], (3,), dtype=torch.float64)
    state = {k: v for k, v in conditional.state_dict().items() if "context_network" not in k}
    unconditional.load_state_dict(state)
    last = conditional.bijector.context_network.network.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    y = torch.randn(5, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(conditional(torch.randn(5, 2, dtype=torch.float64)).log_prob(y), unconditional().log_prob(y),
                              rtol=0, atol=1e-13)


def test_bad_contexts_and_plans_are_refused():
    flow = python_flow("planar", torch.float64)
    with pytest.raises(ValueError, match=r"shape \[\.\.\., 2\]"):
        flow(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(MappingError, match="needs a context of size 2"):
        flow.bijector(torch.zeros(4, 3, dtype=torch.float64), torch.zeros(4, 5, dtype=torch.float64))
    with pytest.raises(MappingError, match="ContextEmbedding embeds a context"):
        Flow.from_plan(PLANS["embedding-linear-radial"], (3,), dtype=torch.float64)
    with pytest.raises(MappingError, match="perceptron"):
        Flow.from_plan(p("Radial", contextNetwork={"activation": "relu", "hiddenSizes": [4], "residualBlocks": 2}), (3,),
                       context_size=2)
    with pytest.raises(MappingError, match="directly inside another"):
        Flow.from_plan(p("ContextEmbedding", features=2, network=NETWORK, inner=PLANS["embedding-linear-radial"]), (3,),
                       context_size=2)


# --- nflows flows with an embedding_net ------------------------------------------------------


def nflows_flow(kind, dtype):
    from nflows.distributions.normal import ConditionalDiagonalNormal, StandardNormal
    from nflows.flows.base import Flow as NFlow
    from nflows.nn.nets import MLP, ResidualNet
    from nflows.transforms import (CompositeTransform, MaskedAffineAutoregressiveTransform,
                                   PiecewiseRationalQuadraticCouplingTransform, ReversePermutation)
    from torch import nn

    torch.manual_seed(4)
    d, c, e = 3, 5, 4
    transforms = [MaskedAffineAutoregressiveTransform(d, 6, context_features=e), ReversePermutation(d),
                  PiecewiseRationalQuadraticCouplingTransform(
                      torch.tensor([1, 0, 1]), lambda i, o: ResidualNet(i, o, 7, context_features=e, num_blocks=1),
                      tails="linear", num_bins=4, tail_bound=3.0)]
    base = StandardNormal([d])
    embedding = nn.Sequential(nn.Linear(c, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, e))
    if kind == "nflows-mlp-conditional-base":
        embedding = MLP([c], [e], hidden_sizes=[9, 9], activation=torch.relu)
        base = ConditionalDiagonalNormal([d], context_encoder=nn.Sequential(nn.Linear(e, 6), nn.ReLU(), nn.Linear(6, 2 * d)))
    elif kind == "nflows-linear-identity-base":
        embedding = nn.Linear(c, 2 * d)
        transforms = [MaskedAffineAutoregressiveTransform(d, 6, context_features=2 * d)]
        base = ConditionalDiagonalNormal([d])
    flow = NFlow(CompositeTransform(transforms), base, embedding_net=embedding).to(dtype)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)
    return flow.eval(), c


NFLOWS = ["nflows-sequential-standard-base", "nflows-mlp-conditional-base", "nflows-linear-identity-base"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", NFLOWS)
def test_nflows_embedding_net_is_saved_as_a_context_embedding(kind, dtype, tmp_path):
    pytest.importorskip("nflows", reason="nflows is not installed")
    bounds = {} if dtype == torch.float32 else FLOAT64
    nflow, c = nflows_flow(kind, dtype)
    path = tmp_path / "nflows.safetensors"
    flows_torch.save(nflow, path)
    flow = flows_torch.load(path)
    assert json.loads(flow.plan)["type"] == "ContextEmbedding" and flow.context_size == c
    r = np.random.default_rng(2)
    y, context = r.normal(size=(40, 3)), r.normal(size=(40, c))
    points, contexts = write_csv(tmp_path / "y.csv", y), write_csv(tmp_path / "c.csv", context)
    numpy_dtype = np.float32 if dtype == torch.float32 else np.float64
    with torch.no_grad():
        theirs = nflow.log_prob(torch.tensor(y.astype(numpy_dtype)), context=torch.tensor(context.astype(numpy_dtype)))
    ours = swift_values("logprob", "--model", path, "--data", points, "--context", contexts)
    assert_close(ours, theirs.double().numpy(), f"nflows {kind} {str(dtype)[6:]}", **bounds)
    if kind == "nflows-sequential-standard-base":
        # Samples: nflows maps base noise through its transforms' inverses at the embedded context.
        noise = torch.randn(40, 3, dtype=dtype)
        rows = torch.tensor(context.astype(numpy_dtype))
        with torch.no_grad():
            expected, _ = nflow._transform.inverse(noise, context=nflow._embedding_net(rows))
            drawn = flow(rows).sample_from_noise(noise)
        assert_close(drawn.double().numpy(), expected.double().numpy(), f"nflows {kind} samples {str(dtype)[6:]}", **bounds)


def test_nflows_embedding_nets_we_cannot_express_are_refused():
    pytest.importorskip("nflows", reason="nflows is not installed")
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow as NFlow
    from nflows.transforms import MaskedAffineAutoregressiveTransform
    from torch import nn

    def flow(embedding, features=4):
        return NFlow(MaskedAffineAutoregressiveTransform(3, 6, context_features=features), StandardNormal([3]),
                     embedding_net=embedding)

    cases = [
        (nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.1), nn.Linear(8, 4)), "the nflows flow: a Sequential embedding_net must alternate"),
        (nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 4)), "one activation"),
        (nn.Sequential(nn.Linear(5, 8), nn.ReLU()), "end with a Linear layer"),
        (nn.Sequential(nn.Linear(5, 8), nn.LeakyReLU(0.2), nn.Linear(8, 4)), "LeakyReLU"),
        (nn.GRU(5, 4), "its embedding_net GRU is not mapped"),
        (nn.Linear(5, 4, bias=False), "embedding_net layers without a bias"),
        (nn.Linear(5, 3), "gives 3 values, but its transforms take a context of 4"),
    ]
    for embedding, message in cases:
        with pytest.raises(MappingError, match=message):
            flows_torch.save(flow(embedding), "/nonexistent/never-written.safetensors")
