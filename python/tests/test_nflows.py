"""nflows flows written with flows_torch.save and scored by `flows logprob` (and sampled by
`flows sample` from the same noise as nflows' inverse transform)."""

import pytest

from conftest import requirements

requirements()
import numpy as np  # noqa: E402 (after the skip)
import torch

import flows_torch
from flows_torch.swift_random import SwiftRandom
from conftest import assert_close, run, swift_logprob, write_csv

pytest.importorskip("nflows", reason="nflows is not installed: the nflows export tests are skipped")
from nflows.distributions.normal import StandardNormal  # noqa: E402
from nflows.flows.base import Flow  # noqa: E402
from nflows.transforms import CompositeTransform, RandomPermutation, ReversePermutation  # noqa: E402
from nflows.transforms.autoregressive import (  # noqa: E402
    MaskedAffineAutoregressiveTransform, MaskedPiecewiseRationalQuadraticAutoregressiveTransform)


def spline_flow(d, hidden, blocks, bins, bound, permutation, activation=torch.relu, layers=2):
    parts = []
    for _ in range(layers):
        parts.append(MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
            d, hidden, num_bins=bins, tails="linear", tail_bound=bound, num_blocks=blocks,
            use_residual_blocks=False, activation=activation))
        parts.append(permutation(d))
    return Flow(CompositeTransform(parts), StandardNormal([d]))


CASES = {
    "rq-3-reverse": (3, lambda: spline_flow(3, 16, 2, 4, 3.0, ReversePermutation)),
    "rq-5-random-tanh-uneven": (5, lambda: spline_flow(5, 7, 1, 6, 2.0, RandomPermutation, torch.tanh)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_nflows_flow_scores_the_same_in_swift(name, tmp_path):
    d, make = CASES[name]
    torch.manual_seed(0)
    nflow = make()
    with torch.no_grad():
        for parameter in nflow.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    nflow.eval()
    path = tmp_path / "nflows.safetensors"
    flows_torch.save(nflow, path)
    rows = np.random.default_rng(1).normal(size=(100, d)) * 1.5
    rows[:3] *= 3  # beyond the tail bound
    points = write_csv(tmp_path / "points.csv", rows)
    with torch.no_grad():
        theirs = nflow.log_prob(torch.tensor(rows, dtype=torch.float32)).double().numpy()
    assert_close(swift_logprob(path, points), theirs, f"nflows {name}: flows logprob vs nflows")

    n, seed = 50, 5
    noise = torch.tensor(SwiftRandom(seed).normals(n * d), dtype=torch.float64).to(torch.float32).reshape(n, d)
    with torch.no_grad():
        nflows_samples = nflow._transform.inverse(noise)[0].double().numpy()
    swift_samples = np.loadtxt(run("sample", "--model", path, "-n", n, "--seed", seed).splitlines(), delimiter=",", ndmin=2)
    assert_close(swift_samples, nflows_samples, f"nflows {name}: samples")


def test_nflows_affine_is_refused_with_the_reason(tmp_path):
    flow = Flow(MaskedAffineAutoregressiveTransform(3, 8), StandardNormal([3]))
    with pytest.raises(flows_torch.MappingError, match=r"sigmoid\(s \+ 2\) \+ 1e-3"):
        flows_torch.save(flow, tmp_path / "m.safetensors")


def test_nflows_residual_made_is_refused_with_the_reason(tmp_path):
    flow = Flow(MaskedPiecewiseRationalQuadraticAutoregressiveTransform(3, 8, tails="linear", tail_bound=3.0),
                StandardNormal([3]))
    with pytest.raises(flows_torch.MappingError, match="use_residual_blocks"):
        flows_torch.save(flow, tmp_path / "m.safetensors")
