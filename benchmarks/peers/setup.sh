#!/usr/bin/env bash
# Creates the Python environment the peer benchmarks run in: torch (CPU build), zuko, nflows, flowtorch,
# normflows and flowjax (with jax's CPU build) from PyPI, numpy (whose wheel carries OpenBLAS, the SGEMM reference).
#   benchmarks/peers/setup.sh [VENV]      (default: benchmarks/peers/.venv)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/pip" install --quiet)
# The CPU build of torch: PyPI's default Linux wheel pulls in the CUDA libraries (gigabytes).
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    # A local CPU wheel (PIP_FIND_LINKS) first, then PyTorch's CPU index, then PyPI's default.
    "${pip[@]}" "torch==2.13.0+cpu" 2>/dev/null \
        || "${pip[@]}" torch --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
        || "${pip[@]}" torch
fi
"${pip[@]}" numpy threadpoolctl zuko nflows flowtorch normflows flowjax
"$venv/bin/python" - <<'PY'
import importlib.metadata as m
print("peers:", ", ".join(f"{p} {m.version(p)}" for p in ["torch", "zuko", "nflows", "flowtorch", "normflows", "flowjax", "jax", "numpy"]))
PY
