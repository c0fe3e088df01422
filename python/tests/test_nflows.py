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


def spline_flow(d, hidden, blocks, bins, bound, permutation, activation=torch.relu, layers=2, residual=False):
    parts = []
    for _ in range(layers):
        parts.append(MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
            d, hidden, num_bins=bins, tails="linear", tail_bound=bound, num_blocks=blocks,
            use_residual_blocks=residual, activation=activation))
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


def affine_flow(d, hidden, blocks, permutation, activation=torch.relu, layers=2, transform=None, residual=False):
    parts = []
    for _ in range(layers):
        parts.append((transform or MaskedAffineAutoregressiveTransform)(
            d, hidden, num_blocks=blocks, use_residual_blocks=residual, activation=activation))
        parts.append(permutation(d))
    return Flow(CompositeTransform(parts), StandardNormal([d]))


class SigmoidAffineTransform(MaskedAffineAutoregressiveTransform):
    """nflows' masked affine transform as releases before 0.14 computed it: σ = sigmoid(s + 2) + 1e-3."""

    def _elementwise_forward(self, inputs, autoregressive_params):
        s, shift = self._unconstrained_scale_and_shift(autoregressive_params)
        scale = torch.sigmoid(s + 2.0) + self._epsilon
        return scale * inputs + shift, torch.log(scale).sum(-1)

    def _elementwise_inverse(self, inputs, autoregressive_params):
        s, shift = self._unconstrained_scale_and_shift(autoregressive_params)
        scale = torch.sigmoid(s + 2.0) + self._epsilon
        return (inputs - shift) / scale, -torch.log(scale).sum(-1)


AFFINE_CASES = {
    "maf-2-reverse-one-layer": (2, lambda: affine_flow(2, 5, 1, ReversePermutation, layers=1)),
    "maf-3-reverse": (3, lambda: affine_flow(3, 16, 2, ReversePermutation)),
    "maf-4-random-tanh-uneven": (4, lambda: affine_flow(4, 7, 1, RandomPermutation, torch.tanh, layers=3)),
    "maf-6-random-elu-three-blocks": (6, lambda: affine_flow(6, 10, 3, RandomPermutation, torch.nn.functional.elu)),
    "maf-3-sigmoid-scale-pre-0.14": (3, lambda: affine_flow(3, 8, 2, ReversePermutation, transform=SigmoidAffineTransform)),
    # nflows' default: residual MADE blocks (one hidden width; widths not multiples of D − 1 round up).
    "residual-maf-2-hidden5-1block": (2, lambda: affine_flow(2, 5, 1, ReversePermutation, residual=True)),
    "residual-maf-4-hidden9-2blocks-tanh": (4, lambda: affine_flow(4, 9, 2, RandomPermutation, torch.tanh, residual=True)),
    "residual-maf-8-hidden16-3blocks-elu": (8, lambda: affine_flow(8, 16, 3, RandomPermutation, torch.nn.functional.elu,
                                                                  layers=3, residual=True)),
    "residual-rq4-3-hidden8-2blocks": (3, lambda: spline_flow(3, 8, 2, 4, 3.0, ReversePermutation, residual=True)),
    "residual-rq6-6-hidden11-1block": (6, lambda: spline_flow(6, 11, 1, 6, 2.5, RandomPermutation, residual=True)),
    "residual-rq5-5-hidden12-3blocks-tanh": (5, lambda: spline_flow(5, 12, 3, 5, 3.0, RandomPermutation, torch.tanh,
                                                                    residual=True)),
}


