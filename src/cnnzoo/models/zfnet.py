"""ZFNet: Zeiler & Fergus 2013, "Visualizing and Understanding Convolutional Networks",
arXiv 1311.2901, Fig. 3.

AlexNet's layout with a 7x7 stride-2 CONV1 (instead of 11x11 stride 4) and a stride-2 CONV2,
found by looking at AlexNet's first-layer filters and aliasing. Built from AlexNet's layer table.

The paper's maps are 110, 55, 26, 13, 13, 13, 6 for a 224 input. The arithmetic does not come out
even everywhere (the lecture's "111????" row), so the paddings are chosen to reproduce the maps:
CONV1 pad 1 (floor((224 + 2 - 7) / 2) + 1 = 110), POOL1 and POOL2 pad 1
(floor((110 + 2 - 3) / 2) + 1 = 55; floor((26 + 2 - 3) / 2) + 1 = 13), CONV2 pad 0
((55 - 5) / 2 + 1 = 26), CONV3-5 pad 1, POOL3 pad 0 ((13 - 3) / 2 + 1 = 6).
"""

from __future__ import annotations

from cnnzoo.models.alexnet import AlexNet, ConvLayer
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="Visualizing and Understanding Convolutional Networks",
    authors="Zeiler, Fergus",
    year=2013,
    arxiv="1311.2901",
)

ZFNET_LAYERS = (
    ConvLayer(96, 7, stride=2, padding=1, pool=(3, 2, 1), norm=True),
    ConvLayer(256, 5, stride=2, padding=0, pool=(3, 2, 1), norm=True),
    ConvLayer(384, 3, padding=1),
    ConvLayer(384, 3, padding=1),
    ConvLayer(256, 3, padding=1, pool=(3, 2, 0)),
)

register(
    ModelSpec(
        name="zfnet",
        family="zfnet",
        paper=PAPER,
        builder=AlexNet,
        arch={"layers": ZFNET_LAYERS, "feature_size": 6, "hidden_bias_one": False},
        summary="ZFNet (Fig. 3): AlexNet with a 7x7/2 CONV1 and a stride-2 CONV2, dense layers",
        input_size=(3, 224, 224),
        dataset="imagenet",
        num_classes=1000,
        num_params=62_357_608,
        macs=1_168_032_896,
        results=(
            Result("imagenet_val_top1_err", 38.4, "Zeiler & Fergus, arXiv 1311.2901, Table 2"),
            Result("imagenet_val_top5_err", 16.5, "Zeiler & Fergus, arXiv 1311.2901, Table 2"),
        ),
        deviations=(
            "Paddings are not given in the paper; CONV1 pad 1, POOL1 and POOL2 pad 1 and CONV2 "
            "pad 0 reproduce its maps 110, 55, 26, 13 and 6 exactly (CONV1's division is "
            "floored: (224 + 2 - 7) / 2 = 109.5).",
            "Contrast normalization after POOL1 and POOL2 uses AlexNet's local response "
            "normalization and constants; the paper names no constants.",
            "The paper renormalizes first-layer filters whose RMS exceeds 0.1 during training; "
            "that is a training procedure and is not part of the model.",
            "Initialization N(0, 0.01) weights with zero biases (Sec. 3); CONV3-5 and FC are "
            "dense (one GPU), as in the paper.",
        ),
    )
)
