"""Every base a model file holds, both ways: models fitted by `flows fit --base …` read with
flows_torch.load, flows with random bases written by flows_torch.save and read by `flows`,
and zuko/nflows flows on trainable, mixture and conditional bases. Each compares log-densities
(relative 1e-5 or absolute 1e-4 in float32; 1e-10 in float64) and samples from the same base
noise (``base.swift_noise`` rebuilds the Swift sampler's draws)."""

import copy
import json
import random

import pytest

from conftest import requirements

requirements()
import numpy as np  # noqa: E402 (after the skip)
import torch

import flows_torch
from flows_torch import Flow, bases
from flows_torch.swift_random import SwiftRandom
from conftest import saved_copy_is_identical, read_all, adam_steps, assert_close, run, swift_logprob, torch_logprob, write_csv

BOUNDS = {torch.float32: {}, torch.float64: {"rel": 1e-10, "abs_": 1e-10}}


def assert_log_probs_close(ours, theirs, what, **bounds):
    """As assert_close, with −∞ (a uniform base's outside) required in the same rows."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert np.array_equal(np.isneginf(ours), np.isneginf(theirs)), f"{what}: −∞ in different rows"
    finite = np.isfinite(theirs)
    assert finite.sum() >= len(theirs) // 4, f"{what}: too few finite values to compare ({finite.sum()})"
    assert_close(ours[finite], theirs[finite], what, **bounds)



def swift_samples(model, n, seed, *context):
    return np.loadtxt(run("sample", "--model", model, "-n", n, "--seed", seed, *context).splitlines(), delimiter=",", ndmin=2)


# --- Models fitted by `flows fit --base …` ------------------------------------------------------

# (family, dimension, options)
FITTED = [
    ("maf", 3, ["--layers", "2", "--base", "studentt", "--degrees-of-freedom", "3"]),
    ("nsf", 2, ["--layers", "2", "--bins", "4", "--base", "studentt", "--degrees-of-freedom", "0.7"]),
    ("maf", 2, ["--layers", "2", "--hidden", "16", "--base", "diagonal"]),
    ("realnvp", 3, ["--layers", "2", "--base", "diagonal"]),
    ("maf", 3, ["--layers", "2", "--base", "gmm", "--components", "3"]),
    ("nsf-coupling", 5, ["--layers", "2", "--base", "gmm"]),
    ("gmm", 3, ["--base", "gmm", "--components", "2", "--covariance", "full"]),
]
FITTED_IDS = [f"{f}-d{d}-{o[o.index('--base') + 1]}{i}" for i, (f, d, o) in enumerate(FITTED)]
TYPES = {"studentt": "StudentT", "diagonal": "DiagonalNormal", "gmm": "GaussianMixture"}


@pytest.fixture(scope="module", params=range(len(FITTED)), ids=FITTED_IDS)
def fitted(request, workdir, datasets):
    family, d, options = FITTED[request.param]
    train, points = datasets[d]
    model = workdir / f"base-{FITTED_IDS[request.param]}.safetensors"
    if not model.exists():
        run("fit", "--data", train, "--flow", family, "--steps", 30, "--seed", request.param, "--out", model, *options)
    return str(model), train, points, d, TYPES[options[options.index("--base") + 1]]


def test_fitted_base_log_prob_matches_flows_logprob(fitted):
    model, _, points, _, type_name = fitted
    flow = flows_torch.load(model)
    assert type(flow.base).__name__ == type_name and json.loads(flow.base_json)["type"] == type_name
    assert_close(torch_logprob(flow, points), swift_logprob(model, points), f"log p {model}")


def test_fitted_base_same_noise_same_samples(fitted):
    model, _, _, _, _ = fitted
    n, seed = 100, 5
    flow = flows_torch.load(model)
    noise = flow.base.swift_noise(SwiftRandom(seed), n)
    with torch.no_grad():
        ours = flow().sample_from_noise(noise).double().numpy()
    assert_close(ours, swift_samples(model, n, seed), f"samples {model}")


def test_fitted_base_round_trip_is_identical(fitted, tmp_path):
    model = fitted[0]
    copy = saved_copy_is_identical(model, tmp_path)


def test_fitted_base_trains_in_torch_and_is_written_back(fitted, tmp_path):
    """Gradients reach every parameter, the trained base's too (a Student's t base has none:
    its loc and scale are buffers, as in Swift); the saved result scores as in torch."""
    model, train, points, _, type_name = fitted
    flow = flows_torch.load(model)
    base_parameters = {name for name, _ in flow.named_parameters() if name.startswith("base.")}
    full = json.loads(read_all(model)[0]["base"]).get("covariance") == "full"
    mixture = {"base.precision_log_diagonal", "base.precision_lower"} if full else {"base.log_scales"}
    expected = {"StudentT": set(), "DiagonalNormal": {"base.loc", "base.log_scale"},
                "GaussianMixture": {"base.logits", "base.means"} | mixture}[type_name]
    assert base_parameters == expected
    data = torch.tensor(np.loadtxt(train, delimiter=",", dtype=np.float32, ndmin=2))
    before = {name: p.detach().clone() for name, p in flow.named_parameters()}
    adam_steps(flow, lambda: (-flow().log_prob(data).mean()))
    assert all(not torch.equal(before[n], p) for n, p in flow.named_parameters() if n.startswith("base."))
    out = tmp_path / "trained.safetensors"
    flows_torch.save(flow, out)
    assert_close(torch_logprob(flow, points), swift_logprob(out, points), f"trained {model}")


# --- Random bases written by flows_torch, read by `flows` ---------------------------------------


def random_base(kind, d, r, dtype):
    """A base of ``kind`` with random (not tuned) values; conditional ones take 2 context values."""
    g = torch.Generator().manual_seed(r.randint(0, 10**6))
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    if kind == "Normal":
        return bases.Normal(randn(d) * 0.5, randn(d).abs() + 0.5, 1)
    if kind == "StudentT":
        return bases.StudentT(r.choice([0.6, 1.0, 2.5, 7.0]), randn(d) * 0.5, randn(d).abs() + 0.5, 1)
    if kind == "Uniform":
        low = randn(d) - 3
        return bases.Uniform(low, low + 6 + randn(d).abs(), 1)
    if kind == "DiagonalNormal":
        return bases.DiagonalNormal(randn(d) * 0.5, randn(d) * 0.3, 1)
    if kind == "ConditionalDiagonalNormal":
        base = bases.ConditionalDiagonalNormal(d, 2, [r.randint(1, 12) for _ in range(r.randint(0, 2))],
                                               r.choice(["relu", "tanh", "elu", "sigmoid", "softplus", "leakyRelu"]), dtype)
        with torch.no_grad():
            for p in base.parameters():
                p.copy_(randn(*p.shape) * 0.4)
        return base
    k = r.randint(1, 4)
    if kind == "GaussianMixture-diagonal":
        return bases.GaussianMixture("diagonal", randn(k), randn(k, d) * 2, log_scales=randn(k, d) * 0.3)
    return bases.GaussianMixture("full", randn(k), randn(k, d) * 2, precision_log_diagonal=randn(k, d) * 0.3,
                                 precision_lower=randn(k, d, d) * 0.5)


KINDS = ["Normal", "StudentT", "Uniform", "DiagonalNormal", "ConditionalDiagonalNormal", "GaussianMixture-diagonal",
         "GaussianMixture-full"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_random_base_written_by_torch_matches_flows(kind, seed, dtype, tmp_path):
    """A MAF (or, with a context, a conditional MAF) on a random base: `flows logprob` and
    `flows sample` on the file agree with the module, and flows_torch.load reads it back."""
    r = random.Random(f"{kind}-{seed}")
    d = r.randint(1, 5)
    base = random_base(kind, d, r, dtype)
    context = 2 if kind == "ConditionalDiagonalNormal" else (2 if r.random() < 0.3 else 0)
    plan = {"type": "MAF", "options": {"layers": r.randint(1, 2), "scale": {"exp": {}}, "conditioner": {
        "activation": "tanh", "hiddenSizes": [r.randint(2, 10)], "order": {"natural": {}}, "parameterization": "standard",
        "skipConnections": False}}}
    flow = Flow.from_plan(plan, (d,), context_size=context, dtype=dtype, base=base)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.bijector.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).to(dtype) * 0.2)
    path = tmp_path / "model.safetensors"
    flows_torch.save(flow, path)
    run("info", "--model", path)
    n, sample_seed = 80, 3 + seed
    rng = np.random.default_rng(seed)
    c_rows = rng.uniform(-1, 1, size=(n, context)) if context else None
    c_file = ["--context", write_csv(tmp_path / "c.csv", c_rows)] if context else []
    c = torch.tensor(c_rows, dtype=dtype) if context else None
    # Points: the Swift model's own samples (inside a uniform base's image), some moved out.
    points = swift_samples(path, n, sample_seed, *c_file)
    points[: n // 8] += rng.normal(size=(n // 8, d)) * 3
    points_csv = write_csv(tmp_path / "points.csv", points)
    theirs = np.array([float(v) for v in run("logprob", "--model", path, "--data", points_csv, "--allow-infinite", *c_file).split()])
    rows = torch.tensor(np.loadtxt(points_csv, delimiter=",", ndmin=2), dtype=dtype)
    with torch.no_grad():
        ours = flow(c).log_prob(rows).double().numpy()
        again = flows_torch.load(path)(c).log_prob(rows).double().numpy()
    what = f"{kind} d={d} {dtype} context={context}"
    assert_log_probs_close(ours, theirs, f"log p {what}", **BOUNDS[dtype])
    assert np.array_equal(np.isneginf(ours), np.isneginf(again))
    assert_close(again[np.isfinite(again)], ours[np.isfinite(ours)], f"reloaded {what}", rel=0, abs_=0)
    noise = flow.base.swift_noise(SwiftRandom(sample_seed), n)
    with torch.no_grad():
        samples = flow(c).sample_from_noise(noise).double().numpy()
    assert_close(samples, swift_samples(path, n, sample_seed, *c_file), f"samples {what}",
                 **({} if dtype == torch.float32 else {"rel": 1e-9, "abs_": 1e-9}))


@pytest.mark.parametrize("kind", KINDS)
def test_base_distribution_is_the_torch_one_and_has_gradients(kind):
    """``flow.base(c)`` is the torch distribution; every trained base value gets a gradient, and
    the base's log-density of a point matches an independent computation in float64."""
    r = random.Random(kind)
    d = 3
    base = random_base(kind, d, r, torch.float64)
    c = torch.randn(5, 2, dtype=torch.float64) if base.context_size else None
    x = torch.randn(5, d, dtype=torch.float64)
    if kind == "Uniform":
        x = base.low + (base.high - base.low) * torch.rand(5, d, dtype=torch.float64)
    distribution = base(c)
    assert isinstance(distribution, torch.distributions.Distribution)
    value = distribution.log_prob(x)
    assert (len(list(base.parameters())) > 0) == (kind in ("DiagonalNormal", "ConditionalDiagonalNormal") or kind.startswith("Gauss"))
    if list(base.parameters()):
        value.sum().backward()
    for name, p in base.named_parameters():
        one_component = name == "logits" and p.numel() == 1   # softmax of one logit: constant
        assert p.grad is not None and (one_component or p.grad.abs().sum() > 0), name
    with torch.no_grad():
        assert_close(value.detach().numpy(), independent_log_prob(base, x, c), f"{kind} log p", rel=1e-12, abs_=1e-12)


