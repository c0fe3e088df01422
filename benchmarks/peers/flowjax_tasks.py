"""The tasks of ../../shared/bench/TASKS.md run with flowjax (JAX, XLA-compiled), through its public API.

    python flowjax_tasks.py --task maf-moons [--steps N] [--seed S] [--data-dir DIR]

Prints one JSON object per line like tasks.py (which runs the PyTorch peers; this script is apart
so that its peak RSS holds no torch). Tasks: first-flow, maf-moons, nsf-digits, maf-throughput,
maf-large.

XLA compiles a step the first time it runs: `compile_s` is that first step (or, for
maf-throughput, the first log_prob and sample calls), and `steps_per_s` counts the steps after it.
Every timed step waits for its result (block_until_ready), since JAX dispatches asynchronously.

The flows match the tasks rather than flowjax's defaults where the two differ:
- the order is reversed between layers (Flip), where `masked_autoregressive_flow` draws a random
  permutation for more than two dimensions;
- the spline has 8 bins: flowjax's `knots` counts inner knots, so `knots=7`.
The affine transformer is flowjax's default, scale = softplus(s) + 0.01.
"""
import argparse
import json
import math
import os
import resource
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import paramax
from flowjax.bijections import Chain, Flip, Invert, MaskedAutoregressive, RationalQuadraticSpline, Scan
from flowjax.distributions import Normal, StandardNormal, Transformed
from flowjax.flows import _affine_with_min_scale, masked_autoregressive_flow

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "bench", "data"))


def maf(key, features, transforms, width, transformer=None):
    """`transforms` masked autoregressive layers, MADE hidden (width, width), ReLU, the order reversed
    after each layer; inverted so that log_prob is the one-pass direction, as flowjax does."""
    # flowjax's default affine transformer (scale softplus(s) + 0.01), from the function its flows use.
    transformer = _affine_with_min_scale() if transformer is None else transformer

    def layer(k):
        made = MaskedAutoregressive(key=k, transformer=transformer, dim=features, cond_dim=None,
                                    nn_width=width, nn_depth=2, nn_activation=jax.nn.relu)
        return Chain([made, Flip((features,))]).merge_chains()
    layers = eqx.filter_vmap(layer)(jr.split(key, transforms))
    return Transformed(StandardNormal((features,)), Invert(Scan(layers)))


def load(data_dir, name):
    return np.loadtxt(os.path.join(data_dir, name), delimiter=",", dtype=np.float32)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def partition(flow):
    """(trainable arrays, the rest), as flowjax's own training loops split a flow."""
    return eqx.partition(flow, eqx.is_inexact_array, is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable))


def parameter_count(flow):
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(partition(flow)[0])))


@eqx.filter_jit
def log_prob(params, static, x):
    return paramax.unwrap(eqx.combine(params, static)).log_prob(x)


def nll(params, static, data, chunk=4096):
    total = sum(float(log_prob(params, static, jnp.asarray(data[i:i + chunk])).sum())
                for i in range(0, data.shape[0], chunk))
    return -total / data.shape[0]


