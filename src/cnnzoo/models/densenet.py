"""DenseNet: Huang, Liu, van der Maaten, Weinberger 2016, "Densely Connected Convolutional
Networks", arXiv 1608.06993 (CVPR 2017).

Inside a dense block every layer receives the concatenation of all earlier feature maps of the
block and adds k (the growth rate) new ones, so features are reused instead of re-learnt and a
narrow layer suffices. A layer is BN-ReLU-conv3x3 (the basic "DenseNet"), or, with bottleneck
("-B"), BN-ReLU-conv1x1 (4k maps)-BN-ReLU-conv3x3. Transition layers between blocks are
BN-ReLU-conv1x1-avgpool2x2; with compression ("-C") they keep half the maps.

ImageNet networks (Table 1: DenseNet-BC, k=32, or k=48 for DenseNet-161) equal torchvision's,
module names included, so weights interchange. CIFAR networks (Sec. 3, "Implementation
Details"): a 3x3 stem of 16 maps (2k for DenseNet-BC) and three dense blocks on 32x32, 16x16 and
8x8 maps. `memory_efficient=True` recomputes each layer's concatenation and bottleneck in the
backward pass (`torch.utils.checkpoint`, Pleiss et al. 2017, arXiv 1707.06990) instead of
storing them: same outputs and gradients, much less memory, more compute.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.utils import checkpoint

from cnnzoo.layers import Concat, check_input
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="Densely Connected Convolutional Networks",
    authors="Huang, Liu, van der Maaten, Weinberger",
    year=2016,
    arxiv="1608.06993",
)

Stem = Literal["imagenet", "cifar"]


@dataclass(frozen=True)
class DenseArch:
    """A DenseNet configuration: Table 1's columns and the CIFAR networks of Table 2."""

    growth_rate: int  # k
    blocks: tuple[int, ...]  # layers per dense block
    stem: Stem
    bottleneck: bool  # "-B": a 1x1 conv of `bn_size * k` maps before each 3x3
    compression: float  # "-C": a transition keeps this fraction of the maps (1 = none)
    bn_size: int = 4  # Sec. 3: "we let each 1x1 convolution produce 4k feature-maps"

    @property
    def stem_channels(self) -> int:
        if self.stem == "imagenet":
            return 2 * self.growth_rate  # Table 1: 64 for k=32, 96 for k=48
        return 2 * self.growth_rate if self.bottleneck else 16  # Sec. 3


def _cifar(depth: int, k: int, bc: bool) -> DenseArch:
    """A three-block CIFAR DenseNet of `depth` layers: (depth - 4) / 3 conv layers per block,
    each 2 convs deep with bottleneck, so (depth - 4) / 6 dense layers per block."""
    per_block = (depth - 4) // (6 if bc else 3)
    return DenseArch(k, (per_block,) * 3, "cifar", bottleneck=bc, compression=0.5 if bc else 1.0)


ARCHS: dict[str, DenseArch] = {
    "densenet121": DenseArch(32, (6, 12, 24, 16), "imagenet", True, 0.5),
    "densenet161": DenseArch(48, (6, 12, 36, 24), "imagenet", True, 0.5),
    "densenet169": DenseArch(32, (6, 12, 32, 32), "imagenet", True, 0.5),
    "densenet201": DenseArch(32, (6, 12, 48, 32), "imagenet", True, 0.5),
    "densenet40_k12_cifar": _cifar(40, 12, bc=False),
    "densenet_bc100_k12_cifar": _cifar(100, 12, bc=True),
    "densenet_bc250_k24_cifar": _cifar(250, 24, bc=True),
    "densenet_bc190_k40_cifar": _cifar(190, 40, bc=True),
}


