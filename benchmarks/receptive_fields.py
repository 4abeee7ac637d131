"""Receptive fields of torchvision's SE, shuffle, ConvNeXt and Swin networks, as the analyzer
reports them: the data behind the before/after table of issue 12.

    python benchmarks/receptive_fields.py --label after [--out FILE.json]

Run it once with the old sources on PYTHONPATH (`--label before`) and once with the new ones;
each run replaces its label's entry in the JSON file and keeps the others. This is analysis on
meta tensors, not timing: the numbers do not depend on the machine or its load.

For each network (built with weights=None, input 3x224x224) it records the field of the output,
of the last layer with a spatial output (the end of the feature extractor), the first layer at
which the analyzer stops following the field (and its note, where the analyzer gives one), and,
for the squeeze-and-excitation networks, the same network with its SE blocks replaced by
identities: the field of the convolution path alone, the lower bound of the real field.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.ops.misc import SqueezeExcitation

from cnnzoo.analysis import summary

MODELS = (
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "regnet_y_400mf",
    "shufflenet_v2_x1_0",
    "convnext_tiny",
    "swin_t",
)
SE_MODELS = ("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf")


def _field(rf) -> dict | None:
    if rf is None:
        return None
    return {
        "size": list(rf.size),
        "stride": None if not rf.spatial else [float(j) for j in rf.jump],
        "global": not rf.spatial,
    }


def _without_se(model: nn.Module) -> nn.Module:
    for name, child in model.named_children():
        if isinstance(child, SqueezeExcitation) or type(child).__name__ == "SqueezeExcitation":
            setattr(model, name, nn.Identity())
        else:
            _without_se(child)
    return model


def describe(model: nn.Module) -> dict:
    report = summary(model, (3, 224, 224))
    rows = report.all_layers
    # Maps with more than one position (N x C x H x W or N x H x W x C, H and W above 1).
    spatial = [
        r
        for r in rows
        if r.output_shape is not None
        and len(r.output_shape) == 4
        and sum(s > 1 for s in r.output_shape[1:]) == 3
    ]
    last = spatial[-1] if spatial else None
    had_field = False
    stop = None
    for r in rows:
        if r.rf is not None:
            had_field = True
        elif had_field or r.index == 0:
            stop = {
                "layer": r.name,
                "type": r.type,
                "notes": [n for n in r.notes if "receptive field" in n],
            }
            break
    return {
        "output": _field(report.output_rf),
        "last_spatial_layer": None
        if last is None
        else {"layer": last.name, "shape": list(last.output_shape), "field": _field(last.rf)},
        "first_stop": stop,
        "global_rows": sum(1 for r in rows if r.rf is not None and not r.rf.spatial),
        "rows": len(rows),
        "notes": [n for n in report.notes if "receptive" in n],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="e.g. before / after")
    parser.add_argument("--out", default="benchmarks/results/receptive_fields.json")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    results = {}
    for name in MODELS:
        model = getattr(torchvision.models, name)(weights=None)
        entry = describe(model)
        if name in SE_MODELS:
            entry["without_se"] = describe(_without_se(model))
        results[name] = entry
        print(name, json.dumps(entry["output"]), json.dumps(entry["last_spatial_layer"]),
              file=sys.stderr)  # fmt: skip
    path = Path(args.out)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[args.label] = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                        "input": [3, 224, 224], "models": results}  # fmt: skip
    from cnnzoo.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    print(f"wrote {path} [{args.label}]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
