"""Inference speed against the peers a user would pick, in one run, and the BENCHMARKS.md tables.

For each model and batch size, in one measurement in which every case takes turns (all see the
same load), each case forward under `torch.inference_mode` on the same random batch:

  peers  torchvision eager fp32 contiguous (the baseline every ratio is against)
         torchvision fp32 channels-last
         torchvision under torch.compile (Inductor, weights frozen), fp32
         onnxruntime (CPU provider, ORT_ENABLE_ALL, as many threads as torch, workers that
         stop spinning when a run ends) on cnnzoo's own ONNX export
         (`cnnzoo.export.export_model`)
  cnnzoo eager fp32 contiguous (like for like with the baseline)
         optimize_for_inference fp32 (batch norms folded, channels-last), and + torch.compile
         optimize_for_inference bf16, and + torch.compile, where the CPU computes bf16 natively

A model torchvision does not have runs its peers on cnnzoo's own build (the label says so).
Before each model, the machine's ceilings are measured in the same run (in fp32 and bf16 the
fastest of a 2048^3 matmul, the same product as a 1x1 convolution and two 3x3 convolutions of
about its FLOPs; a 256 MiB copy); every row's achieved GFLOP/s (2 x the analyzer's MACs x batch /
median time) is also given as a fraction of that GEMM rate of its precision. The load average
is recorded before and after each model; a model measured above the limit
(`cnnzoo.bench.machine.LOAD_LIMIT`) is marked and does not count for the targets.

One command measures everything, writes this machine's CSV (benchmarks/results/inference-CPU.csv,
replacing it; another machine's CSV is kept) and rewrites the tables between the markers in
BENCHMARKS.md, one section per machine:

    .venv/bin/python benchmarks/inference.py
    .venv/bin/python benchmarks/inference.py --tables-only      # tables from the existing CSVs
    .venv/bin/python benchmarks/inference.py --models resnet50_tv --batch 16 --repeat 5
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

from cnnzoo import create_model, get_spec
from cnnzoo.bench import bf16_support
from cnnzoo.bench.machine import (
    LOAD_LIMIT,
    OTHERS_LIMIT,
    LoadWatch,
    machine_csv,
    machine_record,
)
from cnnzoo.bench.markdown import rewrite_between
from cnnzoo.bench.peak import measure_ceilings
from cnnzoo.bench.runner import (
    BenchRun,
    append_csv,
    batch_flops,
    export_onnx,
    inference_case,
    measure,
    peer_cases,
)

MODELS = ("resnet50_tv", "vgg16", "densenet121", "googlenet_tv", "squeezenet1_1")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"  # one inference-CPU.csv per machine
MARKDOWN = ROOT / "BENCHMARKS.md"
BEGIN, END = "<!-- inference-tables:begin -->", "<!-- inference-tables:end -->"
PEERS = ("torchvision", "channels-last", "compile", "onnxruntime")


def cases_for(name, batch, size, device, peers, compile, onnx_path, bf16):
    """Every case of one model at one batch size, peers first."""
    flops = batch_flops(name, size, batch)
    torch.manual_seed(0)
    ours = create_model(name)
    chosen = [p for p in peers if p != "compile" or compile]
    cases = peer_cases(name, batch, size, device, chosen, ours, onnx_path, {"flops": flops})
    cases.append(inference_case("cnnzoo eager", ours, name, batch, size, device, flops=flops))
    for precision in ("fp32", "bf16") if bf16 else ("fp32",):
        for compiled in (False, True) if compile else (False,):
            label = f"cnnzoo {precision}" + (" compile" if compiled else "")
            cases.append(
                inference_case(
                    label,
                    ours,
                    name,
                    batch,
                    size,
                    device,
                    optimize=precision,
                    compile=compiled,
                    flops=flops,
                )
            )
    return cases


def run(args) -> None:
    device = torch.device(args.device)
    bf16 = bf16_support(device) is not None
    peers = tuple(p for p in args.peers.split(",") if p)
    size_override = tuple(int(v) for v in args.input.split("x")) if args.input else None
    print(f"machine: {machine_record(device)}")
    print(f"bf16: {bf16_support(device) or 'not native here: bf16 cases skipped'}")
    out = Path(args.out)
    if out.exists() and not args.append:
        out.unlink()
    with tempfile.TemporaryDirectory(prefix="cnnzoo-inference-") as folder:
        for name in args.models.split(","):
            size = size_override or tuple(get_spec(name).input_size)
            # The roofs just before the model's cases: this machine's speed drifts over minutes.
            ceilings = measure_ceilings(device, gemm_size=args.gemm_size, bf16=bf16)
            print(f"ceilings: {ceilings.describe()}", flush=True)
            watch = LoadWatch()
            onnx_path = export_onnx(name, size, Path(folder)) if "onnxruntime" in peers else None
            timings = []
            for batch in (int(b) for b in args.batch.split(",")):
                cases = cases_for(name, batch, size, device, peers, args.compile, onnx_path, bf16)
                timings += measure(cases, repeat=args.repeat, warmup=args.warmup)
            load = watch.stop()
            result = BenchRun(name, tuple(timings), ceilings, load)
            append_csv(result, out)
            print("\n".join(result.lines()), flush=True)
    print(f"rows in {out}")


def _ceilings_sentence(rows: list[dict[str, str]]) -> str:
    """The roofs of the run: one set, or one per model where they were timed before each."""
    first_rows: dict[str, dict[str, str]] = {}  # each model's first row, in run order
    for r in rows:
        first_rows.setdefault(r["model"], r)

    def roofs(r: dict[str, str]) -> str:
        return (
            f"fp32 GEMM {r['gemm_fp32_gflops']} GFLOP/s{_kernel(r, 'fp32')}, bf16 GEMM "
            f"{r['gemm_bf16_gflops'] or 'n/a'} GFLOP/s{_kernel(r, 'bf16')}, copy "
            f"{r['copy_gb_per_s']} GB/s"
        )

    keys = ("gemm_fp32_gflops", "gemm_bf16_gflops", "copy_gb_per_s")
    if len({tuple(r[k] for k in keys) for r in first_rows.values()}) == 1:
        return f"Ceilings measured in the same run: {roofs(rows[0])}."
    spread = []
    for precision in ("fp32", "bf16"):
        rates = [_float(r[f"gemm_{precision}_gflops"]) for r in first_rows.values()]
        rates = [v for v in rates if v]
        if rates and max(rates) > 1.2 * min(rates):
            spread.append(
                f"the {precision} roof measured {min(rates):,.0f} to {max(rates):,.0f} GFLOP/s "
                f"({max(rates) / min(rates):.1f}x) within the run"
            )
    warning = (
        " **The machine's speed drifted: "
        + "; ".join(spread)
        + ". A fraction of the roof is uncertain by that factor: it depends on when the roof "
        "was timed as much as on the case.**"
        if spread
        else ""
    )
    return (
        "Ceilings measured in the same run, just before each model's cases: "
        + "; ".join(f"{model}: {roofs(r)}" for model, r in first_rows.items())
        + "."
        + warning
    )


def _spinning_note(rows: list[dict[str, str]]) -> list[str]:
    """A warning for runs whose onnxruntime workers spun on after each run (before the fix)."""
    ort = [r for r in rows if r["label"] == "onnxruntime"]
    if not ort or all(r.get("threads_after_run") for r in ort):
        return [""]
    return [
        "",
        "**Not like for like: measured while onnxruntime's worker threads spun on after each "
        "of its runs** (its default), keeping a core busy for some 20 ms into the case timed "
        "next in each round, `cnnzoo eager`, whose rows read slow, most at batch 1 (see "
        "`cnnzoo.bench.runner.onnxruntime_case`).",
        "",
    ]


def _kernel(row: dict[str, str], precision: str) -> str:
    """Which kernel set the roof, where the CSV says."""
    kernel = row.get(f"gemm_{precision}_kernel")
    return f" ({kernel})" if kernel else ""


def _float(value: str | None) -> float | None:
    return float(value) if value not in ("", "None", None) else None


def all_tables(folder: Path = RESULTS) -> str:
    """Every machine's section, in the order they were measured."""
    paths = sorted(folder.glob("inference-*.csv"), key=lambda p: _first_date(p))
    if not paths:
        raise SystemExit(f"no inference-*.csv in {folder}")
    sections = []
    for path in paths:
        with path.open(newline="") as f:
            cpu = next(csv.DictReader(f))["cpu"]
        sections.append(f"#### {cpu} (`{path.name}`)\n\n{tables(path)}")
    return "\n\n".join(sections)


