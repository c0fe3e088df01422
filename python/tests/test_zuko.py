"""zuko flows written with flows_torch.save and scored by `flows logprob` (and sampled by
`flows sample` from the same noise as zuko's inverse transform)."""

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


def test_zuko_spline_flow_is_refused_with_the_reason(tmp_path):
    with pytest.raises(flows_torch.MappingError, match="MonotonicRQSTransform"):
        flows_torch.save(zuko.flows.NSF(3, transforms=1), tmp_path / "nsf.safetensors")
    assert not (tmp_path / "nsf.safetensors").exists()


def test_zuko_normalized_coupling_network_is_refused(tmp_path):
    with pytest.raises(flows_torch.MappingError, match="LayerNorm"):
        flows_torch.save(zuko.flows.RealNVP(3, transforms=1, normalize=True), tmp_path / "x.safetensors")
