"""The DDP example: a model fitted by `flows fit`, trained further by two CPU processes
(torchrun, gloo), written back and scored by `flows logprob`."""

import os
import socket
import subprocess
import sys

import pytest

from conftest import requirements

requirements()
import torch  # noqa: E402 (after the skip)
from safetensors import safe_open  # noqa: E402

import flows_torch  # noqa: E402
from conftest import ROOT, assert_close, run, swift_logprob, torch_logprob  # noqa: E402


def test_two_process_ddp_continues_a_swift_model(workdir, datasets, tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this torch build")
    train, points = datasets[2]
    model = tmp_path / "start.safetensors"
    run("fit", "--data", train, "--flow", "maf", "--layers", 2, "--hidden", "16,16", "--steps", 20, "--out", model)
    out = tmp_path / "continued.safetensors"
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
         str(ROOT / "python/examples/continue_in_pytorch.py"), "--model", str(model), "--data", train,
         "--out", str(out), "--steps", "30", "--batch-size", "64", "--lr", "1e-2", "--save-every-rank"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # DDP kept both processes' parameters identical, and they moved.
    with safe_open(f"{out}.rank0", "pt") as a, safe_open(f"{out}.rank1", "pt") as b, safe_open(str(model), "pt") as s:
        assert set(a.keys()) == set(b.keys())
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())
        assert any(not torch.equal(a.get_tensor(k), s.get_tensor(k)) for k in a.keys())
    assert_close(torch_logprob(flows_torch.load(out), points), swift_logprob(out, points), "DDP-continued MAF")
