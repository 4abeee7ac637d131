"""AlexNet: Krizhevsky, Sutskever, Hinton 2012, "ImageNet Classification with Deep Convolutional
Neural Networks", NIPS 2012.

`alexnet` is the network as the lecture tabulates it: 227x227x3 input (the paper's "224" does not
divide evenly; 227 makes CONV1 (227 - 11) / 4 + 1 = 55), five convolutions with the paper's two
GPU towers as grouped convolutions (CONV2, CONV4, CONV5 see only their own tower; CONV3 and the
fully connected layers see both), max pooling 3x3 stride 2 (overlapping, Sec. 3.4), local
response normalization with the paper's constants (Sec. 3.3), and dropout 0.5 in FC6 and FC7.
`alexnet_tv` is torchvision's single-tower variant (from "One weird trick", arXiv 1404.5997).

The conv stack is a table of `ConvLayer` rows, which ZFNet (models/zfnet.py) reuses.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from torch import Tensor, nn

from cnnzoo.layers import LocalResponseNorm, check_input
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="ImageNet Classification with Deep Convolutional Neural Networks",
    authors="Krizhevsky, Sutskever, Hinton",
    year=2012,
    venue="NIPS 2012",
)
TV_PAPER = Paper(
    title="One weird trick for parallelizing convolutional neural networks",
    authors="Krizhevsky",
    year=2014,
    arxiv="1404.5997",
)


@dataclass(frozen=True)
class ConvLayer:
    """One convolutional layer of an AlexNet-style stack, with what follows its ReLU."""

    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    pool: tuple[int, int, int] | None = None  # max pool (kernel, stride, padding) after the ReLU
    norm: bool = False  # local response normalization after the pool
    bias_one: bool = False  # AlexNet initializes this layer's biases to 1 (Sec. 5)


ALEXNET_LAYERS = (
    ConvLayer(96, 11, stride=4, pool=(3, 2, 0), norm=True),
    ConvLayer(256, 5, padding=2, groups=2, pool=(3, 2, 0), norm=True, bias_one=True),
    ConvLayer(384, 3, padding=1),
    ConvLayer(384, 3, padding=1, groups=2, bias_one=True),
    ConvLayer(256, 3, padding=1, groups=2, pool=(3, 2, 0), bias_one=True),
)


class AlexNet(nn.Module):
    """An AlexNet-style network: a table of conv layers, then FC6, FC7 (dropout) and FC8.

    Module names follow the lecture: conv1..conv5, pool1..pool3, norm1, norm2, fc6..fc8.
    Initialization is the paper's (Sec. 5): weights N(0, 0.01), biases 1 where `bias_one` and in
    FC6/FC7, 0 elsewhere.

    Args:
        layers: the conv table.
        feature_size: spatial size of the last pool's output at the default input (6).
        dropout: dropout probability in FC6 and FC7.
    """

    def __init__(
        self,
        *,
        layers: tuple[ConvLayer, ...] = ALEXNET_LAYERS,
        feature_size: int = 6,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.5,
        hidden_bias_one: bool = True,
        name: str = "alexnet",
    ) -> None:
        super().__init__()
        self.name, self.in_chans = name, in_chans
        features: OrderedDict[str, nn.Module] = OrderedDict()
        channels, pools, norms = in_chans, 0, 0
        biases_one = []
        for i, layer in enumerate(layers, start=1):
            conv = nn.Conv2d(
                channels, layer.out_channels, layer.kernel, layer.stride, layer.padding,
                groups=layer.groups,
            )  # fmt: skip
            features[f"conv{i}"] = conv
            if layer.bias_one:
                biases_one.append(conv)
            features[f"relu{i}"] = nn.ReLU(inplace=True)
            if layer.pool is not None:
                pools += 1
                features[f"pool{pools}"] = nn.MaxPool2d(*layer.pool)
            if layer.norm:
                norms += 1
                features[f"norm{norms}"] = LocalResponseNorm()
            channels = layer.out_channels
        self.features = nn.Sequential(features)
        fc6 = len(layers) + 1
        self.classifier = nn.Sequential(
            OrderedDict(
                [
                    ("flatten", nn.Flatten()),
                    (f"fc{fc6}", nn.Linear(channels * feature_size**2, 4096)),
                    (f"relu{fc6}", nn.ReLU(inplace=True)),
                    (f"dropout{fc6}", nn.Dropout(dropout)),
                    (f"fc{fc6 + 1}", nn.Linear(4096, 4096)),
                    (f"relu{fc6 + 1}", nn.ReLU(inplace=True)),
                    (f"dropout{fc6 + 1}", nn.Dropout(dropout)),
                    (f"fc{fc6 + 2}", nn.Linear(4096, num_classes)),
                ]
            )
        )
        if hidden_bias_one:
            biases_one += [self.classifier[1], self.classifier[4]]
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.constant_(m.bias, 1.0 if any(m is b for b in biases_one) else 0.0)

    def forward(self, x: Tensor) -> Tensor:
        x = check_input(x, self.in_chans, self.name)
        return self.classifier(self.features(x))


class AlexNetTV(nn.Module):
    """torchvision's AlexNet: one tower, 64-192-384-256-256 filters, no LRN, adaptive pooling."""

    def __init__(
        self, *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5,
        name: str = "alexnet_tv",
    ) -> None:  # fmt: skip
        super().__init__()
        self.name, self.in_chans = name, in_chans
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = check_input(x, self.in_chans, self.name)
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


