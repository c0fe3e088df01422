"""What cannot be mapped fails with one clear error naming the part."""

import re

import pytest

from conftest import requirements

requirements()
import torch

import flows_torch
from flows_torch import Flow


def test_unknown_plan_type_in_a_file_is_named(tmp_path):
    """A model file whose plan names a type this package does not map (here a user's plan)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    flows_torch.save(Flow.from_plan({"type": "Exp", "options": {}}, (2,)), path)
    with safe_open(str(path), "pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    metadata["plan"] = '{"type": "Compose", "options": {"parts": [{"type": "MyModule.Warp", "options": {}}]}}'
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(flows_torch.MappingError, match="'MyModule.Warp'"):
        flows_torch.load(path)


@pytest.mark.parametrize("base, tensors, message", [
    ('{"type": "Laplace", "eventRank": 1}', {}, "unsupported base distribution 'Laplace'"),
    ('[1, 2]', {}, "unsupported base distribution 'None'"),
    ('{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": 0}', {}, "StudentT base's 'degreesOfFreedom' is 0"),
    ('{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": 3}', {"base.scale": -1}, "scale must be positive"),
    ('{"type": "Uniform", "eventRank": 1}', {"base.low": 1, "base.high": 0}, "low must lie below its high"),
    ('{"type": "DiagonalNormal", "eventRank": 1}', {"base.log_scale": 100}, "within ±88.7"),
    ('{"type": "GaussianMixture", "covariance": "full"}', {}, "tensor 'base.logits' is missing"),
    ('{"type": "GaussianMixture", "covariance": "tied"}', {}, "'covariance' must be one of diagonal, full"),
    ('{"type": "ConditionalDiagonalNormal", "features": 2, "contextSize": 1, "hiddenSizes": [4], "activation": "relu"}', {},
     "tensor 'base.network.layers.0.weight' is missing"),
])
def test_broken_bases_are_refused_by_name(tmp_path, base, tensors, message):
    """A file whose base metadata or tensors no Swift loader accepts fails naming the base and
    what is wrong: an unknown type, a missing tensor, a setting or value out of range."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    flows_torch.save(Flow.from_plan({"type": "Exp", "options": {}}, (2,)), path)
    with safe_open(str(path), "pt") as f:
        metadata, stored = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    for name, value in tensors.items():
        stored[name] = torch.full((2,), float(value))
    if '"Uniform"' in base:
        del stored["base.loc"], stored["base.scale"]
    if '"DiagonalNormal"' in base:
        del stored["base.scale"]
    metadata["base"] = base
    save_file(stored, str(path), metadata=metadata)
    with pytest.raises(flows_torch.MappingError, match=message):
        flows_torch.load(path)


def test_unknown_nested_part_is_named():
    plan = {"type": "Compose", "options": {"parts": [{"type": "Exp", "options": {}}, {"type": "Warp", "options": {}}]}}
    with pytest.raises(flows_torch.MappingError, match="'Warp'"):
        Flow.from_plan(plan, (2,))


def test_not_a_model_file(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"not safetensors")
    with pytest.raises(flows_torch.ModelFileError, match="cannot be read"):
        flows_torch.load(path)


def test_tensor_mismatch_is_named(tmp_path):
    flow = Flow.from_plan({"type": "LULinear", "options": {}}, (3,))
    path = tmp_path / "m.safetensors"
    flows_torch.save(flow, path)
    other = Flow.from_plan({"type": "LULinear", "options": {}}, (4,))
    tensors = flow.file_tensors()
    with pytest.raises(flows_torch.MappingError, match="bijector.lower"):
        other.load_file_tensors(tensors)


def test_saving_other_objects_is_refused(tmp_path):
    with pytest.raises(flows_torch.MappingError, match="cannot save"):
        flows_torch.save(torch.nn.Linear(2, 2), tmp_path / "m.safetensors")


def test_format_versions_up_to_three_are_read_and_newer_ones_refused(tmp_path):
    """Version 3 (a file that may hold a variational dequantizer) reads; a newer version is refused
    by its number; a dequantizer, which this package does not map, is refused by name."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    flows_torch.save(Flow.from_plan({"type": "LULinear", "options": {}}, (2,)), path)
    with safe_open(str(path), "pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    assert metadata["format_version"] == "2"
    for version, message in [("3", None), ("4", re.escape("format version 4 is newer than this package reads (3)"))]:
        save_file(tensors, str(path), metadata={**metadata, "format_version": version})
        if message is None:
            flows_torch.load(path)
        else:
            with pytest.raises(flows_torch.ModelFileError, match=message):
                flows_torch.load(path)
    save_file(tensors, str(path), metadata={**metadata, "format_version": "3", "dequantizer": "{}"})
    with pytest.raises(flows_torch.ModelFileError, match="holds a variational dequantizer"):
        flows_torch.load(path)