@pytest.mark.parametrize("name", sorted(AFFINE_CASES))
def test_nflows_affine_flow_scores_and_samples_the_same_in_swift(name, tmp_path):
    d, make = AFFINE_CASES[name]
    rows = np.random.default_rng(2).normal(size=(100, d)) * 1.5
    rows[:3] *= 4
    points = write_csv(tmp_path / "points.csv", rows)
    for dtype, bounds in ((torch.float32, {}), (torch.float64, {"rel": 1e-10, "abs_": 1e-10})):
        # A new flow per dtype: nflows keeps log Z of its StandardNormal in a buffer that a
        # float32 → float64 round trip would round.
        torch.manual_seed(1)
        nflow = make()
        # Residual blocks add up what each block's perturbation does: at 0.3 a 3-block flow's
        # samples reach 10⁶ and float32 rounding alone exceeds the bounds; 0.15 keeps it tame.
        perturbation = 0.15 if name.startswith("residual") else 0.3
        with torch.no_grad():
            for parameter in nflow.parameters():
                parameter.add_(torch.randn_like(parameter) * perturbation)
        nflow.eval()
        nflow = nflow.to(dtype)
        path = tmp_path / f"nflows-{str(dtype)[6:]}.safetensors"
        flows_torch.save(nflow, path)
        with torch.no_grad():
            theirs = nflow.log_prob(torch.tensor(rows, dtype=dtype)).double().numpy()
        assert_close(swift_logprob(path, points), theirs, f"nflows {name} {dtype}: flows logprob vs nflows", **bounds)
        loaded = flows_torch.load(path)
        with torch.no_grad():
            assert_close(loaded().log_prob(torch.tensor(rows, dtype=dtype)).double().numpy(), theirs,
                         f"nflows {name} {dtype}: flows_torch.load vs nflows", **bounds)

        n, seed = 50, 5
        noise = torch.tensor(SwiftRandom(seed).normals(n * d), dtype=torch.float64).to(dtype).reshape(n, d)
        with torch.no_grad():
            nflows_samples = nflow._transform.inverse(noise)[0].double().numpy()
        swift_samples = np.loadtxt(run("sample", "--model", path, "-n", n, "--seed", seed).splitlines(),
                                   delimiter=",", ndmin=2)
        assert_close(swift_samples, nflows_samples, f"nflows {name} {dtype}: samples", **bounds)


def test_nflows_affine_plan_names_the_floored_scale(tmp_path):
    torch.manual_seed(0)
    flows_torch.save(affine_flow(3, 8, 1, ReversePermutation, layers=1), tmp_path / "m.safetensors")
    plan = flows_torch.load(tmp_path / "m.safetensors").plan
    assert '"scale":{"softplus":{"floor":0.001}}' in plan
    flows_torch.save(affine_flow(3, 8, 1, ReversePermutation, layers=1, transform=SigmoidAffineTransform), tmp_path / "s.safetensors")
    assert '"scale":{"sigmoidWithFloor":{"bias":2.0,"floor":0.001}}' in flows_torch.load(tmp_path / "s.safetensors").plan


def test_nflows_affine_with_an_unknown_scale_is_refused(tmp_path):
    class Changed(MaskedAffineAutoregressiveTransform):
        def _elementwise_forward(self, inputs, autoregressive_params):
            s, shift = self._unconstrained_scale_and_shift(autoregressive_params)
            return torch.exp(s) * inputs + shift, s.sum(-1)

    flow = affine_flow(3, 8, 1, ReversePermutation, layers=1, transform=Changed)
    with pytest.raises(flows_torch.MappingError, match=r"neither softplus\(s\) \+ 0.001 nor sigmoid"):
        flows_torch.save(flow, tmp_path / "m.safetensors")


def coupling_flow(d, hidden, blocks, context, kind, layers=2, activation=torch.relu, permutation=ReversePermutation):
    """nflows coupling layers (alternating masks) whose transform nets are nflows' ResidualNet,
    with a permutation after each."""
    from nflows.nn.nets import ResidualNet
    from nflows.transforms.coupling import (AdditiveCouplingTransform, AffineCouplingTransform,
                                            PiecewiseRationalQuadraticCouplingTransform)

    def net(i, o):
        return ResidualNet(i, o, hidden, context_features=context or None, num_blocks=blocks, activation=activation)

    parts = []
    for layer in range(layers):
        mask = (torch.arange(d) + layer) % 2
        if kind == "affine":
            parts.append(AffineCouplingTransform(mask, net))
        elif kind == "additive":
            parts.append(AdditiveCouplingTransform(mask, net))
        else:
            parts.append(PiecewiseRationalQuadraticCouplingTransform(mask, net, num_bins=kind, tails="linear", tail_bound=3.0))
        parts.append(permutation(d))
    return Flow(CompositeTransform(parts), StandardNormal([d]))


