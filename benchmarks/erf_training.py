"""Does the effective receptive field grow with training? (Luo et al. 2016, arXiv 1701.04128,
Sec. 4.3: "the ERF grows during training".) ResNet-20 at random init and after a short real
training run on the embedded digits.

    python benchmarks/erf_training.py [--epochs 15] [--samples 64] [--input 3x96x96]

Trains `resnet20_cifar` on the digits with the `lenet-digits` recipe (Adam 0.002, cosine, the
digits augmentation) for `--epochs`, then measures the effective field of the central unit of
`final_relu` (the last spatial map) with `cnnzoo.analysis.erf.effective_rf`, averaged over
`--samples` standard-normal inputs, for the trained weights and for three random
initializations (seeds 0, 1, 2: the spread of random init). The input is larger than the
theoretical field (81 pixels) by default, so the image border does not clip the field; the
network is convolutional up to `final_relu`, so any size runs. It also measures at the training
size, 3x32x32. Writes `benchmarks/results/erf_training.json` and the two heatmaps under docs/.
This is analysis, not timing: the numbers do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from cnnzoo.analysis import parse_input_size
from cnnzoo.analysis.erf import effective_rf
from cnnzoo.fileio import atomic_write_text
from cnnzoo.registry import create_model

MODEL, LAYER = "resnet20_cifar", "final_relu"


def _radii(model: torch.nn.Module, size: tuple[int, ...], samples: int) -> dict:
    erf = effective_rf(model, size, layer=LAYER, samples=samples, name=MODEL)
    return {"radius50": round(erf.radius50, 2), "radius90": round(erf.radius90, 2),
            "theoretical": list(erf.theoretical.size) if erf.theoretical else None,
            "erf": erf}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--input", default="3x96x96")
    parser.add_argument("--run", help="an existing run folder to use instead of training")
    parser.add_argument("--out", default="benchmarks/results/erf_training.json")
    parser.add_argument("--figures", default="docs")
    args = parser.parse_args(argv)
    from cnnzoo.train import fit
    from cnnzoo.train.evaluate import load_trained
    from cnnzoo.train.recipes import resolve_config

    sizes = {"large": parse_input_size(args.input), "training": (3, 32, 32)}
    if args.run:
        run = Path(args.run)
        accuracy = None
    else:
        run = Path(tempfile.mkdtemp(prefix="erf-run-")) / "resnet20"
        config = resolve_config(MODEL, data="digits", recipe="lenet-digits", epochs=args.epochs,
                                out=str(run))  # fmt: skip
        accuracy = fit(config).test_accuracy
    trained = load_trained(run).model
    results: dict = {"model": MODEL, "layer": LAYER, "samples": args.samples,
                     "epochs": args.epochs if not args.run else None, "test_accuracy": accuracy,
                     "run": str(run), "sizes": {}}  # fmt: skip
    for label, size in sizes.items():
        entry = {"input": list(size), "trained": _radii(trained, size, args.samples)}
        for seed in (0, 1, 2):
            torch.manual_seed(seed)
            entry[f"random_seed{seed}"] = _radii(create_model(MODEL, num_classes=10), size,
                                                 args.samples)  # fmt: skip
        if label == "large":
            figures = Path(args.figures)
            entry["trained"]["erf"].save(figures / "erf_resnet20_trained.png")
            entry["random_seed0"]["erf"].save(figures / "erf_resnet20_random.png")
        for value in entry.values():
            if isinstance(value, dict):
                value.pop("erf", None)
        results["sizes"][label] = entry
        print(label, json.dumps(entry), file=sys.stderr)
    path = Path(args.out)
    atomic_write_text(path, json.dumps(results, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
