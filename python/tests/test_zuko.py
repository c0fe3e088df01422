"""zuko flows written with flows_torch.save and scored by `flows logprob` (and sampled by
`flows sample` from the same noise as zuko's inverse transform)."""

import copy
import json

import pytest

from conftest import requirements

requirements()
import numpy as np  # noqa: E402 (after the skip)
import torch

from safetensors import safe_open

import flows_torch
from flows_torch.swift_random import SwiftRandom
from conftest import assert_close, run, swift_logprob, write_csv

zuko = pytest.importorskip("zuko", reason="zuko is not installed: the zuko export tests are skipped")

CASES = {
    "maf-3": lambda: zuko.flows.MAF(3, transforms=3, hidden_features=(16, 16)),
    "maf-5-randperm-uneven-widths": lambda: zuko.flows.MAF(5, transforms=2, hidden_features=(7, 10), randperm=True),
    "maf-4-passes-2": lambda: zuko.flows.MAF(4, transforms=2, passes=2, hidden_features=(9,)),
    "maf-2-tanh-slope": lambda: zuko.flows.MAF(2, transforms=2, hidden_features=(5, 5), activation=torch.nn.Tanh,
                                               univariate=__import__("functools").partial(
                                                   zuko.transforms.MonotonicAffineTransform, slope=1e-2)),
    "realnvp-3": lambda: zuko.flows.RealNVP(3, transforms=3, hidden_features=(16,)),
    "nice-5-randmask": lambda: zuko.flows.NICE(5, transforms=2, randmask=True, hidden_features=(12, 12)),
}


def perturbed(make, seed):
    """A zuko flow with its parameters moved off the initial values (as after training)."""
    torch.manual_seed(seed)
    flow = make()
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    return flow


@pytest.mark.parametrize("name", sorted(CASES))
def test_zuko_flow_scores_the_same_in_swift(name, tmp_path):
    zflow = perturbed(CASES[name], 1)
    path = tmp_path / "zuko.safetensors"
    flows_torch.save(zflow, path)
    json.loads(run("info", "--model", path, "--json"))
    d = zflow.base().base_dist.loc.shape[0]
    points = write_csv(tmp_path / "points.csv", np.random.default_rng(2).normal(size=(200, d)) * 1.5)
    rows = torch.tensor(np.loadtxt(points, delimiter=",", dtype=np.float32, ndmin=2))
    with torch.no_grad():
        theirs = zflow().log_prob(rows).double().numpy()
        ours = flows_torch.load(path)().log_prob(rows).double().numpy()
    assert_close(swift_logprob(path, points), theirs, f"zuko {name}: flows logprob vs zuko")
    assert_close(ours, theirs, f"zuko {name}: flows_torch.load vs zuko")
    again = tmp_path / "again.safetensors"
    flows_torch.save(flows_torch.load(path), again)
    with safe_open(str(path), "pt") as a, safe_open(str(again), "pt") as b:
        assert a.metadata() == b.metadata() and set(a.keys()) == set(b.keys())
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())

    # The same base noise: zuko's inverse transform and `flows sample`.
    n, seed = 50, 3
    noise = torch.tensor(SwiftRandom(seed).normals(n * d), dtype=torch.float64).to(torch.float32).reshape(n, d)
    with torch.no_grad():
        zuko_samples = zflow().transform.inv(noise).double().numpy()  # base is N(0, I)
    swift_samples = np.loadtxt(run("sample", "--model", path, "-n", n, "--seed", seed).splitlines(), delimiter=",", ndmin=2)
    assert_close(swift_samples, zuko_samples, f"zuko {name}: samples")


@pytest.mark.parametrize("kind", ["maf", "realnvp"])
def test_conditional_zuko_flow(kind, tmp_path):
    make = (lambda: zuko.flows.MAF(3, 2, transforms=2, hidden_features=(8, 8))) if kind == "maf" else (
        lambda: zuko.flows.RealNVP(3, 2, transforms=2, hidden_features=(8,)))
    zflow = perturbed(make, 4)
    path = tmp_path / "conditional.safetensors"
    flows_torch.save(zflow, path)
    assert json.loads(run("info", "--model", path, "--json"))["context_size"] == 2
    loaded = flows_torch.load(path)
    x, c = torch.randn(40, 3), torch.randn(40, 2)
    with torch.no_grad():
        assert_close(loaded(c).log_prob(x).numpy(), zflow(c).log_prob(x).numpy(), f"conditional zuko {kind}")


