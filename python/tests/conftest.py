"""Shared fixtures: the `flows` binary (env FLOWS_BIN, default .build/release/flows from the
repository root), data files, fitted models and comparison helpers. The whole suite is
skipped, saying why, when torch (or safetensors) is not installed."""

import os
import pathlib
import subprocess

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
try:
    import numpy as np
    import torch

    torch.set_num_threads(1)
except ImportError:  # each test module skips itself, saying why (see requirements())
    np = torch = None

ROOT = pathlib.Path(__file__).resolve().parents[2]


def requirements():
    """Skips the calling test module, with the reason, when torch or safetensors is missing."""
    pytest.importorskip("torch", reason="torch is not installed: the PyTorch interop tests are skipped")
    pytest.importorskip("safetensors", reason="safetensors is not installed: the PyTorch interop tests are skipped")


def flows_bin():
    path = pathlib.Path(os.environ.get("FLOWS_BIN", ROOT / ".build/release/flows"))
    if not path.is_absolute():
        path = ROOT / path
    if not path.exists():
        raise FileNotFoundError(f"the flows binary {path} does not exist: build it (swift build -c release) or set FLOWS_BIN")
    return str(path)


def run(*arguments):
    """Runs `flows` with the arguments; returns standard output, failing with its error text."""
    result = subprocess.run([flows_bin(), *map(str, arguments)], capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"flows {' '.join(map(str, arguments))} failed: {result.stderr.strip()}")
    return result.stdout


def write_csv(path, rows):
    np.savetxt(path, np.asarray(rows, dtype=np.float64), delimiter=",", fmt="%.17g")
    return path


def swift_logprob(model, data_csv):
    return np.array([float(v) for v in run("logprob", "--model", model, "--data", data_csv).split()])


def torch_logprob(flow, data_csv, context=None):
    rows = np.loadtxt(data_csv, delimiter=",", dtype=np.float64, ndmin=2).astype(
        np.float32 if flow.dtype == torch.float32 else np.float64)
    with torch.no_grad():
        return flow(context).log_prob(torch.tensor(rows)).double().numpy()


def differences(ours, theirs):
    """(largest absolute, largest relative) difference."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    absolute = np.abs(ours - theirs)
    relative = absolute / np.maximum(np.abs(theirs), 1e-300)
    return float(absolute.max()), float(relative.max())


def assert_close(ours, theirs, what, rel=1e-5, abs_=1e-4):
    """Every element within the relative bound, or within the absolute one (values near zero)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{what}: shapes {ours.shape} and {theirs.shape}"
    absolute = np.abs(ours - theirs)
    relative = absolute / np.maximum(np.abs(theirs), 1e-300)
    bad = ~((relative <= rel) | (absolute <= abs_))
    largest = differences(ours, theirs)
    print(f"{what}: max abs {largest[0]:.3g}, max rel {largest[1]:.3g}")
    assert not bad.any(), f"{what}: {bad.sum()} values differ, e.g. {ours[bad][:3]} vs {theirs[bad][:3]} (max abs {largest[0]:.3g}, rel {largest[1]:.3g})"


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("interop")


def make_data(d, n, seed):
    """A curved, correlated data set in d dimensions."""
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, d))
    if d >= 2:
        x[:, 1] += 0.5 * x[:, 0] ** 2 - 0.5
    if d >= 3:
        x[:, 2] = np.sin(x[:, 1]) + 0.3 * x[:, 2]
    return x


@pytest.fixture(scope="session")
def datasets(workdir):
    """Per dimension: (training CSV, evaluation CSV with a few points outside ±5)."""
    files = {}
    for d in (1, 2, 3, 5):
        train = write_csv(workdir / f"train{d}.csv", make_data(d, 400, d))
        points = make_data(d, 64, 100 + d)
        points[:3] *= 4.0  # beyond the spline bound of 5 in some coordinates
        files[d] = (str(train), str(write_csv(workdir / f"eval{d}.csv", points)))
    return files


def adam_steps(flow, loss, steps=3, lr=1e-2, nonzero=True):
    """``steps`` Adam steps on ``loss()`` with ``flow`` in training mode, then evaluation mode.
    After the first backward pass, a finite gradient (and with ``nonzero`` a non-zero one) must
    reach every parameter. Leaves the gradients cleared."""
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr)
    flow.train()
    for step in range(steps):
        optimizer.zero_grad()
        loss().backward()
        if step == 0:
            missing = [n for n, p in flow.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
                       or (nonzero and not p.grad.abs().sum() > 0)]
            assert not missing, f"no gradient reaches {missing}"
        optimizer.step()
    optimizer.zero_grad()
    flow.eval()


def read_all(path):
    """A safetensors file's metadata and tensors."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        return f.metadata(), {k: f.get_tensor(k) for k in f.keys()}


def saved_copy_is_identical(model, directory):
    """Loads ``model`` with flows_torch and saves it into ``directory``: the copy must hold the same
    metadata and the same tensors bit for bit. Returns the copy's path."""
    import flows_torch
    copy = pathlib.Path(directory) / "copy.safetensors"
    flows_torch.save(flows_torch.load(model), copy)
    (meta_a, tensors_a), (meta_b, tensors_b) = read_all(model), read_all(copy)
    assert meta_a == meta_b
    assert tensors_a.keys() == tensors_b.keys()
    for name in tensors_a:
        assert tensors_a[name].dtype == tensors_b[name].dtype, name
        assert torch.equal(tensors_a[name], tensors_b[name]), name
    return copy

