#!/usr/bin/env bash
# The inference and training benchmarks on a CUDA GPU, in under 8 minutes; CSVs into
# benchmarks/results/gpu/ (or $OUT/ when set, e.g. on a lent device machine).
#
#   bash benchmarks/gpu.sh
#
# Batch sizes are the issue's (inference 1 and 16; training 128 at CIFAR size, 32 at ImageNet
# size). torch.compile is left out: its compile time alone would take most of the budget.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python
OUT=${OUT:-benchmarks/results}/gpu
mkdir -p "$OUT"
"$PY" - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA GPU: benchmarks/gpu.sh is for GPU machines"
print(torch.cuda.get_device_name(0), "torch", torch.__version__)
PY
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv || true
timeout 300 "$PY" benchmarks/inference.py --device cuda --repeat 20 --warmup 5 \
    --out "$OUT/inference.csv" | tee "$OUT/inference.txt"
timeout 170 "$PY" benchmarks/training.py --device cuda --repeat 10 --warmup 3 --loss-curve \
    --out "$OUT" | tee "$OUT/training.txt"
echo "CSVs in $OUT"