def assert_float32_samples_close(ours, zuko32, zuko64, what):
    """float32 samples within the float32 bounds of zuko's float32 samples wherever zuko's own
    float32 result is within them of its float64 one (on the same weights and noise). Elsewhere
    the sequential inverse amplifies rounding beyond the bounds for any float32 code (zuko's own
    float32 samples of nsf-6-bins5-passes-2 stray 1.4e-4 from its float64 ones, ours 2.9e-5):
    there ours must lie no farther from zuko's float64 value than twice zuko's float32 result."""
    rounding = np.abs(zuko32 - zuko64)
    conditioned = (rounding <= 1e-4) | (rounding <= 1e-5 * np.abs(zuko64))
    assert conditioned.mean() > 0.9, f"{what}: only {conditioned.mean():.0%} of the samples are well conditioned"
    assert_close(ours[conditioned], zuko32[conditioned], what)
    worse = np.abs(ours - zuko64)[~conditioned] > 2 * rounding[~conditioned]
    assert not worse.any(), f"{what}: {worse.sum()} ill-conditioned samples farther from zuko's float64 value than 2× zuko's float32"
    if (~conditioned).any():
        print(f"{what}: {(~conditioned).sum()} ill-conditioned values, largest |ours − zuko64| "
              f"{np.abs(ours - zuko64)[~conditioned].max():.3g} vs zuko32 {rounding[~conditioned].max():.3g}")


def _rqs_coupling(features, bins, hidden, transforms):
    """zuko coupling layers with the rational-quadratic spline (zuko's NSF with passes=2 is masked
    autoregressive instead): GeneralCouplingTransform(univariate=MonotonicRQSTransform)."""
    from zuko.flows.autoregressive import UnconditionalDistribution
    from zuko.flows.coupling import GeneralCouplingTransform
    layers = [GeneralCouplingTransform(features, mask=torch.arange(features) % 2 == i % 2,
                                       univariate=zuko.transforms.MonotonicRQSTransform,
                                       shapes=[(bins,), (bins,), (bins - 1,)], hidden_features=hidden)
              for i in range(transforms)]
    base = UnconditionalDistribution(zuko.distributions.DiagNormal, torch.zeros(features), torch.ones(features), buffer=True)
    return zuko.flows.Flow(layers, base)


# zuko's NSF (MonotonicRQSTransform: soft-clipped logits, no minimum bin size, derivatives exp(·),
# bound 5): features 2..10, bins 4..12, 1..4 transforms, autoregressive and passes=2.
NSF_CASES = {
    "nsf-2-bins4-one-transform": lambda: zuko.flows.NSF(2, transforms=1, bins=4, hidden_features=(8,)),
    "nsf-3-bins8": lambda: zuko.flows.NSF(3, transforms=3, hidden_features=(16, 16)),
    "nsf-5-bins12-randperm-tanh": lambda: zuko.flows.NSF(5, transforms=2, bins=12, randperm=True, hidden_features=(7, 10),
                                                         activation=torch.nn.Tanh),
    "nsf-6-bins5-passes-2": lambda: zuko.flows.NSF(6, transforms=4, bins=5, passes=2, hidden_features=(12,)),
    "nsf-10-bins6-slope-1e-2": lambda: zuko.flows.NSF(10, transforms=2, bins=6, slope=1e-2, hidden_features=(32, 24)),
    "nsf-7-bins10-passes-3-elu": lambda: zuko.flows.NSF(7, transforms=1, bins=10, passes=3, hidden_features=(20,),
                                                        activation=torch.nn.ELU),
    "rqs-coupling-4-bins7": lambda: _rqs_coupling(4, 7, (8, 8), 2),
}