class DenseLayer(nn.Module):
    """Concatenate the block's features so far, then (BN-ReLU-conv1x1)-BN-ReLU-conv3x3.

    Module names follow torchvision's `_DenseLayer`: norm1/relu1/conv1 is the bottleneck (or the
    only conv without one), norm2/relu2/conv2 the 3x3 after a bottleneck.
    """

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        bottleneck: bool,
        bn_size: int,
        drop_rate: float,
        memory_efficient: bool,
    ) -> None:
        super().__init__()
        self.concat = Concat()
        width = bn_size * growth_rate if bottleneck else growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        kernel = 1 if bottleneck else 3
        self.conv1 = nn.Conv2d(in_channels, width, kernel, padding=kernel // 2, bias=False)
        self.bottleneck = bottleneck
        if bottleneck:
            self.norm2 = nn.BatchNorm2d(width)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(width, growth_rate, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.memory_efficient = memory_efficient

    def _first(self, *features: Tensor) -> Tensor:
        # The concatenation and first conv: the part whose outputs grow with the block.
        return self.conv1(self.relu1(self.norm1(self.concat(list(features)))))

    def forward(self, features: list[Tensor]) -> Tensor:
        if self.memory_efficient and torch.is_grad_enabled():
            out = checkpoint.checkpoint(self._first, *features, use_reentrant=False)
        else:
            out = self._first(*features)
        if self.bottleneck:
            out = self.conv2(self.relu2(self.norm2(out)))
        return self.dropout(out)


class DenseBlock(nn.Module):
    """Layers `denselayer1..n`; each is fed every earlier output of the block, and the block
    returns the concatenation of its input and all layer outputs."""

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        arch: DenseArch,
        drop_rate: float,
        memory_efficient: bool,
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        for i in range(num_layers):
            layer = DenseLayer(
                in_channels + i * arch.growth_rate, arch.growth_rate, arch.bottleneck,
                arch.bn_size, drop_rate, memory_efficient,
            )  # fmt: skip
            self.add_module(f"denselayer{i + 1}", layer)
        self.concat = Concat()
        self.out_channels = in_channels + num_layers * arch.growth_rate

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for i in range(1, self.num_layers + 1):
            features.append(getattr(self, f"denselayer{i}")(features))
        return self.concat(features)


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1-avgpool2x2 between dense blocks (torchvision's `_Transition` names)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


class DenseNet(nn.Module):
    """A DenseNet from a `DenseArch`.

    Args:
        arch: the configuration.
        drop_rate: dropout after each dense layer (the paper uses 0.2 on C10/C100/SVHN without
            augmentation, 0 otherwise).
        memory_efficient: checkpoint each layer's concatenation and first conv (recomputed in
            backward). Not FX-traceable; the default graph is. As in torchvision, the
            recomputation updates norm1's running statistics a second time in training.
    """

    def __init__(
        self,
        *,
        arch: DenseArch,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
        name: str = "densenet",
    ) -> None:
        super().__init__()
        self.name, self.in_chans = name, in_chans
        channels = arch.stem_channels
        features: dict[str, nn.Module] = {}
        if arch.stem == "imagenet":
            features["conv0"] = nn.Conv2d(in_chans, channels, 7, 2, 3, bias=False)
            features["norm0"] = nn.BatchNorm2d(channels)
            features["relu0"] = nn.ReLU(inplace=True)
            features["pool0"] = nn.MaxPool2d(3, 2, 1)
        else:
            features["conv0"] = nn.Conv2d(in_chans, channels, 3, 1, 1, bias=False)
        for i, num_layers in enumerate(arch.blocks, start=1):
            block = DenseBlock(num_layers, channels, arch, drop_rate, memory_efficient)
            features[f"denseblock{i}"] = block
            channels = block.out_channels
            if i < len(arch.blocks):
                out = int(channels * arch.compression)
                features[f"transition{i}"] = Transition(channels, out)
                channels = out
        features["norm5"] = nn.BatchNorm2d(channels)
        self.features = nn.Sequential(OrderedDict(features))
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(channels, num_classes)
        self.num_features = channels
        for m in self.modules():  # torchvision's initialization
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = check_input(x, self.in_chans, self.name)
        x = self.relu(self.features(x))
        return self.classifier(self.flatten(self.avgpool(x)))


def cifar_densenet(
    *,
    arch: DenseArch,
    drop_rate: float = 0.0,
    memory_efficient: bool = False,
    num_classes: int = 10,
    in_chans: int = 3,
    name: str = "densenet_cifar",
) -> DenseNet:
    """A CIFAR DenseNet (10 classes unless told otherwise)."""
    return DenseNet(
        arch=arch, drop_rate=drop_rate, memory_efficient=memory_efficient,
        num_classes=num_classes, in_chans=in_chans, name=name,
    )  # fmt: skip


# torchvision's documented parameter counts and the paper's Table 3 single-crop errors.
_TV = {  # name: (top-1, top-5) of the IMAGENET1K_V1 weights
    "densenet121": (74.434, 91.972),
    "densenet161": (77.138, 93.56),
    "densenet169": (75.6, 92.806),
    "densenet201": (76.896, 93.37),
}
_PAPER_IMAGENET = {  # (top-1 single crop, top-1 10-crop, top-5 single crop) error
    "densenet121": (25.02, 23.61, 7.71),
    "densenet169": (23.80, 22.08, 6.85),
    "densenet201": (22.58, 21.46, 6.34),
}
_PARAMS = {
    "densenet121": 7_978_856,
    "densenet161": 28_681_000,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet40_k12_cifar": 1_019_722,
    "densenet_bc100_k12_cifar": 769_162,
    "densenet_bc250_k24_cifar": 15_324_406,
    "densenet_bc190_k40_cifar": 25_624_430,
}
_MACS = {
    "densenet121": 2_834_161_664,
    "densenet161": 7_727_907_072,
    "densenet169": 3_359_843_328,
    "densenet201": 4_291_365_888,
    "densenet40_k12_cifar": 264_812_928,
    "densenet_bc100_k12_cifar": 287_929_692,
    "densenet_bc250_k24_cifar": 5_418_785_724,
    "densenet_bc190_k40_cifar": 9_301_945_740,
}

_INIT_NOTE = (
    "Initialization is torchvision's (Kaiming normal, fan_in); the paper's Torch code uses He's "
    "initialization with fan_out."
)
_DENSENET161_NOTE = (
    "DenseNet-161 (k=48, blocks 6-12-36-24) is the authors' released ImageNet model; it is not "
    "a row of the paper's Tables 1 and 3."
)

for _name, (_top1, _top5) in _TV.items():
    _arch = ARCHS[_name]
    _src = f"torchvision {_name} IMAGENET1K_V1 weights meta"
    _results = [Result("imagenet_top1_acc", _top1, _src), Result("imagenet_top5_acc", _top5, _src)]
    if _name in _PAPER_IMAGENET:
        _e1, _e10, _e5 = _PAPER_IMAGENET[_name]
        _paper_src = "Huang et al., arXiv 1608.06993, Table 3"
        _results += [
            Result("imagenet_val_top1_err_single_crop", _e1, _paper_src),
            Result("imagenet_val_top1_err_10crop", _e10, _paper_src),
            Result("imagenet_val_top5_err_single_crop", _e5, _paper_src),
        ]
    else:
        _results.append(
            Result(
                "imagenet_val_top1_err_single_crop",
                22.2,
                "liuzhuang13/DenseNet README (Torch model, k=48); not in the paper's Table 3",
            )
        )
    _depth = _name.removeprefix("densenet")
    register(
        ModelSpec(
            name=_name,
            family="densenet",
            paper=PAPER,
            builder=DenseNet,
            arch={"arch": _arch},
            summary=f"DenseNet-{_depth} (DenseNet-BC, k={_arch.growth_rate}, blocks "
            f"{'-'.join(map(str, _arch.blocks))}), equal to torchvision's",
            input_size=(3, 224, 224),
            dataset="imagenet",
            num_classes=1000,
            num_params=_PARAMS[_name],
            macs=_MACS[_name],
            torchvision_name=_name,
            results=tuple(_results),
            deviations=(_INIT_NOTE, _DENSENET161_NOTE) if _name == "densenet161" else (_INIT_NOTE,),
        )
    )

_CIFAR = {  # name: (depth, k, bc, results: (C10, C10+, C100, C100+) test error, None if absent)
    "densenet40_k12_cifar": (40, 12, False, (7.00, 5.24, 27.55, 24.42)),
    "densenet_bc100_k12_cifar": (100, 12, True, (5.92, 4.51, 24.15, 22.27)),
    "densenet_bc250_k24_cifar": (250, 24, True, (5.19, 3.62, 19.64, 17.60)),
    "densenet_bc190_k40_cifar": (190, 40, True, (None, 3.46, None, 17.18)),
}
_PAPER_PARAMS = {  # Table 2
    "densenet40_k12_cifar": "1.0M",
    "densenet_bc100_k12_cifar": "0.8M",
    "densenet_bc250_k24_cifar": "15.3M",
    "densenet_bc190_k40_cifar": "25.6M",
}
_METRICS = ("cifar10_test_err", "cifar10_aug_test_err", "cifar100_test_err",
            "cifar100_aug_test_err")  # fmt: skip
for _name, (_depth, _k, _bc, _errs) in _CIFAR.items():
    _arch = ARCHS[_name]
    _src = "Huang et al., arXiv 1608.06993, Table 2"
    _kind = "DenseNet-BC" if _bc else "DenseNet"
    register(
        ModelSpec(
            name=_name,
            family="densenet",
            paper=PAPER,
            builder=cifar_densenet,
            arch={"arch": _arch},
            summary=f"{_kind} (L={_depth}, k={_k}) for CIFAR: three blocks of "
            f"{_arch.blocks[0]} layers, {_PAPER_PARAMS[_name]} parameters in Table 2",
            input_size=(3, 32, 32),
            dataset="cifar10",
            num_classes=10,
            num_params=_PARAMS[_name],
            macs=_MACS[_name],
            results=tuple(Result(m, e, _src) for m, e in zip(_METRICS, _errs, strict=True) if e),
            deviations=(
                "Dropout is off by default (the paper's setting with data augmentation); pass "
                "drop_rate=0.2 for the paper's C10/C100/SVHN runs without augmentation.",
                _INIT_NOTE,
            ),
        )
    )