def _first_date(path: Path) -> str:
    with path.open(newline="") as f:
        return next(csv.DictReader(f), {}).get("date", "")


def tables(csv_path: Path) -> str:
    """The BENCHMARKS.md tables and target verdicts, from the CSV alone."""
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{csv_path} has no rows")
    first = rows[0]
    loads = [(_float(r["load_before"]), _float(r["load_after"])) for r in rows]
    others = [_float(r.get("other_cpu_cores")) for r in rows]
    counted = all(r["load_counts"] == "True" for r in rows)
    rule = (
        f"other processes' CPU during each model (at most {OTHERS_LIMIT} cores counts): "
        + ", ".join(f"{o:.2f}" for o in dict.fromkeys(others))
        + " cores"
        if None not in others
        else f"no measure of other processes' CPU: the load-average rule ({LOAD_LIMIT} before)"
    )
    lines = [
        f"Machine: {first['cpu']} ({first['cpu_count']} CPUs, flags: "
        f"{first['cpu_flags'] or 'none'}), "
        f"{first['threads']} intra-op threads, torch {first['torch']}, cnnzoo {first['cnnzoo']}, "
        f"device {first['device']}; measured {first['date'][:10]} to {rows[-1]['date'][:10]}, "
        f"{first['repeat']} timed calls per case after warm-up.",
        "",
        _ceilings_sentence(rows)
        + (
            ""
            if first.get("gemm_fp32_kernel")
            else " (Measured before the roof took the fastest of matmul, 1x1 and 3x3 "
            "convolutions: the GEMM rate is a matmul's or a 1x1 convolution's, and layers "
            "and peers can read above 100% of it.)"
        ),
        *_spinning_note(rows),
        "Load average (1 min) before/after each model: "
        + ", ".join(f"{b:.2f}/{a:.2f}" for b, a in dict.fromkeys(loads) if b is not None)
        + f"; {rule}"
        + (
            " - **the run counts** for the targets."
            if counted
            else " - **at least one model was measured on a busy machine; its rows do not count "
            "for the targets.**"
        ),
        "",
        "| model | batch | case | what it is | median ms (min-max) | images/s | GFLOP/s | "
        "of GEMM | vs baseline |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["model"], int(r["batch_size"]))].append(r)
    verdicts = []
    for (model, batch), group in groups.items():
        base = next((r for r in group if r["label"] in ("torchvision", "cnnzoo")), group[0])
        base_ms = float(base["median_ms"])
        for r in group:
            fraction = _float(r["fraction_of_gemm"])
            lines.append(
                f"| {model} | {batch} | {r['label']} | {r['case']} | {float(r['median_ms']):.1f} "
                f"({float(r['min_ms']):.1f}-{float(r['max_ms']):.1f}) | "
                f"{float(r['images_per_s']):.1f} | {float(r['gflops_per_s']):.1f} | "
                f"{'' if fraction is None else f'{fraction:.0%}'} | "
                f"{base_ms / float(r['median_ms']):.2f}x |"
            )
        verdicts += _targets(model, batch, group, base_ms, first)
    lines += [
        "",
        "The baseline is torchvision's eager fp32 model (cnnzoo's eager fp32 model where "
        "torchvision has none); ratios are of medians. GFLOP/s count 2 x the analyzer's MACs.",
        "",
        "Targets (medians; each model and batch size on its own):",
        "",
    ]
    lines += [f"- {v}" for v in verdicts]
    return "\n".join(lines)


def _targets(model, batch, group, base_ms, first) -> list[str]:
    def best(pred):
        chosen = [r for r in group if pred(r)]
        return min(chosen, key=lambda r: float(r["median_ms"])) if chosen else None

    def ms(r):
        return float(r["median_ms"])

    counts = all(r["load_counts"] == "True" for r in group)
    tag = "" if counts else " (load above the limit: does not count)"
    where = f"{model} batch {batch}"
    out = []
    ours32 = best(lambda r: r["label"].startswith("cnnzoo") and r["precision"] == "fp32")
    peer32 = best(lambda r: not r["label"].startswith("cnnzoo") and r["precision"] == "fp32")
    if ours32 and peer32:
        met = ms(ours32) <= ms(peer32)
        out.append(
            f"{where}: cnnzoo's best fp32 path ({ours32['label']}, {ms(ours32):.1f} ms) vs the "
            f"fastest fp32 peer ({peer32['label']}, {ms(peer32):.1f} ms): "
            f"{ms(peer32) / ms(ours32):.2f}x, **{'met' if met else 'not met'}**{tag}"
        )
    ours16 = best(lambda r: r["label"].startswith("cnnzoo") and r["precision"] == "bf16")
    if ours16:
        flags = first["cpu_flags"].split()
        speedup = base_ms / ms(ours16)
        fraction = _float(ours16["fraction_of_gemm"]) or 0.0
        if "amx_bf16" in flags:
            met = speedup >= 4 and fraction >= 0.6
            goal = ">= 4x torchvision eager fp32 and >= 60% of the bf16 GEMM rate (AMX)"
        else:
            met = speedup >= 1.7
            goal = ">= 1.7x torchvision eager fp32 (AVX512-BF16 without AMX)"
        out.append(
            f"{where}: best bf16 ({ours16['label']}) {speedup:.2f}x torchvision eager, "
            f"{fraction:.0%} of the bf16 GEMM rate; goal {goal}: "
            f"**{'met' if met else 'not met'}**{tag}"
        )
        if ours32:
            met = ms(ours16) <= ms(ours32)
            out.append(
                f"{where}: bf16 never slower than fp32: {ms(ours16):.1f} ms vs "
                f"{ms(ours32):.1f} ms, **{'met' if met else 'not met'}**{tag}"
            )
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch", default="16,1")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="torch.compile cases (Inductor; compiling takes tens of seconds per model)",
    )
    parser.add_argument("--input", help="CxHxW for every model (default: each spec's; smoke runs)")
    parser.add_argument("--gemm-size", type=int, default=2048)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--out", default=str(machine_csv(RESULTS, "inference")), help="default: this machine's CSV"
    )
    parser.add_argument("--append", action="store_true", help="keep the CSV's earlier rows")
    parser.add_argument("--markdown", default=str(MARKDOWN), help="file whose tables to rewrite")
    parser.add_argument("--no-markdown", action="store_true", help="leave BENCHMARKS.md alone")
    parser.add_argument("--tables-only", action="store_true", help="no measuring: tables from CSV")
    args = parser.parse_args(argv)
    if not args.tables_only:
        run(args)
    text = all_tables(Path(args.out).parent)
    print(text)
    if not args.no_markdown:
        rewrite_between(args.markdown, BEGIN, END, text)
        print(f"tables rewritten in {args.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