def make_step(optimizer):
    @eqx.filter_jit
    def step(params, static, opt_state, x):
        loss, grads = eqx.filter_value_and_grad(lambda p: -log_prob(p, static, x).mean())(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, loss
    return step


def train(params, static, batches, steps, lr, every=None, evaluate=None):
    """Adam on the minibatches `batches()` yields; returns (params, compile_s, steady wall_s). The
    first step (which compiles) is timed apart; `evaluate(step, params)` runs untimed."""
    optimizer = optax.adam(lr)
    step = make_step(optimizer)
    opt_state = optimizer.init(params)
    compile_s, wall = 0.0, 0.0
    for i in range(1, steps + 1):
        x = jnp.asarray(batches())
        start = time.perf_counter()
        params, opt_state, loss = step(params, static, opt_state, x)
        loss.block_until_ready()
        elapsed = time.perf_counter() - start
        if i == 1:
            compile_s = elapsed
        else:
            wall += elapsed
        if evaluate is not None and (i % every == 0 or i == steps):
            evaluate(i, params)
    return params, compile_s, wall


def shuffled_batches(data, batch, rng):
    """Minibatches of `data` in a fresh random order each epoch (as `flows bench` and tasks.py do)."""
    state = {"order": rng.permutation(data.shape[0]), "cursor": 0}

    def next_batch():
        if state["cursor"] + batch > data.shape[0]:
            state["order"], state["cursor"] = rng.permutation(data.shape[0]), 0
        rows = data[state["order"][state["cursor"]:state["cursor"] + batch]]
        state["cursor"] += batch
        return rows
    return next_batch


def timing(steps, compile_s, wall):
    return {"steps_per_s": (steps - 1) / wall, "wall_s": wall, "compile_s": compile_s}


def density_task(flow, train_rows, test_rows, steps, batch, lr, rng):
    """Fixed-step figures and, from the same initialisation, TASKS.md's early-stopping ones: the last
    10% of the training rows held out, the validation NLL every 50 steps and at the end,
    test_nll_best at the best validation step's parameters."""
    initial, static = partition(flow)
    params, compile_s, wall = train(initial, static, shuffled_batches(train_rows, batch, rng), steps, lr)
    figures = {**timing(steps, compile_s, wall), "test_nll": nll(params, static, test_rows)}
    held = train_rows.shape[0] // 10
    validation = train_rows[-held:]
    best = {"nll": math.inf, "step": 0, "params": initial}

    def evaluate(step, p):
        value = nll(p, static, validation)
        if value < best["nll"]:
            best.update(nll=value, step=step, params=p)

    train(initial, static, shuffled_batches(train_rows[:-held], batch, rng), steps, lr, every=50, evaluate=evaluate)
    return {**figures, "test_nll_best": nll(best["params"], static, test_rows), "best_step": best["step"],
            "validation_nll_best": best["nll"], "params": parameter_count(flow)}


def first_flow(key, rng, steps, data_dir):
    steps = steps or 501
    # The library's defaults for one layer: MADE with one hidden layer of 50 units, affine, inverted.
    flow = masked_autoregressive_flow(key, base_dist=StandardNormal((2,)), flow_layers=1)
    target = Normal(jnp.full(2, 5.0), jnp.full(2, 0.5))
    params, static = partition(flow)
    draw = lambda: rng.normal(5.0, 0.5, size=(1000, 2)).astype(np.float32)
    params, compile_s, wall = train(params, static, draw, steps, 5e-2)
    test = np.asarray(target.sample(jr.key(1), (10_000,)))
    return {**timing(steps, compile_s, wall), "test_nll": nll(params, static, test), "params": parameter_count(flow)}


def maf_moons(key, rng, steps, data_dir):
    return density_task(maf(key, 2, 5, 64), load(data_dir, "moons_train.csv"), load(data_dir, "moons_test.csv"),
                        steps or 2000, 512, 1e-3, rng)


def nsf_digits(key, rng, steps, data_dir):
    spline = RationalQuadraticSpline(knots=7, interval=5)
    return density_task(maf(key, 64, 5, 256, transformer=spline), load(data_dir, "digits_train.csv"),
                        load(data_dir, "digits_test.csv"), steps or 1000, 256, 5e-4, rng)


def maf_throughput(key, rng, steps, data_dir):
    flow = maf(key, 16, 5, 256)
    params, static = partition(flow)
    points, chunk = 65_536, 4096
    x = jnp.asarray(rng.standard_normal((points, 16), dtype=np.float32))
    sample = eqx.filter_jit(lambda p, k: paramax.unwrap(eqx.combine(p, static)).sample(k, (points,)))
    start = time.perf_counter()
    log_prob(params, static, x[:chunk]).block_until_ready()
    sample(params, jr.key(1)).block_until_ready()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(0, points, chunk):
        log_prob(params, static, x[i:i + chunk]).block_until_ready()
    logprob_s = time.perf_counter() - start
    start = time.perf_counter()
    sample(params, jr.key(2)).block_until_ready()
    sample_s = time.perf_counter() - start
    return {"logprob_points_per_s": points / logprob_s, "sample_points_per_s": points / sample_s,
            "wall_s": logprob_s + sample_s, "compile_s": compile_s, "params": parameter_count(flow)}


def maf_large(key, rng, steps, data_dir):
    steps = steps or 50
    d, hidden, layers, batch = 64, 1024, 5, 1024
    flow = maf(key, d, layers, hidden)
    params, static = partition(flow)
    data = rng.standard_normal((batch * 4, d), dtype=np.float32)
    params, compile_s, wall = train(params, static, shuffled_batches(data, batch, rng), steps, 1e-4)
    # Same count as `flows bench` and tasks.py: dense-layer multiply-adds, x2 flops, x3 forward and backward.
    macs = batch * (d * hidden + hidden * hidden + hidden * 2 * d)
    return {**timing(steps, compile_s, wall), "gflops": 2 * macs * 3 * layers * (steps - 1) / wall / 1e9,
            "params": parameter_count(flow)}


TASKS = {"first-flow": first_flow, "maf-moons": maf_moons, "nsf-digits": nsf_digits,
         "maf-throughput": maf_throughput, "maf-large": maf_large}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--library", choices=["flowjax"], default="flowjax")
    p.add_argument("--task", choices=sorted(TASKS), required=True)
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=DEFAULT_DATA)
    args = p.parse_args()
    figures = TASKS[args.task](jr.key(args.seed), np.random.default_rng(args.seed), args.steps, args.data_dir)
    print(json.dumps({"task": args.task, "library": "flowjax", **figures, "peak_rss_mb": peak_rss_mb(),
                      "seed": args.seed}))


if __name__ == "__main__":
    main()
