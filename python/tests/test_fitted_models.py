"""Models fitted by `flows fit`, read with flows_torch.load: log-densities, samples from the
same base noise, save(load(f)) round trips, and torch training written back."""

import pytest

from conftest import requirements

requirements()
import numpy as np  # noqa: E402 (after the skip)
import torch

import flows_torch
from flows_torch.swift_random import SwiftRandom
from conftest import saved_copy_is_identical, read_all, assert_close, run, swift_logprob, torch_logprob

# (family, dimension, extra `flows fit` options)
CASES = [
    ("maf", 3, ["--layers", "2"]),
    ("maf", 2, ["--layers", "3", "--hidden", "16"]),
    ("maf", 5, ["--layers", "2", "--hidden", "10,7,9"]),
    ("maf", 1, ["--layers", "2"]),
    ("iaf", 3, ["--layers", "2", "--hidden", "8,8"]),
    ("nsf", 3, ["--layers", "2", "--bins", "4"]),
    ("nsf", 2, ["--layers", "2", "--hidden", "12,12"]),
    ("realnvp", 3, ["--layers", "2"]),
    ("realnvp", 5, ["--layers", "3", "--hidden", "12"]),
    ("nsf-coupling", 3, ["--layers", "2"]),
    ("nsf-coupling", 2, ["--layers", "2", "--bins", "5", "--hidden", "9,9"]),
    ("planar", 3, ["--layers", "4"]),
    ("radial", 2, ["--layers", "4"]),
    ("sylvester", 3, ["--layers", "3"]),
    ("maf", 3, ["--layers", "2", "--bounds", ":40,-40:40,-30:"]),
    ("nsf", 2, ["--layers", "2", "--bounds", "-50:50,-50:"]),
]
IDS = [f"{f}-d{d}-{'_'.join(o).replace('--', '')}" for f, d, o in CASES]


@pytest.fixture(scope="module", params=range(len(CASES)), ids=IDS)
def fitted(request, workdir, datasets):
    family, d, options = CASES[request.param]
    train, points = datasets[d]
    model = workdir / f"{IDS[request.param]}.safetensors"
    if not model.exists():
        run("fit", "--data", train, "--flow", family, "--steps", 20, "--seed", request.param, "--out", model, *options)
    return str(model), train, points, d


def test_log_prob_matches_flows_logprob(fitted):
    model, _, points, _ = fitted
    flow = flows_torch.load(model)
    assert_close(torch_logprob(flow, points), swift_logprob(model, points), f"log p {model}")


def test_same_noise_same_samples(fitted):
    """`flows sample --seed S` draws its noise from the Swift generator, rebuilt here bit for bit."""
    model, _, _, d = fitted
    n, seed = 100, 11
    text = run("sample", "--model", model, "-n", n, "--seed", seed)
    theirs = np.loadtxt(text.splitlines(), delimiter=",", ndmin=2)
    noise = torch.tensor(SwiftRandom(seed).normals(n * d), dtype=torch.float64).to(torch.float32).reshape(n, d)
    with torch.no_grad():
        ours = flows_torch.load(model)().sample_from_noise(noise).double().numpy()
    assert_close(ours, theirs, f"samples {model}")



def test_round_trip_is_identical(fitted, tmp_path):
    model, _, _, _ = fitted
    copy = saved_copy_is_identical(model, tmp_path)
    run("info", "--model", copy)


def test_torch_training_written_back(fitted, tmp_path):
    """A few Adam steps in torch reach every parameter; the saved result scores as in torch."""
    model, train, points, _ = fitted
    flow = flows_torch.load(model)
    names = {name for name, _ in flow.named_parameters()}
    assert names and all(name.startswith("bijector.") for name in names)
    data = torch.tensor(np.loadtxt(train, delimiter=",", dtype=np.float32, ndmin=2))
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-2)
    flow.train()
    before = None
    for step in range(5):
        optimizer.zero_grad()
        loss = -flow().log_prob(data).mean()
        loss.backward()
        if step == 0:
            before = loss.item()
            missing = [n for n, p in flow.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
            assert not missing, f"no gradient reaches {missing}"
        optimizer.step()
    flow.eval()
    assert np.isfinite(before)
    out = tmp_path / "trained.safetensors"
    flows_torch.save(flow, out)
    assert_close(torch_logprob(flows_torch.load(out), points), swift_logprob(out, points), f"trained {model}")
    assert_close(torch_logprob(flow, points), swift_logprob(out, points), f"trained in memory {model}")


def test_state_dict_is_the_file(fitted):
    """The module's state_dict holds exactly the file's tensors under the file's names."""
    model, _, _, _ = fitted
    _, tensors = read_all(model)
    state = flows_torch.load(model).state_dict()
    assert state.keys() == tensors.keys()
    assert all(torch.equal(state[k], tensors[k]) for k in tensors)
