"""Training-step throughput: a plain eager fp32 step against channels-last and bf16 autocast.

For each model, in one run and taking turns: one training step (zero grads, forward,
cross-entropy, backward, SGD with momentum) on random data of the model's input size, as
- fp32: plain eager fp32, contiguous (the baseline);
- fp32 channels-last;
- bf16 autocast (contiguous), where the device has native bf16;
- bf16 autocast + channels-last.
Each case trains its own copy of the same initial weights. Speed-ups are the baseline's median
time over the case's.

Then, with --loss-curve, the first STEPS steps of resnet20_cifar on the embedded digits
(8x8 images upsampled to 32x32, three channels; the same seed, batches and initial weights)
in fp32 and in bf16 autocast: the loss curves must agree within the tolerance stated below.

    .venv/bin/python benchmarks/training.py --repeat 3 --loss-curve
"""

from __future__ import annotations

import argparse
import copy
import csv
from pathlib import Path

import torch
from torch import nn

from cnnzoo import create_model, get_spec
from cnnzoo.bench import bf16_support
from cnnzoo.bench.runner import append_csv, measure, train_case

MODELS = {  # name -> batch size (the issue: 128 at CIFAR size, 32 at ImageNet size)
    "resnet20_cifar": 128,
    "resnet56_cifar": 128,
    "densenet_bc100_k12_cifar": 128,
    "resnet50": 32,
}
RESULTS = Path(__file__).parent / "results"

# Loss-curve tolerance: the means of bf16 and fp32 over each window of WINDOW steps differ by at
# most ABS_TOL (cross-entropy, nats). Single steps are noisier: bf16 rounding changes the
# trajectory slightly from the first update on, so the curves are compared smoothed.
WINDOW = 20
ABS_TOL = 0.15


def speed(args: argparse.Namespace, device: torch.device) -> list[str]:
    bf16 = bf16_support(device) is not None
    variants = [("fp32", False), ("fp32", True)] + (
        [("bf16", False), ("bf16", True)] if bf16 else []
    )
    lines = []
    for name in args.models.split(","):
        spec = get_spec(name)
        batch = MODELS.get(name, 128 if spec.input_size[1] <= 64 else 32)
        torch.manual_seed(0)
        initial = create_model(name)
        cases = []
        for precision, channels_last in variants:
            label = precision + (" channels-last" if channels_last else "")
            cases.append(
                train_case(
                    label,
                    copy.deepcopy(initial),
                    name,
                    batch,
                    spec.input_size,
                    spec.num_classes,
                    device,
                    precision,
                    channels_last,
                )
            )
        timings = measure(cases, repeat=args.repeat, warmup=args.warmup)
        append_csv(timings, args.out / "training.csv")
        base = timings[0]
        for t in timings:
            line = (
                f"| {name} | {batch} | {t.label} | {1e3 * t.median:.0f} ({1e3 * t.fastest:.0f}-"
                f"{1e3 * t.slowest:.0f}) | {t.images_per_s:.1f} | {base.median / t.median:.2f}x "
                f"({base.fastest / t.fastest:.2f}x) |"
            )
            print(line, flush=True)
            lines.append(line)
    return lines


def loss_curve(steps: int, batch: int, device: torch.device, out: Path) -> str:
    from cnnzoo.data.digits import load_digits

    data = load_digits(validation="none")
    images = data.train.images.to(device)
    images = (images - data.mean[0]) / data.std[0]
    images = nn.functional.interpolate(images, size=(32, 32), mode="bilinear").repeat(1, 3, 1, 1)
    labels = data.train.labels.to(device)
    generator = torch.Generator().manual_seed(0)
    order = [torch.randint(0, len(labels), (batch,), generator=generator) for _ in range(steps)]
    torch.manual_seed(0)
    initial = create_model("resnet20_cifar", num_classes=10)
    curves = {}
    for precision in ("fp32", "bf16"):
        model = copy.deepcopy(initial).to(device).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
        losses = []
        for idx in order:
            idx = idx.to(device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16"):
                loss = nn.functional.cross_entropy(model(images[idx]), labels[idx])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        curves[precision] = losses
    with (out / "loss_curve.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "fp32", "bf16"])
        writer.writerows(zip(range(1, steps + 1), curves["fp32"], curves["bf16"], strict=True))
    windows = [
        (sum(curves["fp32"][i : i + WINDOW]) / WINDOW, sum(curves["bf16"][i : i + WINDOW]) / WINDOW)
        for i in range(0, steps - WINDOW + 1, WINDOW)
    ]
    worst = max(abs(a - b) for a, b in windows)
    verdict = "within" if worst <= ABS_TOL else "OUTSIDE"
    return (
        f"loss curve, resnet20_cifar on digits, {steps} steps of batch {batch}: fp32 "
        f"{windows[0][0]:.3f} -> {windows[-1][0]:.3f}, bf16 {windows[0][1]:.3f} -> "
        f"{windows[-1][1]:.3f} ({WINDOW}-step means); largest difference of {WINDOW}-step means "
        f"{worst:.3f}, {verdict} the tolerance {ABS_TOL}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--loss-curve", action="store_true")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--curve-batch", type=int, default=64)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    print(
        f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"bf16: {bf16_support(device) or 'not native here, skipped'}"
    )
    if not args.skip_speed:
        lines = speed(args, device)
        print(
            "\n| model | batch | case | median ms (min-max) | images/s | vs fp32: medians "
            "(fastest) |"
        )
        print("|---|---:|---|---:|---:|---:|")
        print("\n".join(lines))
    if args.loss_curve and bf16_support(device):
        print(loss_curve(args.steps, args.curve_batch, device, args.out))


if __name__ == "__main__":
    main()
