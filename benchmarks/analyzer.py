"""Time `cnnzoo.summary` against torchinfo and fvcore, in the same run, on the same models.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/analyzer.py [--repeat 3] [--out benchmarks/results/analyzer.csv]

Each tool gets the same CPU model (built once, float32, contiguous memory format) and does what
its users call it for: cnnzoo.summary (per-layer records on meta tensors), torchinfo.summary
with output shapes, parameters and mult-adds (a real forward pass with hooks), fvcore's
FlopCountAnalysis rendered as its per-module table (a TorchScript trace of a real forward).
One warm-up call, then `--repeat` timed calls of each peer and 20 times as many of cnnzoo
(milliseconds each, so more calls steady its median on a shared machine), taking turns so that
all see the same load: median, min and max in seconds. The Markdown table gives speed-ups of
the medians, and in parentheses of the fastest calls.

`--memory` instead compares the training-memory estimate (`Totals.training_bytes("adam")`) with
the peak resident memory of one real training step (forward, backward, Adam step) on the CPU,
measured in a fresh process as the growth of its peak RSS over its RSS before the step, plus
the parameters, buffers and input already allocated by then.

The peers run the model for real, so at 1024x1024 with batch 64 they would need tens to
hundreds of GB of memory and minutes per call on a CPU: that configuration times cnnzoo alone,
against its own 224 x 1 time. The first cnnzoo call in a process also pays PyTorch's one-time
import of its meta-kernel machinery (sympy, torch._dynamo); it is timed separately ("cold").
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

import cnnzoo

MODELS = ("resnet50", "resnet152", "densenet121", "vgg16")
SMALL = ((3, 224, 224), 1)
LARGE = ((3, 1024, 1024), 64)


def timed(
    calls: dict[str, Callable[[], object]], repeats: dict[str, int]
) -> dict[str, list[float]]:
    """Seconds of each call, after one warm-up call each. The calls take turns, round by round,
    so that all of them see the same load on a shared machine."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {key: [] for key in calls}
    for round_ in range(max(repeats.values())):
        for key, call in calls.items():
            if round_ < repeats[key]:
                start = time.perf_counter()
                call()
                times[key].append(time.perf_counter() - start)
    return times


def run_torchinfo(model: torch.nn.Module, size: tuple[int, ...], batch: int) -> object:
    import torchinfo

    return torchinfo.summary(
        model,
        input_size=(batch, *size),
        col_names=("output_size", "num_params", "mult_adds"),
        device="cpu",
        verbose=0,
    )


def run_fvcore(model: torch.nn.Module, size: tuple[int, ...], batch: int) -> str:
    from fvcore.nn import FlopCountAnalysis, flop_count_table

    analysis = FlopCountAnalysis(model, torch.zeros(batch, *size))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return flop_count_table(analysis)