COUPLING_CASES = {   # name: (features, context size, constructor)
    "affine-2-hidden8-1block": (2, 0, lambda: coupling_flow(2, 8, 1, 0, "affine", layers=1)),
    "affine-5-hidden12-3blocks-context3-tanh": (5, 3, lambda: coupling_flow(5, 12, 3, 3, "affine", activation=torch.tanh,
                                                                         permutation=RandomPermutation)),
    "additive-3-hidden6-1block-context1": (3, 1, lambda: coupling_flow(3, 6, 1, 1, "additive", layers=3)),
    "rq5-4-hidden10-2blocks": (4, 0, lambda: coupling_flow(4, 10, 2, 0, 5)),
    "rq4-8-hidden16-2blocks-context2-elu": (8, 2, lambda: coupling_flow(8, 16, 2, 2, 4, activation=torch.nn.functional.elu,
                                                                      permutation=RandomPermutation)),
    "rq3-6-hidden7-3blocks-context4": (6, 4, lambda: coupling_flow(6, 7, 3, 4, 3, layers=3)),
}


@pytest.mark.parametrize("name", sorted(COUPLING_CASES))
def test_nflows_residual_coupling_flow_scores_and_samples_the_same(name, tmp_path):
    """nflows' coupling transforms with ResidualNet (with and without context): `flows logprob`,
    flows_torch.load and `flows sample` from the same noise against nflows, in float32 and float64."""
    check_conditional_flow(name, *COUPLING_CASES[name], tmp_path)


def conditional_made_flow(d, hidden, blocks, context, kind, residual, layers=2, activation=torch.relu,
                          permutation=ReversePermutation):
    """nflows masked transforms whose MADE takes ``context_features`` (feedforward or residual),
    with a permutation after each."""
    parts = []
    for _ in range(layers):
        if kind == "affine":
            parts.append(MaskedAffineAutoregressiveTransform(d, hidden, context_features=context, num_blocks=blocks,
                                                             use_residual_blocks=residual, activation=activation))
        else:
            parts.append(MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                d, hidden, context_features=context, num_bins=kind, tails="linear", tail_bound=3.0, num_blocks=blocks,
                use_residual_blocks=residual, activation=activation))
        parts.append(permutation(d))
    return Flow(CompositeTransform(parts), StandardNormal([d]))


MADE_CONTEXT_CASES = {   # name: (features, context size, constructor)
    "affine-3-hidden8-2blocks-context2": (3, 2, lambda: conditional_made_flow(3, 8, 2, 2, "affine", False)),
    "affine-5-hidden7-1block-context1-tanh-random": (5, 1, lambda: conditional_made_flow(
        5, 7, 1, 1, "affine", False, activation=torch.tanh, permutation=RandomPermutation)),
    "residual-affine-4-hidden9-2blocks-context3": (4, 3, lambda: conditional_made_flow(4, 9, 2, 3, "affine", True)),
    "residual-affine-2-hidden5-1block-context2-elu": (2, 2, lambda: conditional_made_flow(
        2, 5, 1, 2, "affine", True, layers=3, activation=torch.nn.functional.elu)),
    "rq4-3-hidden8-2blocks-context2": (3, 2, lambda: conditional_made_flow(3, 8, 2, 2, 4, False)),
    "residual-rq5-6-hidden11-3blocks-context4-tanh": (6, 4, lambda: conditional_made_flow(
        6, 11, 3, 4, 5, True, activation=torch.tanh, permutation=RandomPermutation)),
}


@pytest.mark.parametrize("name", sorted(MADE_CONTEXT_CASES))
def test_nflows_conditional_made_flow_scores_and_samples_the_same(name, tmp_path):
    """nflows' MADEs with context_features (our ``contextLayers``), feedforward and residual:
    `flows logprob`, flows_torch.load and `flows sample` against nflows, in float32 and float64."""
    check_conditional_flow(name, *MADE_CONTEXT_CASES[name], tmp_path)