def independent_log_prob(base, x, c):
    """The base's log-density by its textbook formula, written out with numpy (float64)."""
    from math import lgamma, log, pi
    x = x.numpy()
    if isinstance(base, bases.StudentT):
        nu, z = base.degrees_of_freedom, (x - base.loc.numpy()) / base.scale.numpy()
        return (lgamma((nu + 1) / 2) - lgamma(nu / 2) - 0.5 * log(nu * pi) - np.log(base.scale.numpy())
                - (nu + 1) / 2 * np.log1p(z * z / nu)).sum(-1)
    if isinstance(base, bases.Uniform):
        return np.full(len(x), -np.log(base.high.numpy() - base.low.numpy()).sum())
    if isinstance(base, bases.GaussianMixture):
        k, d = base.means.shape
        weights = np.exp(base.logits.detach().numpy()) / np.exp(base.logits.detach().numpy()).sum()
        total = np.zeros(len(x))
        for j in range(k):
            if base.covariance == "diagonal":
                covariance = np.diag(np.exp(2 * base.log_scales.detach().numpy()[j]))
            else:
                p = np.tril(base.precision_lower.detach().numpy()[j], -1) + np.diag(np.exp(base.precision_log_diagonal.detach().numpy()[j]))
                covariance = np.linalg.inv(p @ p.T)
            diff = x - base.means.detach().numpy()[j]
            quadratic = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(covariance), diff)
            total += weights[j] * np.exp(-0.5 * quadratic) / np.sqrt(np.linalg.det(2 * pi * covariance))
        return np.log(total)
    if isinstance(base, bases.ConditionalDiagonalNormal):
        out = base.network(c).detach().numpy()
        loc, scale = out[:, :x.shape[1]], np.exp(out[:, x.shape[1]:])
    elif isinstance(base, bases.DiagonalNormal):
        loc, scale = base.loc.detach().numpy(), np.exp(base.log_scale.detach().numpy())
    else:
        loc, scale = base.loc.numpy(), base.scale.numpy()
    return (-0.5 * ((x - loc) / scale) ** 2 - np.log(scale * np.sqrt(2 * pi))).sum(-1)