register(
    ModelSpec(
        name="alexnet",
        family="alexnet",
        paper=PAPER,
        builder=AlexNet,
        arch={"layers": ALEXNET_LAYERS, "feature_size": 6, "hidden_bias_one": True},
        summary="AlexNet with the paper's two towers (grouped convs) and LRN, 227x227 input",
        input_size=(3, 227, 227),
        dataset="imagenet",
        num_classes=1000,
        num_params=60_965_224,
        macs=724_406_816,
        results=(
            Result("imagenet_val_top1_err", 40.7, "Krizhevsky et al. 2012, Table 2, '1 CNN'"),
            Result("imagenet_val_top5_err", 18.2, "Krizhevsky et al. 2012, Table 2, '1 CNN'"),
            Result("ilsvrc2010_test_top1_err", 37.5, "Krizhevsky et al. 2012, Table 1"),
            Result("ilsvrc2010_test_top5_err", 17.0, "Krizhevsky et al. 2012, Table 1"),
        ),
        deviations=(
            "Input 227x227 rather than the paper's stated 224x224, which does not give the "
            "paper's 55x55 CONV1 output; 227 does, as the lecture and Caffe use.",
            "Pooling comes before normalization (CONV-POOL-NORM, the lecture's order and "
            "Caffe's CaffeNet); the paper normalizes before pooling. Shapes and parameters "
            "are unchanged.",
            "The two GPUs are grouped convolutions (groups=2) in CONV2, CONV4 and CONV5 on one "
            "device; CONV3 and the FC layers connect across both towers as in the paper.",
        ),
    )
)

register(
    ModelSpec(
        name="alexnet_tv",
        family="alexnet",
        paper=TV_PAPER,
        builder=AlexNetTV,
        summary="torchvision's single-tower AlexNet (64-192-384-256-256, no LRN)",
        input_size=(3, 224, 224),
        dataset="imagenet",
        num_classes=1000,
        num_params=61_100_840,
        macs=714_188_480,
        torchvision_name="alexnet",
        results=(
            Result("imagenet_top1_acc", 56.522, "torchvision alexnet IMAGENET1K_V1 weights meta"),
            Result("imagenet_top5_acc", 79.066, "torchvision alexnet IMAGENET1K_V1 weights meta"),
        ),
        deviations=(
            "torchvision's variant, not the 2012 paper's network: one tower with 64, 192, 384, "
            "256, 256 filters, no local response normalization, and adaptive 6x6 pooling.",
        ),
    )
)
