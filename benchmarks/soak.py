"""Soak: 2,000 training steps of the real training loop, resident memory sampled every 100 steps.

    .venv/bin/python benchmarks/soak.py            # rows in benchmarks/results/soak.csv

`cnnzoo.train.fit` trains lenet5_modern on synthetic data (3,200 images, batch 32: 100 steps an
epoch, so 20 epochs with their evaluation, metrics, curve plots and checkpoints). Every 100th
call of the loop's loss function samples the process's resident memory (/proc/self/statm) and
its peak so far (getrusage). The run passes when, after the warm-up (the first 500 steps), the
peak grows by less than 2% and 8 MiB; otherwise it exits with status 1. Not a test: it takes
a few minutes.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from cnnzoo.train import fit, loop
from cnnzoo.train.recipes import resolve_config

RESULTS = Path(__file__).parent / "results" / "soak.csv"
MIB = 2**20


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--model", default="lenet5_modern")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    samples: list[tuple[int, float, int, int]] = []
    real_loss = loop.training_loss
    calls = 0
    started = time.perf_counter()

    def sampled_loss(*a, **k):  # called once per training step
        nonlocal calls
        calls += 1
        if calls % args.every == 0:
            samples.append((calls, time.perf_counter() - started, rss_bytes(), peak_rss_bytes()))
        return real_loss(*a, **k)

    loop.training_loss = sampled_loss
    images = 100 * args.batch_size
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = resolve_config(
                args.model,
                data=f"synthetic:{images}",
                batch_size=args.batch_size,
                epochs=-(-args.steps // 100),
                max_steps=args.steps,
                out=str(Path(tmp) / "run"),
                log_every=10**9,
            )
            result = fit(config)
    finally:
        loop.training_loss = real_loss
    assert result.steps == args.steps, result

    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["step", "seconds", "rss_mib", "peak_rss_mib", "model", "batch", "torch", "threads",
             "machine"]
        )  # fmt: skip
        machine = platform.processor() or platform.machine()
        for step, seconds, rss, peak in samples:
            writer.writerow(
                [step, f"{seconds:.1f}", f"{rss / MIB:.1f}", f"{peak / MIB:.1f}", args.model,
                 args.batch_size, torch.__version__, torch.get_num_threads(), machine]
            )  # fmt: skip

    print("| step | seconds | RSS (MiB) | peak RSS (MiB) |")
    print("|---:|---:|---:|---:|")
    for step, seconds, rss, peak in samples:
        print(f"| {step} | {seconds:.1f} | {rss / MIB:.1f} | {peak / MIB:.1f} |")
    after = [s for s in samples if s[0] >= args.warmup]
    growth = after[-1][3] - after[0][3]
    ok = growth < 0.02 * after[0][3] and growth < 8 * MIB
    print(
        f"\npeak RSS from step {after[0][0]} to {after[-1][0]}: {after[0][3] / MIB:.1f} -> "
        f"{after[-1][3] / MIB:.1f} MiB (growth {growth / MIB:.2f} MiB): "
        + ("no growth after warm-up" if ok else "GROWS")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
