"""Measured per-layer profiles and rooflines of the networks the lecture argues about.

For each model, `cnnzoo.bench.profile.profile` (per-layer medians of REPEAT forwards after
warm-up, whole-model median without hooks, FLOPs and bytes from the analyzer's shapes) against
the ceilings measured once at the start of the run (the fastest of a 2048^3 matmul, the same
product as a 1x1 convolution and two 3x3 convolutions of about its FLOPs; a 256 MiB copy). Writes
benchmarks/results/profile/MODEL_profile.csv and MODEL_roofline.{png,svg}, and rewrites the
table between the markers in BENCHMARKS.md. The claims it measures:

- VGG-16's early layers are memory-heavy: the share of its time in memory-bound layers, and
  the arithmetic intensity of its first block against its last;
- 1x1 convolutions sit further below the compute roof than 3x3 ones (SqueezeNet's squeeze and
  expand-1x1 layers against its expand-3x3 ones; the zoo has no depthwise network);
- wide blocks use the hardware better than deep thin ones (Wide ResNet's claim): achieved
  GFLOP/s of WRN-28-10 against ResNet-110 on CIFAR inputs.

    .venv/bin/python benchmarks/layer_profile.py
    .venv/bin/python benchmarks/layer_profile.py --tables-only      # the table from the CSVs
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

import torch

from cnnzoo.bench.markdown import rewrite_between
from cnnzoo.bench.peak import measure_ceilings
from cnnzoo.bench.profile import profile
from cnnzoo.viz.figures import save_figure
from cnnzoo.viz.roofline import roofline_figure

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "profile"
MARKDOWN = ROOT / "BENCHMARKS.md"
BEGIN, END = "<!-- profile-tables:begin -->", "<!-- profile-tables:end -->"
MODELS = {  # name -> batch
    "resnet50": 16,
    "vgg16": 16,
    "squeezenet1_1": 16,
    "wrn28_10_cifar": 64,
    "resnet110_cifar": 64,
}


def run(args) -> None:
    device = torch.device(args.device)
    ceilings = measure_ceilings(device, gemm_size=args.gemm_size, bf16=args.precision == "bf16")
    print(f"ceilings: {ceilings.describe()}", flush=True)
    out = Path(args.out)
    for item in args.models.split(","):
        name, _, batch = item.partition(":")
        size = tuple(int(v) for v in args.input.split("x")) if args.input else None
        result = profile(
            name,
            batch_size=int(batch or MODELS.get(name, 1)),
            precision=args.precision,
            input_size=size,
            repeat=args.repeat,
            warmup=args.warmup,
            device=device,
            ceilings=ceilings,
        )
        result.save(out)
        save_figure(roofline_figure(result), out / f"{name}_roofline")
        print(result.to_table(top=10), flush=True)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _ms(r: dict[str, str]) -> float:
    return float(r["median_ms"]) if r["median_ms"] else 0.0


def tables(folder: Path) -> str:
    """The BENCHMARKS.md table and the claims, from the profile CSVs alone."""
    files = sorted(folder.glob("*_profile.csv"))
    if not files:
        raise SystemExit(f"no *_profile.csv in {folder}")
    profiles = {f.name.removesuffix("_profile.csv"): _rows(f) for f in files}
    first = next(iter(profiles.values()))[0]
    lines = [
        f"Machine: {first['cpu']} (flags: {first['cpu_flags'] or 'none'}), {first['threads']} "
        f"threads, torch {first['torch']}; {first['precision']}, {first['repeat']} timed "
        f"forwards per layer; ceilings: GEMM {first['gemm_gflops']} GFLOP/s"
        + (f" ({first['gemm_kernel']})" if first.get("gemm_kernel") else " (matmul or 1x1 conv)")
        + ", copy "
        f"{first['copy_gb_per_s']} GB/s (ridge "
        f"{float(first['gemm_gflops']) / float(first['copy_gb_per_s']):.1f} FLOP/byte).",
        "",
        "| model | batch | whole ms | sum of layer medians / whole | GFLOP/s | of GEMM | "
        "memory-bound layers (share of time) | load before/after, others' cores |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, rows in profiles.items():
        r0 = rows[0]
        whole = float(r0["whole_median_ms"])
        flops = sum(int(r["flops"]) for r in rows)
        rate = flops / whole / 1e6
        memory = [r for r in rows if r["bound"] == "memory"]
        share = sum(_ms(r) for r in memory) / whole
        counts = "" if r0["load_counts"] == "True" else " (does not count)"
        lines.append(
            f"| {name} | {r0['batch_size']} | {whole:.1f} | {float(r0['reconciliation']):.2f} | "
            f"{rate:.1f} | {rate / float(r0['gemm_gflops']):.0%} | {len(memory)} of {len(rows)} "
            f"({share:.0%}) | {float(r0['load_before']):.2f}/{float(r0['load_after']):.2f}"
            + (f", {float(r0['other_cpu_cores']):.2f}" if r0.get("other_cpu_cores") else "")
            + f"{counts} |"
        )
    lines += ["", "What the profiles show (from the CSVs):", ""]
    lines += [f"- {c}" for c in _claims(profiles)]
    return "\n".join(lines)


def _fraction(rows: list[dict[str, str]]) -> str:
    values = [float(r["fraction_of_roof"]) for r in rows if r["fraction_of_roof"]]
    return f"{statistics.median(values):.0%}" if values else "n/a"


def _intensity(rows: list[dict[str, str]]) -> str:
    values = [float(r["intensity_flop_per_byte"]) for r in rows if r["intensity_flop_per_byte"]]
    return f"{statistics.median(values):.1f}" if values else "n/a"


def _claims(profiles: dict[str, list[dict[str, str]]]) -> list[str]:
    out = []
    vgg = profiles.get("vgg16")
    if vgg:
        convs = [r for r in vgg if r["type"].endswith("Conv2d")]
        early, late = convs[:2], convs[-3:]
        memory = [r for r in vgg if r["bound"] == "memory"]
        share = sum(_ms(r) for r in memory) / float(vgg[0]["whole_median_ms"])
        out.append(
            f"vgg16: first block's convolutions median intensity {_intensity(early)} FLOP/byte, "
            f"last block's {_intensity(late)}; the ReLUs and pools are memory-bound "
            f"({len(memory)} of {len(vgg)} layers, {share:.0%} of the time)"
        )
    squeeze = profiles.get("squeezenet1_1")
    if squeeze:
        one = [r for r in squeeze if r["layer"].endswith(("squeeze", "expand1x1"))]
        three = [r for r in squeeze if r["layer"].endswith("expand3x3")]
        out.append(
            f"squeezenet1_1: 1x1 convolutions (squeeze, expand1x1) reach a median "
            f"{_fraction(one)} of their roof, intensity {_intensity(one)}; the 3x3 expand "
            f"layers {_fraction(three)}, intensity {_intensity(three)}"
        )
    wide, thin = profiles.get("wrn28_10_cifar"), profiles.get("resnet110_cifar")
    if wide and thin:

        def rate(rows):
            return sum(int(r["flops"]) for r in rows) / float(rows[0]["whole_median_ms"]) / 1e6

        out.append(
            f"wide vs deep-thin: wrn28_10_cifar {rate(wide):.1f} GFLOP/s, resnet110_cifar "
            f"{rate(thin):.1f} GFLOP/s ({rate(wide) / rate(thin):.1f}x the rate)"
        )
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default=",".join(f"{m}:{b}" for m, b in MODELS.items()),
        help="NAME[:BATCH],...",
    )
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--input", help="CxHxW for every model (smoke runs)")
    parser.add_argument("--gemm-size", type=int, default=2048)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--markdown", default=str(MARKDOWN))
    parser.add_argument("--no-markdown", action="store_true")
    parser.add_argument("--tables-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.tables_only:
        run(args)
    text = tables(Path(args.out))
    print(text)
    if not args.no_markdown:
        rewrite_between(args.markdown, BEGIN, END, text)
        print(f"table rewritten in {args.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