@pytest.mark.parametrize("name", sorted(NSF_CASES))
def test_zuko_spline_flow_scores_and_samples_the_same(name, tmp_path):
    zflow = perturbed(NSF_CASES[name], 5)
    d = zflow.base().base_dist.loc.shape[0]
    # Inside and outside zuko's bound 5, at it, and far beyond.
    rows = np.random.default_rng(3).normal(size=(150, d)) * 3
    rows[:6] = np.array([-50.0, -7.0, -5.0, 5.0, 7.0, 50.0])[:, None]
    assert (np.abs(rows) > 5).any(axis=1).mean() > 0.15 and (np.abs(rows) < 5).all(axis=1).mean() > 0.15
    points = write_csv(tmp_path / "points.csv", rows)
    for dtype, bounds in ((torch.float32, {}), (torch.float64, {"rel": 1e-10, "abs_": 1e-10})):
        zflow = zflow.to(dtype)
        kind = str(dtype)[6:]
        path = tmp_path / f"zuko-{kind}.safetensors"
        flows_torch.save(zflow, path)
        loaded = flows_torch.load(path)
        assert '"softClipped":{"slope":' in loaded.plan.replace(" ", "")
        x = torch.tensor(np.loadtxt(points, delimiter=",", ndmin=2), dtype=dtype)
        with torch.no_grad():
            theirs = zflow().log_prob(x).double().numpy()
            ours = loaded().log_prob(x).double().numpy()
        assert_close(swift_logprob(path, points), theirs, f"zuko {name} {kind}: flows logprob vs zuko", **bounds)
        assert_close(ours, theirs, f"zuko {name} {kind}: flows_torch.load vs zuko", **bounds)

        # The same base noise through zuko's inverse, `flows sample` and the loaded module.
        n, seed = 60, 7
        noise = torch.tensor(SwiftRandom(seed).normals(n * d), dtype=torch.float64).to(dtype).reshape(n, d)
        with torch.no_grad():
            zuko_samples = zflow().transform.inv(noise).double().numpy()  # base is N(0, I)
            exact = copy.deepcopy(zflow).double()().transform.inv(noise.double()).numpy()
            loaded_samples = loaded().sample_from_noise(noise).double().numpy()
        swift_samples = np.loadtxt(run("sample", "--model", path, "-n", n, "--seed", seed).splitlines(), delimiter=",", ndmin=2)
        for samples, what in ((loaded_samples, "flows_torch.load samples"), (swift_samples, "flows sample")):
            if dtype == torch.float64:
                assert_close(samples, zuko_samples, f"zuko {name} {kind}: {what}", **bounds)
            else:
                assert_float32_samples_close(samples, zuko_samples, exact, f"zuko {name} {kind}: {what}")


def test_conditional_zuko_spline_flow(tmp_path):
    zflow = perturbed(lambda: zuko.flows.NSF(3, 2, transforms=2, bins=6, hidden_features=(8, 8)), 6)
    path = tmp_path / "conditional-nsf.safetensors"
    flows_torch.save(zflow, path)
    assert json.loads(run("info", "--model", path, "--json"))["context_size"] == 2
    x, c = torch.randn(40, 3) * 3, torch.randn(40, 2)
    with torch.no_grad():
        assert_close(flows_torch.load(path)(c).log_prob(x).numpy(), zflow(c).log_prob(x).numpy(), "conditional zuko NSF")


def test_zuko_circular_spline_flow_is_refused_with_the_reason(tmp_path):
    circular = zuko.flows.MAF(3, transforms=1, univariate=zuko.flows.spline.CircularRQSTransform, shapes=[(8,), (8,), (7,)])
    with pytest.raises(flows_torch.MappingError, match="CircularRQSTransform.*network sees the angles before the turn"):
        flows_torch.save(circular, tmp_path / "circular.safetensors")
    with pytest.raises(flows_torch.MappingError, match="NCSF's CircularRQSTransform.*discontinuous at 0"):
        flows_torch.save(zuko.flows.NCSF(3, transforms=1), tmp_path / "ncsf.safetensors")
    assert not (tmp_path / "circular.safetensors").exists() and not (tmp_path / "ncsf.safetensors").exists()


def test_zuko_normalized_coupling_network_is_refused(tmp_path):
    with pytest.raises(flows_torch.MappingError, match="LayerNorm"):
        flows_torch.save(zuko.flows.RealNVP(3, transforms=1, normalize=True), tmp_path / "x.safetensors")
