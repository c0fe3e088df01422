"""Continue training one of our model files in PyTorch, on one process or many (DDP), and write
it back for `flows logprob` / `flows sample`.

    flows fit --data train.csv --flow maf --steps 500 --out model.safetensors
    torchrun --nproc_per_node 2 python/examples/continue_in_pytorch.py \\
        --model model.safetensors --data train.csv --steps 200 --out continued.safetensors
    flows logprob --model continued.safetensors --data test.csv

Each process reads its share of the rows (row i goes to rank i mod world size); DDP averages
the gradients, so every process holds the same parameters; rank 0 writes the file. Without
torchrun it runs as one process. The backend is gloo (CPU); pass --backend nccl on GPUs.
"""

import argparse
import os

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import flows_torch


class NegativeLogLikelihood(torch.nn.Module):
    """The loss as a module, so DDP wraps one forward pass: −mean log p(batch)."""

    def __init__(self, flow):
        super().__init__()
        self.flow = flow

    def forward(self, batch):
        return -self.flow().log_prob(batch).mean()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="our model file to start from")
    parser.add_argument("--data", required=True, help="training rows, CSV")
    parser.add_argument("--out", required=True, help="the model file to write (rank 0)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=256, help="rows per process and step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="gloo")
    parser.add_argument("--save-every-rank", action="store_true", help="also write OUT.rank<r> from every rank (tests)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group(args.backend)
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)

    flow = flows_torch.load(args.model)
    flow.train()
    loss_module = NegativeLogLikelihood(flow)
    model = DistributedDataParallel(loss_module) if distributed else loss_module
    rows = np.loadtxt(args.data, delimiter=",", ndmin=2, dtype=np.float64)[rank::world]
    data = torch.tensor(rows, dtype=flow.dtype)
    generator = torch.Generator().manual_seed(args.seed + rank)
    optimizer = torch.optim.Adam(flow.parameters(), lr=args.lr)
    for step in range(args.steps):
        batch = data[torch.randint(len(data), (min(args.batch_size, len(data)),), generator=generator)]
        optimizer.zero_grad()
        loss = model(batch)
        loss.backward()
        optimizer.step()
        if rank == 0 and (step % 50 == 0 or step == args.steps - 1):
            print(f"step {step}: nll {loss.item():.4f}", flush=True)
    flow.eval()
    if rank == 0:
        flows_torch.save(flow, args.out)
    if args.save_every_rank:
        flows_torch.save(flow, f"{args.out}.rank{rank}")
    if distributed:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