def test_mixture_sample_counts_follow_the_weights():
    """Components picked from uniforms land in proportion to the weights (a chi-square bound)."""
    base = bases.GaussianMixture("diagonal", torch.log(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)),
                                 torch.tensor([[-50.0], [0.0], [50.0]], dtype=torch.float64),
                                 log_scales=torch.zeros(3, 1, dtype=torch.float64))
    n = 20000
    x = base.sample_from_noise(base.swift_noise(SwiftRandom(1), n))
    counts = np.array([(x < -25).sum().item(), ((x > -25) & (x < 25)).sum().item(), (x > 25).sum().item()])
    expected = np.array([0.2, 0.5, 0.3]) * n
    assert ((counts - expected) ** 2 / expected).sum() < 13.8   # chi-square(2) at 0.001


# --- zuko and nflows bases ----------------------------------------------------------------------


def _zuko_base(r, d, kind):
    import zuko
    if kind == "DiagNormal-parameters":
        return zuko.lazy.UnconditionalDistribution(zuko.distributions.DiagNormal, torch.randn(d) * 0.5,
                                                   torch.rand(d) + 0.5, buffer=False)
    covariance, tied = kind.split("-")[1], kind.endswith("tied")
    gmm = zuko.mixtures.GMM(d, components=r.randint(1, 4), covariance_type=covariance, tied=tied)
    with torch.no_grad():
        for p in gmm.parameters():
            p.mul_(0.5)
    return gmm


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kind", ["DiagNormal-parameters", "GMM-diagonal", "GMM-full", "GMM-spherical", "GMM-full-tied"])
def test_zuko_flow_on_base_matches_flows(kind, seed, tmp_path):
    zuko = pytest.importorskip("zuko", reason="zuko is not installed")
    r = random.Random(f"{kind}{seed}")
    torch.manual_seed(seed)
    d = r.randint(2, 5)
    zflow = zuko.flows.MAF(d, transforms=r.randint(1, 3), hidden_features=(r.randint(4, 16),))
    with torch.no_grad():
        for p in zflow.transform.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    zflow.base = _zuko_base(r, d, kind)
    points = write_csv(tmp_path / "points.csv", np.random.default_rng(seed).normal(size=(80, d)) * 2)
    rows = torch.tensor(np.loadtxt(points, delimiter=",", ndmin=2), dtype=torch.float64)
    for dtype in (torch.float32, torch.float64):
        zflow = zflow.to(dtype)
        path = tmp_path / f"zuko-{str(dtype)[6:]}.safetensors"
        flow = flows_torch.save(zflow, path)
        with torch.no_grad():
            theirs = zflow().log_prob(rows.to(dtype)).double().numpy()
        assert_close(swift_logprob(path, points), theirs, f"zuko {kind} d={d} {dtype}", **BOUNDS[dtype])
        expected = "DiagonalNormal" if kind.startswith("DiagNormal") else "GaussianMixture"
        assert type(flow.base).__name__ == expected
        if kind.startswith("DiagNormal"):   # same noise, same samples
            eps = torch.randn(50, d, dtype=dtype)
            with torch.no_grad():
                base = zflow.base()
                z = base.base_dist.loc + base.base_dist.scale * eps
                assert_close(flow().sample_from_noise(eps).double().numpy(), zflow().transform.inv(z).double().numpy(),
                             f"zuko {kind} samples {dtype}", **({} if dtype == torch.float32 else {"rel": 1e-9, "abs_": 1e-9}))


