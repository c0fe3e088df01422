"""What cannot be mapped fails with one clear error naming the part."""

import pytest

from conftest import requirements

requirements()
import torch

import flows_torch
from flows_torch import Flow
from conftest import run


@pytest.mark.parametrize("family,plan_type", [("planar", "PlanarFlow"), ("radial", "RadialFlow"), ("sylvester", "SylvesterFlow")])
def test_unmapped_family_names_its_plan_type(family, plan_type, workdir, datasets):
    train, _ = datasets[2]
    model = workdir / f"{family}.safetensors"
    run("fit", "--data", train, "--flow", family, "--steps", 2, "--layers", 2, "--out", model)
    with pytest.raises(flows_torch.MappingError, match=plan_type):
        flows_torch.load(model)


def test_unknown_nested_part_is_named():
    plan = {"type": "Compose", "options": {"parts": [{"type": "Exp", "options": {}}, {"type": "Planar", "options": {}}]}}
    with pytest.raises(flows_torch.MappingError, match="'Planar'"):
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
