"""`python -m flows_torch export|import` (what `flows export` and `flows import` run): checkpoints
that torch.load(weights_only=True) reads and that come back unchanged, zuko and nflows
state_dicts with a --spec, and one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from conftest import requirements

requirements()
import numpy as np  # noqa: E402 (after the skip)
import torch  # noqa: E402

import flows_torch  # noqa: E402
from conftest import ROOT, assert_close, swift_logprob, write_csv  # noqa: E402

zuko = pytest.importorskip("zuko", reason="zuko is not installed: the command-line import tests are skipped")


def cli(*arguments):
    environment = dict(os.environ, PYTHONPATH=str(ROOT / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "flows_torch", *map(str, arguments)], capture_output=True, text=True,
                          env=environment)


def ok(*arguments):
    result = cli(*arguments)
    assert result.returncode == 0, result.stderr
    return result


def one_line_error(result, status, pattern):
    assert result.returncode == status, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert pattern in lines[0], lines[0]


@pytest.fixture
def model(tmp_path):
    torch.manual_seed(3)
    flow = zuko.flows.MAF(3, transforms=2, hidden_features=(8, 8))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    path = tmp_path / "model.safetensors"
    flows_torch.save(flow, path)
    return path


def test_export_writes_a_plain_checkpoint_whose_state_dict_is_the_modules(model, tmp_path):
    out = tmp_path / "model.pt"
    ok("export", model, "--out", out)
    value = torch.load(out, weights_only=True)       # plain data: no pickled classes
    assert value["format"] == "flows_torch-checkpoint" and value["version"] == 1
    flow = flows_torch.load(model)
    assert value["plan"] == flow.plan
    reference = flow.state_dict()
    assert set(value["state_dict"]) == set(reference)
    for name, tensor in reference.items():
        assert torch.equal(value["state_dict"][name], tensor), name
    flow.load_state_dict(value["state_dict"])         # what the docstring promises
    assert flows_torch.load_checkpoint(out).plan == flow.plan


def test_a_checkpoint_trained_in_torch_imports_to_the_same_densities(model, tmp_path):
    checkpoint = tmp_path / "model.pt"
    ok("export", model, "--out", checkpoint)
    flow = flows_torch.load_checkpoint(checkpoint)
    flow.train()
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-2)
    data = torch.randn(256, 3) * torch.tensor([1.0, 2.0, 0.5])
    for _ in range(20):
        optimizer.zero_grad()
        (-flow().log_prob(data).mean()).backward()
        optimizer.step()
    flow.eval()
    torch.save(flows_torch.checkpoint(flow), checkpoint)
    back = tmp_path / "back.safetensors"
    ok("import", checkpoint, "--out", back)
    points = write_csv(tmp_path / "points.csv", np.random.default_rng(0).normal(size=(50, 3)))
    with torch.no_grad():
        theirs = flow().log_prob(torch.tensor(np.loadtxt(points, delimiter=","), dtype=torch.float32)).double().numpy()
    assert_close(swift_logprob(back, points), theirs, "export → torch training → import: flows logprob vs torch")
    assert not np.allclose(swift_logprob(model, points), theirs), "training moved the densities"


def test_round_trip_keeps_every_tensor(model, tmp_path):
    ok("export", model, "--out", tmp_path / "m.pt")
    ok("import", tmp_path / "m.pt", "--out", tmp_path / "back.safetensors")
    mask = os.umask(0)
    os.umask(mask)
    for written in ("m.pt", "back.safetensors"):   # as open() creates files, not mkstemp's 0600
        assert os.stat(tmp_path / written).st_mode & 0o777 == 0o666 & ~mask, written
    a, b = flows_torch.load(model), flows_torch.load(tmp_path / "back.safetensors")
    assert a.plan == b.plan
    for (name, x), (other, y) in zip(sorted(a.state_dict().items()), sorted(b.state_dict().items())):
        assert name == other and torch.equal(x, y), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zuko_state_dict_with_a_spec(tmp_path, dtype):
    torch.manual_seed(4)
    arguments = {"features": 4, "transforms": 3, "hidden_features": [16, 12], "activation": "Tanh"}
    flow = zuko.flows.MAF(**{**arguments, "hidden_features": (16, 12), "activation": torch.nn.Tanh}).to(dtype)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    torch.save(flow.state_dict(), tmp_path / "zuko.pt")
    (tmp_path / "spec.json").write_text(json.dumps({"library": "zuko", "flow": "MAF", "arguments": arguments}))
    ok("import", tmp_path / "zuko.pt", "--spec", tmp_path / "spec.json", "--out", tmp_path / "m.safetensors")
    assert flows_torch.load(tmp_path / "m.safetensors").dtype == dtype
    rows = np.random.default_rng(1).normal(size=(80, 4))
    points = write_csv(tmp_path / "points.csv", rows)
    with torch.no_grad():
        theirs = flow().log_prob(torch.tensor(rows, dtype=dtype)).double().numpy()
    bounds = {} if dtype == torch.float32 else {"rel": 1e-10, "abs_": 1e-10}
    assert_close(swift_logprob(tmp_path / "m.safetensors", points), theirs, f"zuko state_dict + spec {dtype}", **bounds)


def test_nflows_state_dict_with_a_spec(tmp_path):
    pytest.importorskip("nflows", reason="nflows is not installed")
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms import CompositeTransform, RandomPermutation
    from nflows.transforms.autoregressive import MaskedAffineAutoregressiveTransform

    made = {"features": 3, "hidden_features": 10, "num_blocks": 2, "use_residual_blocks": False, "activation": "tanh"}
    spec = {"library": "nflows", "features": 3, "transforms": [
        {"class": "MaskedAffineAutoregressiveTransform", "arguments": made},
        {"class": "RandomPermutation", "arguments": {"features": 3}},
        {"class": "MaskedAffineAutoregressiveTransform", "arguments": made}]}
    torch.manual_seed(5)
    parts = [MaskedAffineAutoregressiveTransform(**{**made, "activation": torch.tanh}), RandomPermutation(3),
             MaskedAffineAutoregressiveTransform(**{**made, "activation": torch.tanh})]
    # The permutation is a buffer: it travels in the state_dict.
    _import_nflows_state_dict(tmp_path, Flow(CompositeTransform(parts), StandardNormal([3])), spec, 3, "nflows state_dict + spec")


def _import_nflows_state_dict(tmp_path, flow, spec, d, what):
    """Perturbs the flow's parameters, saves its state_dict, imports it with the spec and
    compares `flows logprob` with nflows' log_prob."""
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    flow.eval()
    torch.save(flow.state_dict(), tmp_path / "nflows.pt")
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    ok("import", tmp_path / "nflows.pt", "--spec", tmp_path / "spec.json", "--out", tmp_path / "m.safetensors")
    rows = np.random.default_rng(2).normal(size=(80, d)) * 1.5
    points = write_csv(tmp_path / "points.csv", rows)
    with torch.no_grad():
        theirs = flow.log_prob(torch.tensor(rows, dtype=torch.float32)).double().numpy()
    assert_close(swift_logprob(tmp_path / "m.safetensors", points), theirs, what)


