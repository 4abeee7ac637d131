"""SqueezeNet: Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer 2016, "SqueezeNet: AlexNet-level
accuracy with 50x fewer parameters and <0.5MB model size", arXiv 1602.07360.

A Fire module squeezes its input with 1x1 convolutions to few channels, then expands with 1x1
and 3x3 convolutions side by side and concatenates them (Sec. 3.2): few 3x3 filters, and few
input channels to each of them, make a network of AlexNet accuracy with 1.2M parameters.
The network (Table 1) is conv1, eight Fire modules (fire2..fire9) with max pooling after conv1,
fire4 and fire8, dropout 0.5, a 1x1 conv10 to the class count and global average pooling.

`squeezenet1_0` is the paper's network and `squeezenet1_1` the authors' later v1.1 (3x3 conv1 of
64 filters, pooling after fire3 and fire5: 2.4x less computation, same accuracy); both equal
torchvision's, module names included (`features.N.squeeze/expand1x1/expand3x3`,
`classifier.1`). Sec. 6's bypass variants: `squeezenet1_0_bypass` adds an identity shortcut
around fire3, fire5, fire7 and fire9 (the modules whose input and output depths match);
`squeezenet1_0_complex_bypass` also bypasses fire2, fire4, fire6 and fire8 through a 1x1
convolution. With a simple bypass the state dict is still squeezenet1_0's.

Deviations: see each spec's `deviations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from cnnzoo.layers import Add, Concat, check_input
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size",
    authors="Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer",
    year=2016,
    arxiv="1602.07360",
)

Bypass = Literal["none", "simple", "complex"]


@dataclass(frozen=True)
class FireSpec:
    """One Fire module of Table 1: filters of the squeeze and of the two expand convolutions."""

    squeeze: int
    expand1x1: int
    expand3x3: int

    @property
    def out_channels(self) -> int:
        return self.expand1x1 + self.expand3x3


@dataclass(frozen=True)
class SqueezeLayout:
    """conv1, then Fire modules and max pools ("M") in order."""

    conv1_channels: int
    conv1_kernel: int
    body: tuple[FireSpec | str, ...]


_F16, _F32 = FireSpec(16, 64, 64), FireSpec(32, 128, 128)
_F48, _F64 = FireSpec(48, 192, 192), FireSpec(64, 256, 256)
LAYOUTS = {
    # Table 1: fire2..fire9, pooling after conv1, fire4, fire8.
    "1_0": SqueezeLayout(96, 7, ("M", _F16, _F16, _F32, "M", _F32, _F48, _F48, _F64, "M", _F64)),
    # DeepScale/SqueezeNet v1.1: pooling after conv1, fire3, fire5.
    "1_1": SqueezeLayout(64, 3, ("M", _F16, _F16, "M", _F32, _F32, "M", _F48, _F48, _F64, _F64)),
}


class Fire(nn.Module):
    """squeeze 1x1 -> (expand 1x1 | expand 3x3) concatenated, each conv with a ReLU.

    Args:
        bypass: "simple" adds the input to the output when their depths match; "complex" also
            bypasses through a 1x1 convolution when they differ (Sec. 6). Where a bypass does
            not apply the module is a plain Fire.
    """

    def __init__(self, in_channels: int, spec: FireSpec, bypass: Bypass = "none") -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, spec.squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(spec.squeeze, spec.expand1x1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(spec.squeeze, spec.expand3x3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)
        self.concat = Concat()
        same = in_channels == spec.out_channels
        self.shortcut = (
            nn.Conv2d(in_channels, spec.out_channels, 1)
            if bypass == "complex" and not same
            else None
        )
        has_bypass = (bypass != "none" and same) or self.shortcut is not None
        self.add = Add() if has_bypass else None

    def forward(self, x: Tensor) -> Tensor:
        s = self.squeeze_activation(self.squeeze(x))
        out = self.concat(
            [
                self.expand1x1_activation(self.expand1x1(s)),
                self.expand3x3_activation(self.expand3x3(s)),
            ]
        )
        if self.add is None:
            return out
        return self.add(out, x if self.shortcut is None else self.shortcut(x))


class SqueezeNet(nn.Module):
    """SqueezeNet over a `SqueezeLayout` (module layout equals torchvision's).

    Args:
        layout: "1_0" (the paper's) or "1_1" (v1.1).
        bypass: "none", "simple" or "complex" (Sec. 6).
        dropout: dropout before conv10 (0.5 in the paper).
    """

    def __init__(
        self,
        *,
        layout: str,
        bypass: Bypass = "none",
        dropout: float = 0.5,
        num_classes: int = 1000,
        in_chans: int = 3,
        name: str = "squeezenet",
    ) -> None:
        super().__init__()
        self.name, self.in_chans = name, in_chans
        spec = LAYOUTS[layout]
        layers: list[nn.Module] = [
            nn.Conv2d(in_chans, spec.conv1_channels, spec.conv1_kernel, stride=2),
            nn.ReLU(inplace=True),
        ]
        channels = spec.conv1_channels
        for item in spec.body:
            if isinstance(item, FireSpec):
                layers.append(Fire(channels, item, bypass))
                channels = item.out_channels
            else:
                layers.append(nn.MaxPool2d(3, stride=2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        final_conv = nn.Conv2d(channels, num_classes, 1)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)
        )
        self.flatten = nn.Flatten()
        for m in self.modules():  # torchvision's initialization
            if isinstance(m, nn.Conv2d):
                if m is final_conv:
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = check_input(x, self.in_chans, self.name)
        return self.flatten(self.classifier(self.features(x)))


_TV_ACC = {"squeezenet1_0": (58.092, 80.42), "squeezenet1_1": (58.178, 80.624)}
_TABLE2 = "Iandola et al., arXiv 1602.07360, Table 2 (227x227, 4.8MB)"
_TABLE3 = "Iandola et al., arXiv 1602.07360, Table 3 (value recalled, not checked here)"
_TV_DEVIATIONS = (
    "Input 224x224 (torchvision's evaluation size); the paper's Caffe model takes 227x227.",
    "torchvision's initialization (Kaiming uniform, conv10 N(0, 0.01)); the authors' Caffe "
    "model uses Xavier.",
)


def _accuracy(top1: float, top5: float, source: str) -> tuple[Result, ...]:
    return (Result("imagenet_top1_acc", top1, source), Result("imagenet_top5_acc", top5, source))


def _tv_results(name: str) -> tuple[Result, ...]:
    return _accuracy(*_TV_ACC[name], f"torchvision {name} IMAGENET1K_V1 weights meta")


def _register(
    name: str, layout: str, bypass: Bypass, summary: str, num_params: int, macs: int,
    results: tuple[Result, ...], deviations: tuple[str, ...] = (),
    torchvision_name: str | None = None,
) -> None:  # fmt: skip
    register(
        ModelSpec(
            name=name,
            family="squeezenet",
            paper=PAPER,
            builder=SqueezeNet,
            arch={"layout": layout, "bypass": bypass},
            summary=summary,
            input_size=(3, 224, 224),
            dataset="imagenet",
            num_classes=1000,
            num_params=num_params,
            macs=macs,
            torchvision_name=torchvision_name,
            results=results,
            deviations=(*deviations, *_TV_DEVIATIONS),
        )
    )


_register(
    "squeezenet1_0", "1_0", "none",
    "SqueezeNet (Table 1): conv1 96x7x7/2, fire2..fire9, conv10, GAP",
    num_params=1_248_424, macs=818_924_576, torchvision_name="squeezenet1_0",
    results=_tv_results("squeezenet1_0") + _accuracy(57.5, 80.3, _TABLE2),
)  # fmt: skip
_register(
    "squeezenet1_1", "1_1", "none",
    "SqueezeNet v1.1: conv1 64x3x3/2, earlier pooling, 2.4x fewer MACs than v1.0",
    num_params=1_235_496, macs=349_151_936, torchvision_name="squeezenet1_1",
    results=_tv_results("squeezenet1_1"),
    deviations=(
        "Not in the paper: v1.1 is the authors' later revision (DeepScale/SqueezeNet "
        "repository), with a 3x3 conv1 of 64 filters and pooling after conv1, fire3, fire5.",
    ),
)  # fmt: skip
_register(
    "squeezenet1_0_bypass", "1_0", "simple",
    "SqueezeNet with simple bypass around fire3, fire5, fire7, fire9 (Sec. 6)",
    num_params=1_248_424, macs=818_924_576, results=_accuracy(60.4, 82.5, _TABLE3),
)  # fmt: skip
_register(
    "squeezenet1_0_complex_bypass", "1_0", "complex",
    "SqueezeNet with simple bypasses and 1x1-conv bypasses around fire2/4/6/8 (Sec. 6)",
    num_params=1_589_672, macs=1_165_298_720, results=_accuracy(58.8, 82.0, _TABLE3),
    deviations=(
        "The paper does not detail the complex bypass; ours is a 1x1 convolution with bias "
        "and no activation, added to the Fire output. It adds 341,248 parameters (1.59M in "
        "all, 6.4MB at 32 bits) where Table 3 lists 7.7MB, and 346M MACs, 42% more.",
    ),
)  # fmt: skip