def cold_seconds(name: str) -> float:
    """The first `summary` call in a fresh interpreter (after `import cnnzoo`)."""
    code = (
        "import time, cnnzoo\n"
        f"m = cnnzoo.create_model({name!r})\n"
        "t = time.perf_counter(); cnnzoo.summary(m, (3, 224, 224))\n"
        "print(time.perf_counter() - t)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


MEMORY_CASES = (("resnet18", 16), ("resnet50", 8), ("vgg11", 4), ("densenet121", 8))

_STEP = """
import resource, torch, torch.nn.functional as F, cnnzoo
spec = cnnzoo.get_spec({name!r})
model = cnnzoo.create_model({name!r})
x = torch.randn({batch}, *spec.input_size)
y = torch.randint(0, spec.num_classes, ({batch},))
optimizer = torch.optim.Adam(model.parameters())
page = resource.getpagesize()
with open("/proc/self/statm") as f:
    before = int(f.read().split()[1]) * page
F.cross_entropy(model(x), y).backward()
optimizer.step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)
"""


def measured_step_bytes(name: str, batch: int) -> int:
    """Peak memory of one real CPU training step with Adam, in a fresh process."""
    code = _STEP.format(name=name, batch=batch)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    growth = int(done.stdout.strip().splitlines()[-1])
    t = cnnzoo.summary(name, batch_size=batch).totals
    return growth + t.param_bytes + t.buffer_bytes + t.input_bytes


def memory_table() -> str:
    lines = [
        "| model | batch | estimate (Adam) | measured peak | estimate / measured |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, batch in MEMORY_CASES:
        estimate = cnnzoo.summary(name, batch_size=batch).totals.training_bytes("adam")
        measured = measured_step_bytes(name, batch)
        lines.append(
            f"| {name} | {batch} | {estimate / 2**20:.0f} MiB | {measured / 2**20:.0f} MiB "
            f"| {estimate / measured:.2f} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--out", default="benchmarks/results/analyzer.csv")
    parser.add_argument("--memory", action="store_true", help="training-memory estimate check")
    args = parser.parse_args()
    if args.memory:
        print(memory_table())
        return
    names = [n for n in args.models if n in cnnzoo.list_models()]
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    rows = []
    for name in names:
        model = cnnzoo.create_model(name).eval()
        (small, one), (large, many) = SMALL, LARGE
        calls: dict[tuple[str, tuple[int, ...], int], Callable[[], object]] = {
            ("cnnzoo", small, one): partial(cnnzoo.summary, model, small, batch_size=one),
            ("cnnzoo", large, many): partial(cnnzoo.summary, model, large, batch_size=many),
            ("torchinfo", small, one): partial(run_torchinfo, model, small, one),
            ("fvcore", small, one): partial(run_fvcore, model, small, one),
        }
        repeats = {key: 20 * args.repeat if key[0] == "cnnzoo" else args.repeat for key in calls}
        for (tool, size, batch), times in timed(calls, repeats).items():
            median, low, high = statistics.median(times), min(times), max(times)
            rows.append({
                "model": name, "tool": tool, "input": "x".join(map(str, size)),
                "batch_size": batch, "dtype": "float32", "memory_format": "contiguous",
                "median_s": f"{median:.4f}", "min_s": f"{low:.4f}", "max_s": f"{high:.4f}",
                "repeat": len(times), "machine": machine, "torch": torch.__version__,
                "python": platform.python_version(),
            })  # fmt: skip
            print(f"{name:12s} {tool:9s} {size[1]}x{size[2]} x{batch:<3d} {median:8.4f} s "
                  f"(min {low:.4f}, max {high:.4f})", flush=True)  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nwrote {out}\n")
    print(markdown(rows, names))
    if names:
        print(f"\ncold first call, {names[0]} at 224: {cold_seconds(names[0]):.2f} s")


def markdown(rows: list[dict], names: list[str]) -> str:
    def seconds(name: str, tool: str, batch: int, stat: str = "median_s") -> float:
        (row,) = [
            r for r in rows if (r["model"], r["tool"], r["batch_size"]) == (name, tool, batch)
        ]
        return float(row[stat])

    lines = [
        "| model | cnnzoo 224 x1 | torchinfo | fvcore | vs torchinfo | vs fvcore "
        "| cnnzoo 1024 x64 | 1024 x64 / 224 x1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        ours, info, fv = (seconds(name, t, 1) for t in ("cnnzoo", "torchinfo", "fvcore"))
        large = seconds(name, "cnnzoo", LARGE[1])
        fastest = {t: seconds(name, t, 1, "min_s") for t in ("cnnzoo", "torchinfo", "fvcore")}
        lines.append(
            f"| {name} | {ours * 1e3:.0f} ms | {info * 1e3:.0f} ms | {fv * 1e3:.0f} ms "
            f"| {info / ours:.0f}x ({fastest['torchinfo'] / fastest['cnnzoo']:.0f}x) "
            f"| {fv / ours:.0f}x ({fastest['fvcore'] / fastest['cnnzoo']:.0f}x) "
            f"| {large * 1e3:.0f} ms | {large / ours:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