def check_conditional_flow(name, d, c, make, tmp_path):
    generator = np.random.default_rng(3)
    rows = generator.normal(size=(100, d)) * 1.5
    rows[:3] *= 3  # beyond the spline bound
    contexts = generator.normal(size=(100, c))
    points = write_csv(tmp_path / "points.csv", rows)
    context_file = write_csv(tmp_path / "context.csv", contexts) if c else None
    n, seed = 50, 5
    for dtype, bounds in ((torch.float32, {}), (torch.float64, {"rel": 1e-10, "abs_": 1e-10})):
        torch.manual_seed(2)
        nflow = make()
        with torch.no_grad():   # away from the zero-initialised last layers
            for parameter in nflow.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.3)
        nflow.eval()
        nflow = nflow.to(dtype)
        path = tmp_path / f"nflows-{str(dtype)[6:]}.safetensors"
        flows_torch.save(nflow, path)
        x = torch.tensor(rows, dtype=dtype)
        context = torch.tensor(contexts, dtype=dtype) if c else None
        with torch.no_grad():
            theirs = nflow.log_prob(x, context).double().numpy()
        extra = ("--context", context_file) if c else ()
        ours = np.array([float(v) for v in run("logprob", "--model", path, "--data", points, *extra).split()])
        assert_close(ours, theirs, f"nflows {name} {dtype}: flows logprob vs nflows", **bounds)
        loaded = flows_torch.load(path)
        with torch.no_grad():
            assert_close(loaded(context).log_prob(x).double().numpy(), theirs,
                         f"nflows {name} {dtype}: flows_torch.load vs nflows", **bounds)

        noise = torch.tensor(SwiftRandom(seed).normals(n * d), dtype=torch.float64).to(dtype).reshape(n, d)
        with torch.no_grad():
            nflows_samples = nflow._transform.inverse(noise, None if context is None else context[:n])[0].double().numpy()
        sample_context = ("--context", write_csv(tmp_path / "sample-context.csv", contexts[:n])) if c else ()
        swift_samples = np.loadtxt(run("sample", "--model", path, "-n", n, "--seed", seed, *sample_context).splitlines(),
                                   delimiter=",", ndmin=2)
        assert_close(swift_samples, nflows_samples, f"nflows {name} {dtype}: samples")


def test_nflows_coupling_networks_that_differ_are_refused_with_the_reason(tmp_path):
    from nflows.nn.nets import MLP, ResidualNet
    from nflows.transforms.coupling import AffineCouplingTransform, PiecewiseRationalQuadraticCouplingTransform

    mask = torch.tensor([1, 0, 1])
    refused = {
        "batch norm": AffineCouplingTransform(mask, lambda i, o: ResidualNet(i, o, 8, use_batch_norm=True)),
        "dropout": AffineCouplingTransform(mask, lambda i, o: ResidualNet(i, o, 8, dropout_probability=0.1)),
        "takes no context": AffineCouplingTransform(mask, lambda i, o: MLP([i], [o], [8])),
        "apply_unconditional_transform": PiecewiseRationalQuadraticCouplingTransform(
            mask, lambda i, o: ResidualNet(i, o, 8), tails="linear", apply_unconditional_transform=True),
        "tails=None": PiecewiseRationalQuadraticCouplingTransform(mask, lambda i, o: ResidualNet(i, o, 8)),
    }
    for reason, transform in refused.items():
        with pytest.raises(flows_torch.MappingError, match=reason.replace("(", r"\(")):
            flows_torch.save(Flow(transform, StandardNormal([3])), tmp_path / "m.safetensors")


def test_nflows_mades_that_differ_are_refused_with_the_reason(tmp_path):
    refused = {
        "batch norm": MaskedAffineAutoregressiveTransform(3, 8, use_batch_norm=True),
        "dropout": MaskedPiecewiseRationalQuadraticAutoregressiveTransform(3, 8, tails="linear", dropout_probability=0.1),
        "num_blocks=0": MaskedAffineAutoregressiveTransform(3, 8, num_blocks=0),
    }
    for reason, transform in refused.items():
        with pytest.raises(flows_torch.MappingError, match=reason):
            flows_torch.save(Flow(transform, StandardNormal([3])), tmp_path / "m.safetensors")