def test_nflows_residual_coupling_state_dict_with_a_spec(tmp_path):
    """A coupling transform's ResidualNet given in the spec as ``transform_net``."""
    pytest.importorskip("nflows", reason="nflows is not installed")
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.nn.nets import ResidualNet
    from nflows.transforms import CompositeTransform, ReversePermutation
    from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform

    net = {"hidden_features": 9, "num_blocks": 2, "activation": "tanh"}
    coupling = {"mask": [1, 0, 1, 0], "num_bins": 5, "tails": "linear", "tail_bound": 3.0}
    spec = {"library": "nflows", "features": 4, "transforms": [
        {"class": "PiecewiseRationalQuadraticCouplingTransform", "arguments": coupling,
         "transform_net": {"class": "ResidualNet", "arguments": net}},
        {"class": "ReversePermutation", "arguments": {"features": 4}}]}
    torch.manual_seed(6)
    flow = Flow(CompositeTransform([PiecewiseRationalQuadraticCouplingTransform(
        **coupling, transform_net_create_fn=lambda i, o: ResidualNet(i, o, **{**net, "activation": torch.tanh})),
        ReversePermutation(4)]), StandardNormal([4]))
    _import_nflows_state_dict(tmp_path, flow, spec, 4, "nflows residual coupling state_dict + spec")


def test_pickled_module_only_when_asked(tmp_path):
    torch.manual_seed(6)
    flow = zuko.flows.RealNVP(3, transforms=2, hidden_features=(8,))
    torch.save(flow, tmp_path / "whole.pt")
    one_line_error(cli("import", tmp_path / "whole.pt", "--out", tmp_path / "m.safetensors"), 1, "--pickled-module")
    ok("import", tmp_path / "whole.pt", "--pickled-module", "--out", tmp_path / "m.safetensors")
    rows = np.random.default_rng(3).normal(size=(20, 3))
    points = write_csv(tmp_path / "points.csv", rows)
    with torch.no_grad():
        theirs = flow().log_prob(torch.tensor(rows, dtype=torch.float32)).double().numpy()
    assert_close(swift_logprob(tmp_path / "m.safetensors", points), theirs, "pickled zuko module")


def test_errors_are_one_line(model, tmp_path):
    one_line_error(cli("export", model, "--out", model), 1, "is the input file")
    one_line_error(cli("export", tmp_path / "absent.safetensors", "--out", tmp_path / "x.pt"), 1, "absent.safetensors")
    one_line_error(cli("export", model, "--out", tmp_path / "no" / "x.pt"), 1, "does not exist")
    one_line_error(cli("export", model), 2, "--out")
    torch.save(zuko.flows.MAF(3).state_dict(), tmp_path / "sd.pt")
    one_line_error(cli("import", tmp_path / "sd.pt", "--out", tmp_path / "m.safetensors"), 1, "--spec SPEC.json")
    (tmp_path / "spec.json").write_text(json.dumps({"library": "zuko", "flow": "MAF", "arguments": {"features": 5}}))
    one_line_error(cli("import", tmp_path / "sd.pt", "--spec", tmp_path / "spec.json", "--out", tmp_path / "m.safetensors"),
                   1, "does not fit the flow")
    (tmp_path / "spec.json").write_text(json.dumps({"library": "pyro"}))
    one_line_error(cli("import", tmp_path / "sd.pt", "--spec", tmp_path / "spec.json", "--out", tmp_path / "m.safetensors"),
                   1, "\"zuko\" or \"nflows\"")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    one_line_error(cli("import", tmp_path / "notes.pt", "--out", tmp_path / "m.safetensors"), 1, "cannot be read")
    assert not (tmp_path / "m.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".flows_torch-")] == []
