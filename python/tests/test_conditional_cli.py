"""Conditional models p(y | c) fitted by `flows fit --context-columns`, read with flows_torch.load:
`flows logprob --context-columns` (and `--context FILE`) against ``flow(context).log_prob`` on the
same rows, and `flows sample --context` against the same base noise pushed through
``flow(context)``. Bounds: relative 1e-5 or absolute 1e-4 (float32)."""

import pytest

from conftest import requirements

requirements()
import numpy as np  # noqa: E402 (after the skip)
import torch

import flows_torch
from flows_torch.swift_random import SwiftRandom
from flows_torch.cli import from_checkpoint
from conftest import assert_close, read_all, run, saved_copy_is_identical, write_csv

# (family, dimension of y, extra `flows fit` options)
CASES = [
    ("maf", 2, ["--layers", "2", "--hidden", "16"]),
    ("maf", 1, ["--layers", "2", "--hidden", "8"]),
    ("iaf", 2, ["--layers", "2", "--hidden", "8,8"]),
    ("nsf", 3, ["--layers", "2", "--bins", "4"]),
    ("realnvp", 3, ["--layers", "2", "--hidden", "12"]),
    ("nsf", 1, ["--layers", "2", "--bins", "4", "--hidden", "8"]),
    ("nsf-coupling", 2, ["--layers", "2", "--bins", "5", "--hidden", "9,9"]),
]
IDS = [f"{f}-d{d}" for f, d, _ in CASES]


def conditional_data(d, n, seed):
    """Two context columns c and d columns of y | c (curved in c), as the columns c₁, y…, c₂."""
    r = np.random.default_rng(seed)
    c = r.uniform(-2, 2, size=(n, 2))
    y = np.column_stack([np.sin(c[:, 0]) * (k + 1) + c[:, 1] * 0.5 + 0.2 * r.normal(size=n) for k in range(d)])
    return np.column_stack([c[:, :1], y, c[:, 1:]]), y, c


def as_float32(rows):
    """The values `flows` reads from the CSV into float32."""
    return torch.tensor(np.asarray(rows, dtype=np.float64).astype(np.float32))


@pytest.fixture(scope="module", params=range(len(CASES)), ids=IDS)
def fitted(request, tmp_path_factory):
    family, d, options = CASES[request.param]
    folder = tmp_path_factory.mktemp(IDS[request.param])
    columns = f"0,{d + 1}"                      # c₁ first, c₂ last
    train, _, _ = conditional_data(d, 400, request.param)
    write_csv(folder / "train.csv", train)
    rows, y, c = conditional_data(d, 64, 100 + request.param)
    y[:3] *= 4.0                                  # beyond the spline bound of 5 in some rows
    rows[:, 1:d + 1] = y
    model = folder / "model.safetensors"
    run("fit", "--data", folder / "train.csv", "--context-columns", columns, "--flow", family, "--steps", 20,
        "--seed", request.param, "--out", model, *options)
    return dict(model=str(model), folder=folder, d=d, columns=columns, rows=write_csv(folder / "eval.csv", rows),
                y=write_csv(folder / "eval-y.csv", y), c=write_csv(folder / "eval-c.csv", c))


def swift_values(*arguments):
    return np.array([float(v) for v in run(*arguments).split()])


def test_conditional_log_prob_matches_flows_logprob(fitted):
    flow = flows_torch.load(fitted["model"])
    assert flow.context_size == 2
    by_columns = swift_values("logprob", "--model", fitted["model"], "--data", fitted["rows"], "--context-columns", fitted["columns"])
    by_file = swift_values("logprob", "--model", fitted["model"], "--data", fitted["y"], "--context", fitted["c"])
    assert np.array_equal(by_columns, by_file)
    y, c = as_float32(np.loadtxt(fitted["y"], delimiter=",", ndmin=2)), as_float32(np.loadtxt(fitted["c"], delimiter=",", ndmin=2))
    with torch.no_grad():
        theirs = flow(c).log_prob(y).double().numpy()
    assert_close(by_columns, theirs, f"log p(y | c) {fitted['model']}")
    # The context matters: the same rows under another context score differently.
    with torch.no_grad():
        assert not np.allclose(flow(c.flip(0)).log_prob(y).double().numpy(), theirs)


def test_samples_at_one_context_and_per_row_contexts_come_from_the_same_noise(fitted):
    """`flows sample --seed S` draws its noise from the Swift generator, rebuilt here bit for bit."""
    flow, d = flows_torch.load(fitted["model"]), fitted["d"]
    n, seed = 64, 7
    noise = torch.tensor(SwiftRandom(seed).normals(n * d), dtype=torch.float64).to(torch.float32).reshape(n, d)
    one = np.loadtxt(run("sample", "--model", fitted["model"], "-n", n, "--seed", seed, "--context", "0.3,-1.2").splitlines(),
                     delimiter=",", ndmin=2)
    per_row = np.loadtxt(run("sample", "--model", fitted["model"], "-n", n, "--seed", seed, "--context", fitted["c"]).splitlines(),
                         delimiter=",", ndmin=2)
    c = as_float32(np.loadtxt(fitted["c"], delimiter=",", ndmin=2))
    with torch.no_grad():
        assert_close(one, flow(torch.tensor([0.3, -1.2])).sample_from_noise(noise).double().numpy(), "samples at c = (0.3, -1.2)")
        assert_close(per_row, flow(c).sample_from_noise(noise).double().numpy(), "samples at the rows' contexts")


def test_recorded_context_columns_survive_flows_torch(fitted, tmp_path):
    """`flows fit --context-columns` records the columns and the rows' width; flows_torch writes
    them back as read (save, and export to a checkpoint then import), and `flows logprob` then
    reads such rows without the option."""
    d = fitted["d"]
    metadata, _ = read_all(fitted["model"])
    layout = f'{{"context_columns":[0,{d + 1}],"dequantized_columns":[],"width":{d + 2}}}'
    assert metadata["data_layout"] == layout and metadata["format_version"] == "2"
    flow = flows_torch.load(fitted["model"])
    assert flow.data_layout == layout
    copy = saved_copy_is_identical(fitted["model"], tmp_path)
    assert from_checkpoint(flows_torch.checkpoint(flow)).data_layout == layout
    by_columns = swift_values("logprob", "--model", fitted["model"], "--data", fitted["rows"], "--context-columns", fitted["columns"])
    assert np.array_equal(swift_values("logprob", "--model", copy, "--data", fitted["rows"]), by_columns)
