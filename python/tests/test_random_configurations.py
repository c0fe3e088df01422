"""Seeded random shapes and options, beyond the hand-picked cases: our plans written by
flows_torch and zuko flows saved by it, each scored by `flows logprob`."""

import json
import random

import pytest

from conftest import requirements

requirements()
import numpy as np  # noqa: E402 (after the skip)
import torch

import flows_torch
from flows_torch import Flow
from conftest import assert_close, swift_logprob, write_csv
from test_plans import randomize, randomize_orders

ACTIVATIONS = ["relu", "tanh", "elu", "leakyRelu", "sigmoid", "softplus"]


def random_plan(r, d):
    made = {"activation": r.choice(ACTIVATIONS), "hiddenSizes": [r.randint(1, 20) for _ in range(r.randint(1, 3))],
            "order": r.choice([{"random": {}}, {"natural": {}}, {"reversed": {}}]),
            "parameterization": r.choice(["standard", "meanField"]), "skipConnections": r.random() < 0.5}
    net = {"activation": r.choice(ACTIVATIONS), "hiddenSizes": [r.randint(1, 20) for _ in range(r.randint(0, 2))]}
    kinds = ["MAF", "IAF", "NSF"] + (["RealNVP", "NSFCoupling"] if d >= 2 else [])
    kind = r.choice(kinds)
    options = {"layers": r.randint(1, 3)}
    if kind in ("MAF", "IAF"):
        options.update(conditioner=made, scale=r.choice([{"exp": {}}, {"softClipped": {"bound": 2.0}}, {"softBounded": {"_0": 1.5}}]))
    elif kind == "NSF":
        options.update(bins=r.randint(2, 9), bound=r.choice([1.0, 3.0, 5.0]), conditioner=made)
    else:
        options.update(conditioner=net)
        if kind == "NSFCoupling":
            options.update(bins=r.randint(2, 9), bound=3.0)
    return {"type": kind, "options": options}


@pytest.mark.parametrize("seed", range(24))
def test_random_plan(seed, tmp_path):
    """Includes IAF layers scored by sequential inversion far from where their noise lies."""
    r = random.Random(seed)
    d = r.randint(1, 7)
    plan = random_plan(r, d)
    flow = Flow.from_plan(plan, (d,))
    randomize(flow, seed, scale=0.15)
    randomize_orders(flow, seed)
    path = tmp_path / "model.safetensors"
    flows_torch.save(flow, path)
    points = write_csv(tmp_path / "points.csv", np.random.default_rng(seed).normal(size=(60, d)) * 2)
    rows = torch.tensor(np.loadtxt(points, delimiter=",", ndmin=2), dtype=torch.float32)
    with torch.no_grad():
        ours = flow().log_prob(rows).double().numpy()
    assert_close(ours, swift_logprob(path, points), f"random plan {json.dumps(plan)}")


@pytest.mark.parametrize("seed", range(24))
def test_random_zuko_flow(seed, tmp_path):
    zuko = pytest.importorskip("zuko", reason="zuko is not installed")
    r = random.Random(100 + seed)
    torch.manual_seed(seed)
    d = r.randint(2, 8)
    hidden = tuple(r.randint(1, 40) for _ in range(r.randint(1, 3)))
    activation = r.choice([torch.nn.ReLU, torch.nn.Tanh, torch.nn.ELU, torch.nn.Sigmoid])
    if r.random() < 0.6:
        zflow = zuko.flows.MAF(d, transforms=r.randint(1, 4), randperm=r.random() < 0.5, passes=r.choice([None, 2, 3]),
                               hidden_features=hidden, activation=activation)
    else:
        zflow = zuko.flows.RealNVP(d, transforms=r.randint(1, 4), randmask=r.random() < 0.5, hidden_features=hidden,
                                   activation=activation)
    with torch.no_grad():
        for parameter in zflow.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    points = write_csv(tmp_path / "points.csv", np.random.default_rng(seed).normal(size=(100, d)) * 1.5)
    rows = torch.tensor(np.loadtxt(points, delimiter=",", ndmin=2), dtype=torch.float64)
    # float32 (the bounds of float32 rounding), then float64 (the mapping itself, to 1e-10).
    for dtype, bounds in ((torch.float32, {}), (torch.float64, {"rel": 1e-10, "abs_": 1e-10})):
        zflow = zflow.to(dtype)
        path = tmp_path / f"zuko-{str(dtype)[6:]}.safetensors"
        flows_torch.save(zflow, path)
        with torch.no_grad():
            theirs = zflow().log_prob(rows.to(dtype)).double().numpy()
        assert_close(swift_logprob(path, points), theirs, f"random zuko flow d={d} hidden={hidden} {dtype}", **bounds)
