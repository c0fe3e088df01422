"""first-flow (../../shared/bench/TASKS.md) with zuko: FlowTorch's "Your First Flow" — base N(0, I),
target N(5·1, 0.5²·I) in 2-D, one affine autoregressive transform with zuko's defaults, Adam lr 5e-2,
501 steps of 1000 fresh target samples. Prints one JSON line with wall_s and test_nll on 10 000 samples."""
import argparse, json, time
import torch
import zuko


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    target = torch.distributions.Normal(torch.full((2,), 5.0), torch.full((2,), 0.5))
    flow = zuko.flows.MAF(features=2, transforms=1)
    optimizer = torch.optim.Adam(flow.parameters(), lr=5e-2)
    start = time.perf_counter()
    for _ in range(501):
        y = target.sample((1000,))
        loss = -flow().log_prob(y).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    wall = time.perf_counter() - start
    with torch.no_grad():
        nll = -flow().log_prob(target.sample((10_000,))).mean().item()
    print(json.dumps({"task": "first-flow", "library": "zuko", "wall_s": wall, "test_nll": nll, "seed": args.seed}))


if __name__ == "__main__":
    main()
