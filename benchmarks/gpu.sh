#!/usr/bin/env bash
# The inference, profile and training benchmarks on a CUDA GPU, in under 8 minutes; CSVs and the
# printed tables into benchmarks/results/gpu/ (or $OUT/gpu when OUT is set, e.g. on a lent
# device machine). BENCHMARKS.md is not touched: its tables are the CPU's; GPU figures are
# copied in by hand under "GPU", with the device named.
#
#   bash benchmarks/gpu.sh
#
# Inference: batch 16 and 1; torchvision eager and channels-last against cnnzoo eager,
# optimize_for_inference fp32 and bf16 (tensor cores). torch.compile and onnxruntime are left
# out: compiling five models alone would take most of the budget, and onnxruntime's CUDA
# provider is a separate package (onnxruntime-gpu).
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
timeout 200 "$PY" benchmarks/inference.py --device cuda --repeat 20 --warmup 5 --gemm-size 8192 \
    --peers torchvision,channels-last --no-compile --no-markdown \
    --out "$OUT/inference-gpu.csv" | tee "$OUT/inference.txt"
timeout 90 "$PY" benchmarks/layer_profile.py --device cuda --repeat 20 --warmup 5 --gemm-size 8192 \
    --models resnet50:16,vgg16:16,wrn28_10_cifar:64,resnet110_cifar:64 --no-markdown \
    --out "$OUT/profile" | tee "$OUT/profile.txt"
timeout 170 "$PY" benchmarks/training.py --device cuda --repeat 10 --warmup 3 --loss-curve \
    --out "$OUT" | tee "$OUT/training.txt"
echo "CSVs in $OUT"