def test_zuko_conditional_gmm_is_refused(tmp_path):
    zuko = pytest.importorskip("zuko", reason="zuko is not installed")
    zflow = zuko.flows.MAF(3, context=2, transforms=1)
    zflow.base = zuko.mixtures.GMM(3, context=2, components=2)
    with pytest.raises(flows_torch.MappingError, match="GMM with a context"):
        flows_torch.save(zflow, tmp_path / "m.safetensors")


def _nflows_encoder(kind, c, d):
    import torch.nn.functional as F
    from nflows.nn.nets import MLP
    if kind == "mlp":
        return MLP([c], [2 * d], hidden_sizes=[7, 5], activation=F.tanh)
    if kind == "sequential":
        return torch.nn.Sequential(torch.nn.Linear(c, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2 * d))
    if kind == "linear":
        return torch.nn.Linear(c, 2 * d)
    return None


@pytest.mark.parametrize("encoder", ["mlp", "sequential", "linear", "identity", "diagonal"])
def test_nflows_flow_on_base_matches_flows(encoder, tmp_path):
    pytest.importorskip("nflows", reason="nflows is not installed")
    from nflows.distributions.normal import ConditionalDiagonalNormal, DiagonalNormal
    from nflows.flows.base import Flow as NFlow
    from nflows.nn.nets import ResidualNet
    from nflows.transforms import (AffineCouplingTransform, CompositeTransform, MaskedAffineAutoregressiveTransform,
                                   ReversePermutation)

    torch.manual_seed(len(encoder))
    d = 3
    c = 2 * d if encoder == "identity" else 2
    if encoder == "diagonal":
        distribution, c = DiagonalNormal([d]), 0
        parts = [MaskedAffineAutoregressiveTransform(d, 8, use_residual_blocks=False), ReversePermutation(d),
                 MaskedAffineAutoregressiveTransform(d, 8, num_blocks=1)]
    else:
        # nflows passes the base's context to every transform: coupling nets that take it.
        distribution = ConditionalDiagonalNormal([d], context_encoder=_nflows_encoder(encoder, c, d))
        net = lambda i, o: ResidualNet(i, o, hidden_features=8, context_features=c, num_blocks=1)
        parts = [AffineCouplingTransform(torch.tensor([1, 0, 1]), net), ReversePermutation(d),
                 AffineCouplingTransform(torch.tensor([0, 1, 0]), net)]
    original = NFlow(CompositeTransform(parts), distribution)
    with torch.no_grad():
        for p in original.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    rng = np.random.default_rng(1)
    y_rows, c_rows = rng.normal(size=(60, d)), rng.uniform(-1, 1, size=(60, c)) * (3 if encoder == "identity" else 1)
    points, contexts = write_csv(tmp_path / "y.csv", y_rows), (write_csv(tmp_path / "c.csv", c_rows) if c else None)
    for dtype in (torch.float32, torch.float64):
        nflow = copy.deepcopy(original).to(dtype)   # (not cast twice: nflows keeps its log Z in a float buffer)
        path = tmp_path / f"nflows-{str(dtype)[6:]}.safetensors"
        flow = flows_torch.save(nflow, path)
        y = torch.tensor(np.loadtxt(points, delimiter=",", ndmin=2), dtype=dtype)
        context = torch.tensor(np.loadtxt(contexts, delimiter=",", ndmin=2), dtype=dtype) if c else None
        with torch.no_grad():
            theirs = nflow.log_prob(y, context=context).double().numpy()
            ours = flow(context).log_prob(y).double().numpy()
        swift = np.array([float(v) for v in run("logprob", "--model", path, "--data", points,
                                                *(["--context", contexts] if c else [])).split()])
        assert_close(swift, theirs, f"nflows {encoder} {dtype}", **BOUNDS[dtype])
        assert_close(ours, theirs, f"nflows {encoder} {dtype} in torch", **BOUNDS[dtype])


