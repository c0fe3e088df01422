"""The tasks of ../../shared/bench/TASKS.md run with the PyTorch flow libraries, through their public APIs.

    python tasks.py --library zuko --task maf-moons [--steps N] [--seed S] [--data-dir DIR]

Prints one JSON object per line with the fields TASKS.md names, like `flows bench --json`.
Libraries and the tasks each can run:
  zuko       first-flow, maf-moons, nsf-digits, maf-throughput, maf-large, ncsf-torus
  nflows     first-flow, maf-moons, nsf-digits, maf-throughput, maf-large
  flowtorch  first-flow, maf-moons
  normflows  planar-vi   (zuko and nflows have no planar flow)
  openblas   gemm        (numpy's float32 matmul, which its wheel runs on OpenBLAS: the SGEMM reference)
Every task runs in a fresh process, so peak_rss_mb is that task's own.
"""
import argparse
import copy
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "bench", "data"))


# ---------------------------------------------------------------------------------------------
# Flows per library. Each builder returns (module, log_prob(x), sample(n)); `width` is the size of
# each of the MADE's two hidden layers.

def zuko_maf(features, transforms, width):
    import zuko
    # zuko reverses the order between transforms by default (randperm=False).
    flow = zuko.flows.MAF(features=features, transforms=transforms, hidden_features=(width, width))
    return flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,))


def zuko_nsf(features, transforms, width, bins):
    import zuko
    # zuko's monotonic RQS lives on [-5, 5] (its default bound, the task's) and is the identity outside.
    flow = zuko.flows.NSF(features=features, transforms=transforms, hidden_features=(width, width), bins=bins)
    return flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,))


def zuko_ncsf(features, transforms, width, bins):
    import zuko
    # zuko's NCSF: a half-turn circular shift before each monotonic RQS on [-pi, pi] (end
    # derivatives 1), MADE fed the angles; base uniform on [-pi - 1e-5, pi + 1e-5]^D.
    flow = zuko.flows.NCSF(features=features, transforms=transforms, hidden_features=(width, width), bins=bins)
    return flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,))


def nflows_flow(features, transforms, width, spline=None):
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms import CompositeTransform, ReversePermutation
    from nflows.transforms.autoregressive import (
        MaskedAffineAutoregressiveTransform,
        MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
    )
    layers = []
    for i in range(transforms):
        if i > 0:
            layers.append(ReversePermutation(features=features))
        # num_blocks=1 without residual blocks gives exactly two hidden layers of `width` units.
        if spline is None:
            layers.append(MaskedAffineAutoregressiveTransform(
                features=features, hidden_features=width, num_blocks=1, use_residual_blocks=False))
        else:
            bins, bound = spline
            layers.append(MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                features=features, hidden_features=width, num_bins=bins, tails="linear", tail_bound=bound,
                num_blocks=1, use_residual_blocks=False))
    flow = Flow(CompositeTransform(layers), StandardNormal([features]))
    return flow, flow.log_prob, flow.sample


def flowtorch_maf(features, transforms, width):
    import flowtorch.bijectors as bij
    import flowtorch.distributions as dist
    import flowtorch.parameters as params
    base = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(features), torch.ones(features)), 1)
    if transforms == 1 and width is None:
        bijector = bij.AffineAutoregressive()  # the tutorial's "library defaults"
    else:
        layers = []
        for i in range(transforms):
            order = torch.arange(features) if i % 2 == 0 else torch.arange(features - 1, -1, -1)
            layers.append(bij.AffineAutoregressive(params.DenseAutoregressive(hidden_dims=(width, width), permutation=order)))
        bijector = bij.Compose(layers)
    flow = dist.Flow(base, bijector)
    return flow, flow.log_prob, lambda n: flow.sample((n,))


def build_maf(library, features, transforms, width):
    if library == "zuko":
        return zuko_maf(features, transforms, width)
    if library == "nflows":
        return nflows_flow(features, transforms, width)
    if library == "flowtorch":
        return flowtorch_maf(features, transforms, width)
    raise SystemExit(f"{library} has no masked autoregressive flow in this script")


# ---------------------------------------------------------------------------------------------
# Helpers

def load(data_dir, name):
    return torch.tensor(np.loadtxt(os.path.join(data_dir, name), delimiter=",", dtype=np.float32))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())


def train(module, log_prob, data, steps, batch, lr, every=None, evaluate=None):
    """Adam on shuffled minibatches of `data`, reshuffled each epoch (as `flows bench` does). With
    `evaluate`, calls it after every `every` steps and after the last; the calls are not timed."""
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    n = data.shape[0]
    order, cursor = torch.randperm(n), 0
    wall = 0.0
    for step in range(1, steps + 1):
        start = time.perf_counter()
        if cursor + batch > n:
            order, cursor = torch.randperm(n), 0
        rows = data[order[cursor:cursor + batch]]
        cursor += batch
        loss = -log_prob(rows).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        wall += time.perf_counter() - start
        if evaluate is not None and (step % every == 0 or step == steps):
            evaluate(step)
    return wall


