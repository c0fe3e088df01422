"""The families table: every `flows fit --flow` family beside zuko's flow of the same kind.

    python families.py --flows-bin .build/release/flows \
        --dataset moons=../../../shared/bench/data/moons_train.csv,../../../shared/bench/data/moons_test.csv \
        --dataset torus=torus_train.csv,torus_test.csv [--steps 2000] [--only maf,nsf] [--json]

Each family is fitted with the same settings on each data set (Adam, learning rate 1e-3, batch
512, `--steps` steps, no early stopping: the last step's weights), and scored on the data set's
test rows. Ours runs `flows fit` and `flows logprob` (their defaults for layers, hidden sizes and
bins); zuko's runs the flow of the same kind through its public API with 5 transforms and
hidden (64, 64), in float32 on one thread. Prints a Markdown table (and one JSON object per run
with --json): held-out NLL in nats and training steps per second.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

# Our family → zuko's flow of the same kind (None: zuko has none).
ZUKO = {
    "maf": "MAF", "iaf": None, "nsf": "NSF", "nsf-coupling": None, "lrs": None, "lrs-coupling": None,
    "realnvp": "RealNVP", "planar": None, "radial": None, "sylvester": None,
    "naf": "NAF", "unaf": "UNAF", "sospf": "SOSPF", "bpf": "BPF", "ncsf": "NCSF",
}


def ours(flows_bin, family, train, test, steps, seed):
    with tempfile.TemporaryDirectory() as folder:
        model = os.path.join(folder, "model.safetensors")
        fit = subprocess.run([flows_bin, "fit", "--data", train, "--flow", family, "--steps", str(steps), "--batch-size", "512",
                              "--lr", "1e-3", "--validation-fraction", "0", "--keep", "last", "--seed", str(seed),
                              "--out", model, "--json"], capture_output=True, text=True)
        if fit.returncode != 0:
            return {"error": fit.stderr.strip().splitlines()[-1] if fit.stderr.strip() else f"exit {fit.returncode}"}
        report = json.loads(fit.stdout.strip().splitlines()[-1])
        scored = subprocess.run([flows_bin, "logprob", "--model", model, "--data", test], capture_output=True, text=True)
        if scored.returncode != 0:
            return {"error": scored.stderr.strip().splitlines()[-1]}
        logp = np.array([float(v) for v in scored.stdout.split()])
        return {"test_nll": float(-logp.mean()), "steps_per_s": steps / report["seconds"]}


def zuko_flow(name, features):
    import zuko
    return getattr(zuko.flows, name)(features=features, transforms=5, hidden_features=(64, 64))


def theirs(name, train, test, steps, seed):
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.loadtxt(train, delimiter=",", dtype=np.float32, ndmin=2))
    y = torch.from_numpy(np.loadtxt(test, delimiter=",", dtype=np.float32, ndmin=2))
    flow = zuko_flow(name, x.shape[1])
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(steps):
        batch = x[torch.randint(0, x.shape[0], (512,), generator=generator)]
        loss = -flow().log_prob(batch).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        nll = -torch.cat([flow().log_prob(chunk) for chunk in y.split(4096)]).double().mean().item()
    return {"test_nll": nll, "steps_per_s": steps / seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows-bin", required=True)
    parser.add_argument("--dataset", action="append", required=True, help="NAME=TRAIN.csv,TEST.csv")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="comma-separated families (default: all)")
    parser.add_argument("--no-zuko", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    families = args.only.split(",") if args.only else list(ZUKO)
    datasets = [(d.split("=", 1)[0], *d.split("=", 1)[1].split(",")) for d in args.dataset]
    rows = []
    for family in families:
        row = {"family": family}
        for name, train, test in datasets:
            row[name] = ours(args.flows_bin, family, train, test, args.steps, args.seed)
            if ZUKO.get(family) and not args.no_zuko:
                try:
                    row[name + "_zuko"] = theirs(ZUKO[family], train, test, args.steps, args.seed)
                except Exception as error:  # a zuko flow that cannot run here is reported, not fatal
                    row[name + "_zuko"] = {"error": f"{type(error).__name__}: {error}"}
            if args.json:
                print(json.dumps({"family": family, "dataset": name, "ours": row[name], "zuko": row.get(name + "_zuko")}), flush=True)
        rows.append(row)

    def cell(result, key, fmt):
        if result is None:
            return "—"
        return result["error"][:40] if "error" in result else format(result[key], fmt)

    header = "| family | " + " | ".join(f"{n} NLL | {n} steps/s | zuko {n} NLL | zuko {n} steps/s" for n, _, _ in datasets) + " |"
    print(header)
    print("|" + "---|" * (1 + 4 * len(datasets)))
    for row in rows:
        cells = []
        for name, _, _ in datasets:
            cells += [cell(row[name], "test_nll", ".3f"), cell(row[name], "steps_per_s", ".0f"),
                      cell(row.get(name + "_zuko"), "test_nll", ".3f"), cell(row.get(name + "_zuko"), "steps_per_s", ".0f")]
        print(f"| {row['family']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
