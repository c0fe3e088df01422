"""The torus mixture of TorusMixture.swift: samples as CSV files and the density's entropy.

    python benchmarks/data/torus.py --out DIR [--train 20000] [--test 10000] [--seed 0]

Writes DIR/torus_train.csv and DIR/torus_test.csv (two angles in radians per row, in [-pi, pi))
and prints one JSON line with the entropy H = -E[log p] in nats (a 2000 x 2000 midpoint grid on
the torus; the held-out NLL of a perfect model), the test rows' mean -log p, and the grid's mass.

The density, an equal mixture on [-pi, pi)^2, is the same as the Swift function's:
  ridge: exp(4 cos(t1 + t2)) / (4 pi^2 I0(4))  -- t1 uniform, t1 + t2 von Mises around 0;
  bump:  prod_i exp(6 cos(t_i - mu_i)) / (2 pi I0(6)), mu = (2.8, -1.2).
The samples are drawn with numpy's generator (von Mises included), not with the Swift one.
"""
import argparse
import json
import os

import numpy as np

RIDGE_KAPPA = 4.0
BUMP_MU = np.array([2.8, -1.2])
BUMP_KAPPA = 6.0


def wrap(x):
    return (x + np.pi) % (2 * np.pi) - np.pi


def log_density(t1, t2):
    ridge = RIDGE_KAPPA * np.cos(t1 + t2) - np.log(4 * np.pi ** 2 * np.i0(RIDGE_KAPPA))
    bump = BUMP_KAPPA * (np.cos(t1 - BUMP_MU[0]) + np.cos(t2 - BUMP_MU[1])) - 2 * np.log(2 * np.pi * np.i0(BUMP_KAPPA))
    return np.logaddexp(ridge, bump) + np.log(0.5)


def sample(n, rng):
    ridge = rng.random(n) < 0.5
    first = rng.uniform(-np.pi, np.pi, n)
    second = wrap(rng.vonmises(0.0, RIDGE_KAPPA, n) - first)
    bump = wrap(rng.vonmises(BUMP_MU, BUMP_KAPPA, (n, 2)))
    points = np.where(ridge[:, None], np.stack([first, second], axis=1), bump)
    return wrap(points)


def entropy(cells=2000):
    h = 2 * np.pi / cells
    centres = -np.pi + (np.arange(cells) + 0.5) * h
    t1, t2 = np.meshgrid(centres, centres, indexing="ij")
    logp = log_density(t1, t2)
    p = np.exp(logp)
    return float(-(p * logp).sum() * h * h), float(p.sum() * h * h)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--test", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    train, test = sample(args.train, rng), sample(args.test, rng)
    os.makedirs(args.out, exist_ok=True)
    # 9 significant digits keep float32 angles; a value printed as pi would leave the circle.
    for name, rows in (("torus_train.csv", train), ("torus_test.csv", test)):
        rows = np.where(rows.astype(np.float32) >= np.float32(np.pi), -np.pi, rows)
        np.savetxt(os.path.join(args.out, name), rows, delimiter=",", fmt="%.9g")
    h, mass = entropy()
    print(json.dumps({"entropy_nats": h, "grid_mass": mass, "test_mean_nll": float(-log_density(test[:, 0], test[:, 1]).mean()),
                      "train_rows": args.train, "test_rows": args.test, "seed": args.seed}))


if __name__ == "__main__":
    main()