def test_nflows_unmapped_encoder_is_named(tmp_path):
    pytest.importorskip("nflows", reason="nflows is not installed")
    from nflows.distributions.normal import ConditionalDiagonalNormal
    from nflows.flows.base import Flow as NFlow
    from nflows.transforms import ReversePermutation

    encoder = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.LayerNorm(6), torch.nn.Linear(6, 6))
    nflow = NFlow(ReversePermutation(3), ConditionalDiagonalNormal([3], context_encoder=encoder))
    with pytest.raises(flows_torch.MappingError, match="ConditionalDiagonalNormal: a Sequential context encoder"):
        flows_torch.save(nflow, tmp_path / "m.safetensors")


def test_fitted_base_export_import_round_trip(fitted, tmp_path):
    """`python -m flows_torch export` then `import` (what `flows export`/`flows import` run) keeps a
    non-normal base's metadata and tensors exactly."""
    from flows_torch.cli import main

    model = fitted[0]
    assert main(["export", model, "--out", str(tmp_path / "m.pt")]) == 0
    checkpoint = torch.load(tmp_path / "m.pt", weights_only=True)
    assert json.loads(checkpoint["base"])["type"] == fitted[4]
    assert main(["import", str(tmp_path / "m.pt"), "--out", str(tmp_path / "back.safetensors")]) == 0
    (meta_a, tensors_a), (meta_b, tensors_b) = read_all(model), read_all(tmp_path / "back.safetensors")
    assert meta_a == meta_b and tensors_a.keys() == tensors_b.keys()
    assert all(torch.equal(tensors_a[k], tensors_b[k]) for k in tensors_a)


