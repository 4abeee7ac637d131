"""Inference throughput: torchvision's eager fp32 model against `cnnzoo.optimize_for_inference`.

For each model and batch size, in one run and taking turns (so all see the same load):
- torchvision: the same architecture from torchvision, eager fp32, contiguous, under
  `torch.inference_mode` (how its users run it);
- cnnzoo fp32: `optimize_for_inference(model, "fp32")` (batch norm folded, channels-last);
- cnnzoo bf16: `optimize_for_inference(model, "bf16")`, where the device has native bf16;
- with --compile, the same two again under `torch.compile` (Inductor, weights frozen).

Speed-ups are torchvision's median time over ours. The achieved fraction of peak is
2 x MACs x batch / median time over the peak of `cnnzoo.bench.peak.peak_flops` (its docstring
says how the peak is derived). Rows go to a CSV (default benchmarks/results/inference.csv).

    .venv/bin/python benchmarks/inference.py --repeat 5
    .venv/bin/python benchmarks/inference.py --models resnet50_tv --batch 1 --repeat 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cnnzoo import create_model, get_spec
from cnnzoo.analysis import count_macs, meta_model
from cnnzoo.bench import bf16_support
from cnnzoo.bench.peak import peak_flops
from cnnzoo.bench.runner import append_csv, inference_case, measure, torchvision_model

MODELS = ("resnet50_tv", "vgg16", "densenet121", "googlenet_tv", "squeezenet1_1")
RESULTS = Path(__file__).parent / "results" / "inference.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch", default="1,16")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd ones")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    device = torch.device(args.device)
    precisions = ["fp32"] + (["bf16"] if bf16_support(device) else [])
    peaks = {
        p: peak_flops(torch.bfloat16 if p == "bf16" else torch.float32, device) for p in precisions
    }
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"bf16: {bf16_support(device) or 'not native here, skipped'}")
    for p, peak in peaks.items():
        print(f"{p} peak: {peak.derivation if peak else 'unknown'}")

    lines = []
    for name in args.models.split(","):
        spec = get_spec(name)
        macs = count_macs(meta_model(name), spec.input_size)
        for batch in (int(b) for b in args.batch.split(",")):
            torch.manual_seed(0)
            ours = create_model(name)
            cases = [
                inference_case(
                    "torchvision",
                    torchvision_model(name),
                    name,
                    batch,
                    spec.input_size,
                    device,
                    optimize=False,
                )
            ]
            for compiled in (False, True) if args.compile else (False,):
                for p in precisions:
                    label = f"cnnzoo {p}" + (" compiled" if compiled else "")
                    cases.append(
                        inference_case(
                            label,
                            ours,
                            name,
                            batch,
                            spec.input_size,
                            device,
                            precision=p,
                            channels_last=True,
                            compile=compiled,
                        )
                    )
            timings = measure(cases, repeat=args.repeat, warmup=args.warmup)
            append_csv(timings, args.out)
            base = timings[0]
            for t in timings:
                flops = 2 * macs * batch / t.median
                peak = peaks.get(t.settings["precision"])
                fraction = f"{100 * flops / peak.flops_per_s:.1f}%" if peak else "n/a"
                line = (
                    f"| {name} | {batch} | {t.label} | {1e3 * t.median:.1f} "
                    f"({1e3 * t.fastest:.1f}-{1e3 * t.slowest:.1f}) | {t.images_per_s:.1f} | "
                    f"{base.median / t.median:.2f}x ({base.fastest / t.fastest:.2f}x) | "
                    f"{flops / 1e9:.1f} | {fraction} |"
                )
                print(line, flush=True)
                lines.append(line)
    print()
    print(
        "| model | batch | case | median ms (min-max) | images/s | vs torchvision: medians "
        "(fastest) | GFLOP/s | of peak |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    print("\n".join(lines))
    print(f"\nrows appended to {args.out}")


if __name__ == "__main__":
    main()