def density_task(module, log_prob, train_rows, test_rows, steps, batch, lr):
    """The fixed-step figures (steps_per_s, test_nll) and, from the same initialisation, the
    early-stopping ones of TASKS.md: the last 10% of the training rows held out, the validation NLL
    every 50 steps and at the end, test_nll_best at the best validation step's parameters."""
    initial = copy.deepcopy(module.state_dict())
    wall = train(module, log_prob, train_rows, steps, batch, lr)
    figures = {"steps_per_s": steps / wall, "wall_s": wall, "test_nll": test_nll(log_prob, test_rows)}
    module.load_state_dict(initial)
    held = train_rows.shape[0] // 10
    fit_rows, validation_rows = train_rows[:-held], train_rows[-held:]
    best = {"nll": math.inf, "step": 0, "state": None}

    def evaluate(step):
        nll = test_nll(log_prob, validation_rows)
        if nll < best["nll"]:
            best.update(nll=nll, step=step, state=copy.deepcopy(module.state_dict()))

    train(module, log_prob, fit_rows, steps, batch, lr, every=50, evaluate=evaluate)
    module.load_state_dict(best["state"])
    return {**figures, "test_nll_best": test_nll(log_prob, test_rows), "best_step": best["step"],
            "validation_nll_best": best["nll"], "params": parameter_count(module)}


def test_nll(log_prob, data, chunk=4096):
    with torch.no_grad():
        return -sum(log_prob(data[i:i + chunk]).sum().item() for i in range(0, data.shape[0], chunk)) / data.shape[0]


# ---------------------------------------------------------------------------------------------
# Tasks

def first_flow(library, steps, data_dir):
    steps = steps or 501
    if library == "flowtorch":
        module, log_prob, _ = flowtorch_maf(2, 1, None)
    else:
        # zuko's default hidden sizes are (64, 64); nflows has no default, so it gets the same.
        module, log_prob, _ = build_maf(library, 2, 1, 64)
    target = torch.distributions.Normal(torch.full((2,), 5.0), torch.full((2,), 0.5))
    optimizer = torch.optim.Adam(module.parameters(), lr=5e-2)
    start = time.perf_counter()
    for _ in range(steps):
        y = target.sample((1000,))
        loss = -log_prob(y).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    wall = time.perf_counter() - start
    return {"steps_per_s": steps / wall, "wall_s": wall, "test_nll": test_nll(log_prob, target.sample((10_000,))),
            "params": parameter_count(module)}


def maf_moons(library, steps, data_dir):
    steps = steps or 2000
    module, log_prob, _ = build_maf(library, 2, 5, 64)
    return density_task(module, log_prob, load(data_dir, "moons_train.csv"), load(data_dir, "moons_test.csv"),
                        steps, 512, 1e-3)


def nsf_digits(library, steps, data_dir):
    steps = steps or 1000
    if library == "zuko":
        module, log_prob, _ = zuko_nsf(64, 5, 256, 8)
    elif library == "nflows":
        module, log_prob, _ = nflows_flow(64, 5, 256, spline=(8, 5.0))
    else:
        raise SystemExit(f"{library} does not run nsf-digits in this script")
    return density_task(module, log_prob, load(data_dir, "digits_train.csv"), load(data_dir, "digits_test.csv"),
                        steps, 256, 5e-4)


def maf_throughput(library, steps, data_dir):
    module, log_prob, sample = build_maf(library, 16, 5, 256)
    points = 65_536
    x = torch.randn(points, 16)
    with torch.no_grad():
        start = time.perf_counter()
        for i in range(0, points, 4096):
            log_prob(x[i:i + 4096])
        logprob_s = time.perf_counter() - start
        start = time.perf_counter()
        sample(points)
        sample_s = time.perf_counter() - start
    return {"logprob_points_per_s": points / logprob_s, "sample_points_per_s": points / sample_s,
            "wall_s": logprob_s + sample_s, "params": parameter_count(module)}


def maf_large(library, steps, data_dir):
    steps = steps or 50
    d, hidden, layers, batch = 64, 1024, 5, 1024
    module, log_prob, _ = build_maf(library, d, layers, hidden)
    wall = train(module, log_prob, torch.randn(batch * 4, d), steps, batch, 1e-4)
    # Same count as `flows bench`: dense-layer multiply-adds per pass, x2 flops, x3 for forward and backward.
    macs = batch * (d * hidden + hidden * hidden + hidden * 2 * d)
    return {"steps_per_s": steps / wall, "wall_s": wall, "gflops": 2 * macs * 3 * layers * steps / wall / 1e9,
            "params": parameter_count(module)}