@pytest.mark.parametrize("kind", KINDS)
def test_rsample_and_log_prob_agree_on_every_base(kind):
    """``rsample_and_log_prob``'s densities are ``log_prob`` of its samples (float64), samples
    have the flow's batch and event shape, and they carry gradients to the bijector (and to the
    base's parameters, except a mixture's)."""
    r = random.Random(f"rsample-{kind}")
    base = random_base(kind, 3, r, torch.float64)
    context = 2 if base.context_size else 0
    plan = {"type": "MAF", "options": {"layers": 1, "scale": {"exp": {}}, "conditioner": {
        "activation": "tanh", "hiddenSizes": [6], "order": {"natural": {}}, "parameterization": "standard",
        "skipConnections": False}}}
    flow = Flow.from_plan(plan, (3,), context_size=context, dtype=torch.float64, base=base)
    with torch.no_grad():
        for p in flow.bijector.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    c = torch.randn(4, 2, dtype=torch.float64) if context else None
    y, log_p = flow(c).rsample_and_log_prob((5,))
    assert y.shape == ((5, 4, 3) if context else (5, 3))
    assert_close(log_p.detach().numpy(), flow(c).log_prob(y.detach()).detach().numpy(), f"{kind} rsample_and_log_prob",
                 rel=1e-10, abs_=1e-10)
    y.sum().backward()
    for name, p in flow.named_parameters():
        if name.startswith("base.") and kind.startswith("Gauss"):
            assert p.grad is None, name   # a mixture's samples carry no gradient to it
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
