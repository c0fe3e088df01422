"""planar-vi (../../shared/bench/TASKS.md) with normflows' Planar layers: 32 layers on N(0, I),
reverse KL on Rezende & Mohamed's U1 with 256 samples per step, Adam lr 1e-3, 5000 steps.
Prints one JSON line: steps_per_s, wall_s and kl = E_q[log q + U] + log Z (log Z on a 1000² grid
over [-8, 8]², 100 000 samples)."""
import argparse, json, math, time
import numpy as np
import torch
import normflows as nf


def log_density_u1(z):
    z1 = z[:, 0]
    r = torch.sqrt((z ** 2).sum(-1) + 1e-30)
    a = -0.5 * ((z1 - 2) / 0.6) ** 2
    b = -0.5 * ((z1 + 2) / 0.6) ** 2
    return -0.5 * ((r - 2) / 0.4) ** 2 + torch.logaddexp(a, b)


def log_normalizer(cells=1000, bound=8.0):
    h = 2 * bound / cells
    c = -bound + (np.arange(cells) + 0.5) * h
    x, y = np.meshgrid(c, c, indexing="ij")
    with torch.no_grad():
        v = log_density_u1(torch.tensor(np.stack([x.ravel(), y.ravel()], -1), dtype=torch.float64)).numpy()
    m = v.max()
    return m + math.log(np.exp(v - m).sum() * h * h)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    base = nf.distributions.base.DiagGaussian(2, trainable=False)
    model = nf.NormalizingFlow(q0=base, flows=[nf.flows.Planar((2,)) for _ in range(32)])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(args.steps):
        optimizer.zero_grad()
        z, log_q = model.sample(256)
        loss = (log_q - log_density_u1(z)).mean()
        loss.backward()
        optimizer.step()
    wall = time.perf_counter() - start
    log_z = log_normalizer()
    with torch.no_grad():
        total = 0.0
        for _ in range(10):
            z, log_q = model.sample(10_000)
            total += (log_q - log_density_u1(z)).sum().item()
    kl = total / 100_000 + log_z
    print(json.dumps({"task": "planar-vi", "library": "normflows", "steps_per_s": args.steps / wall, "wall_s": wall,
                      "kl": kl, "log_z": log_z, "seed": args.seed}))


if __name__ == "__main__":
    main()