def log_density_u1(z):
    """Rezende & Mohamed (2015), U1: log p~(z) = -U1(z)."""
    r = torch.sqrt((z ** 2).sum(-1) + 1e-30)
    a = -0.5 * ((z[:, 0] - 2) / 0.6) ** 2
    b = -0.5 * ((z[:, 0] + 2) / 0.6) ** 2
    return -0.5 * ((r - 2) / 0.4) ** 2 + torch.logaddexp(a, b)


def u1_log_normalizer(cells=1000, bound=8.0):
    h = 2 * bound / cells
    c = -bound + (np.arange(cells) + 0.5) * h
    x, y = np.meshgrid(c, c, indexing="ij")
    with torch.no_grad():
        v = log_density_u1(torch.tensor(np.stack([x.ravel(), y.ravel()], -1), dtype=torch.float64)).numpy()
    m = v.max()
    return m + math.log(np.exp(v - m).sum() * h * h)


def planar_vi(library, steps, data_dir):
    if library != "normflows":
        raise SystemExit(f"{library} has no planar flow")
    import normflows as nf
    steps = steps or 5000
    model = nf.NormalizingFlow(q0=nf.distributions.base.DiagGaussian(2, trainable=False),
                               flows=[nf.flows.Planar((2,)) for _ in range(32)])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        z, log_q = model.sample(256)
        loss = (log_q - log_density_u1(z)).mean()
        loss.backward()
        optimizer.step()
    wall = time.perf_counter() - start
    with torch.no_grad():
        total = 0.0
        for _ in range(10):
            z, log_q = model.sample(10_000)
            total += (log_q - log_density_u1(z)).sum().item()
    return {"steps_per_s": steps / wall, "wall_s": wall, "kl": total / 100_000 + u1_log_normalizer(),
            "params": parameter_count(model)}


def gemm(threads):
    """GFLOP/s of float32 (M×K)·(K×N) with numpy's BLAS limited to `threads`, median of repeated runs."""
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    records = []
    with threadpool_limits(limits=threads, user_api="blas"):
        for m, k, n in [(512, 256, 256), (1024, 1024, 1024)]:
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            flops = 2.0 * m * k * n
            reps = max(5, min(200, int(5e10 / flops)))
            for _ in range(2):
                a @ b
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                a @ b
                times.append(time.perf_counter() - start)
            t = sorted(times)[len(times) // 2]
            records.append({"m": m, "k": k, "n": n, "threads": threads, "gflops": flops / t / 1e9, "median_s": t})
    return records


def ncsf_torus(library, steps, data_dir):
    # benchmarks/data/torus.py writes the files (not in shared/bench/data): give --data-dir.
    steps = steps or 2000
    module, log_prob, _ = zuko_ncsf(2, 5, 64, 8)
    return density_task(module, log_prob, load(data_dir, "torus_train.csv"), load(data_dir, "torus_test.csv"),
                        steps, 256, 1e-3)


TASKS = {"first-flow": first_flow, "maf-moons": maf_moons, "nsf-digits": nsf_digits,
         "maf-throughput": maf_throughput, "planar-vi": planar_vi, "maf-large": maf_large,
         "ncsf-torus": ncsf_torus}
SUPPORTED = {"zuko": ["first-flow", "maf-moons", "nsf-digits", "maf-throughput", "maf-large", "ncsf-torus"],
             "nflows": ["first-flow", "maf-moons", "nsf-digits", "maf-throughput", "maf-large"],
             "flowtorch": ["first-flow", "maf-moons"],
             "normflows": ["planar-vi"],
             "openblas": ["gemm"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--library", choices=sorted(SUPPORTED), required=True)
    p.add_argument("--task", choices=sorted(TASKS) + ["gemm"], required=True)
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=DEFAULT_DATA)
    p.add_argument("--threads", type=int, default=2, help="threads for torch and BLAS (the tasks say 2)")
    args = p.parse_args()
    if args.task not in SUPPORTED[args.library]:
        print(f"error: {args.library} does not run {args.task}", file=sys.stderr)
        sys.exit(2)
    if args.task == "gemm":
        for threads in sorted({1, args.threads}):
            for figures in gemm(threads):
                print(json.dumps({"task": "gemm", "library": args.library, **figures, "peak_rss_mb": peak_rss_mb()}))
        return
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    figures = TASKS[args.task](args.library, args.steps, args.data_dir)
    record = {"task": args.task, "library": args.library, **figures, "peak_rss_mb": peak_rss_mb(), "seed": args.seed}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
