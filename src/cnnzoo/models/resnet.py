"""ResNet: He, Zhang, Ren, Sun 2015, "Deep Residual Learning for Image Recognition",
arXiv 1512.03385.

ImageNet networks of Table 1 (`resnet18` ... `resnet152`): a 7x7/2 stem and max pool, four stages
of basic (two 3x3) or bottleneck (1x1-3x3-1x1) blocks, projection shortcuts (option B) where the
shape changes, global average pooling and one FC layer. In the paper's bottleneck the stride sits
on the first 1x1 convolution; torchvision moved it to the 3x3 ("ResNet v1.5"), registered as
`resnet50_tv`, `resnet101_tv`, `resnet152_tv` (resnet18/34 are the same in both).

CIFAR networks of Section 4.2 (`resnet20_cifar` ... `resnet1202_cifar`): 6n+2 layers, a 3x3 stem
of 16 filters, three stages of n basic blocks with 16, 32, 64 filters, and zero-padding identity
shortcuts (option A) by default; `plain*_cifar` are the same stacks without shortcuts, for the
degradation experiment (Fig. 6).

Every network is the one `ResNet` class over a table of `Stage`s and the shared `ResidualBlock`;
descendant families (pre-activation, wide, ResNeXt, stochastic depth) are options of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from cnnzoo.errors import UsageError
from cnnzoo.layers import ResidualBlock, check_input, linear_decay
from cnnzoo.layers.drop_path import DropPathMode
from cnnzoo.layers.residual import StrideOn
from cnnzoo.layers.shortcut import ShortcutKind
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="Deep Residual Learning for Image Recognition",
    authors="He, Zhang, Ren, Sun",
    year=2015,
    arxiv="1512.03385",
)


@dataclass(frozen=True)
class Stage:
    """A run of residual blocks at one resolution."""

    blocks: int
    out_channels: int
    width: int  # channels of the branch's 3x3 convolutions
    stride: int  # stride of the stage's first block


Stem = Literal["imagenet", "cifar"]


class ResNet(nn.Module):
    """Residual network over a table of stages.

    Args:
        stages: the stage table.
        stem: "imagenet" (7x7/2 conv, BN, ReLU, 3x3/2 max pool) or "cifar" (3x3 conv).
        stem_channels: filters of the stem convolution.
        bottleneck: bottleneck blocks instead of basic ones.
        groups: cardinality of the 3x3 convolutions (ResNeXt).
        preact: pre-activation blocks; the stem then has no BN-ReLU, the first block activates
            its input before the split into branch and shortcut, and a final BN-ReLU comes
            before pooling (He et al. 2016, appendix).
        stride_on: where a bottleneck puts its stride ("first" 1x1 or "3x3").
        shortcut: "A" (zero padding) or "B" (projection) when the shape changes.
        residual: False builds the plain network (no shortcuts).
        dropout: dropout between the convolutions of a block (Wide ResNet).
        drop_path_rate: drop probability of the last block under the linear decay rule
            (Stochastic Depth; 0 disables).
        drop_path_mode: "batch" (the paper's) or "sample" (timm's); see `layers.drop_path`.
        zero_init_residual: start each block's last BN gamma at 0.
    """

    def __init__(
        self,
        *,
        stages: tuple[Stage, ...],
        stem: Stem,
        stem_channels: int,
        bottleneck: bool,
        groups: int = 1,
        preact: bool = False,
        stride_on: StrideOn = "first",
        shortcut: ShortcutKind = "B",
        residual: bool = True,
        dropout: float = 0.0,
        drop_path_rate: float = 0.0,
        drop_path_mode: DropPathMode = "batch",
        zero_init_residual: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
        name: str = "resnet",
    ) -> None:
        super().__init__()
        self.name, self.in_chans = name, in_chans
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, stem_channels, 7, 2, 3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_chans, stem_channels, 3, 1, 1, bias=False)
        # A pre-activation network's first block normalizes its own input.
        self.bn1 = nn.Identity() if preact else nn.BatchNorm2d(stem_channels)
        self.relu = nn.Identity() if preact else nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else nn.Identity()

        total_blocks = sum(s.blocks for s in stages)
        drop_probs = iter(linear_decay(total_blocks, drop_path_rate))
        channels = stem_channels
        self.num_stages = len(stages)
        for index, stage in enumerate(stages, start=1):
            blocks = []
            for b in range(stage.blocks):
                blocks.append(
                    ResidualBlock(
                        channels, stage.out_channels, stage.stride if b == 0 else 1,
                        width=stage.width, bottleneck=bottleneck, groups=groups, preact=preact,
                        stride_on=stride_on, shortcut=shortcut, residual=residual,
                        dropout=dropout, drop_path=next(drop_probs),
                        drop_path_mode=drop_path_mode,
                        activate_shortcut=preact and index == 1 and b == 0,
                    )
                )  # fmt: skip
                channels = stage.out_channels
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
        self.final_bn = nn.BatchNorm2d(channels) if preact else nn.Identity()
        self.final_relu = nn.ReLU(inplace=True) if preact else nn.Identity()
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)
        self.num_features = channels

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # He et al. 2015 ("Delving Deep into Rectifiers") initialization.
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            if not residual:
                raise UsageError(
                    f"{name}: zero_init_residual would zero every block of a plain network "
                    "(it has no shortcuts to carry the signal)"
                )
            for m in self.modules():
                if isinstance(m, ResidualBlock):
                    m.zero_init_last_bn()

    def forward(self, x: Tensor) -> Tensor:
        x = check_input(x, self.in_chans, self.name)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{index}")(x)
        x = self.final_relu(self.final_bn(x))
        return self.fc(self.flatten(self.avgpool(x)))


def imagenet_stages(
    block_counts: tuple[int, ...], bottleneck: bool, base_width: int = 64, width_factor: float = 1.0
) -> tuple[Stage, ...]:
    """Table 1's stages: 64, 128, 256, 512 filters (x4 outputs for bottlenecks), stride 2 after
    the first stage. `width_factor` scales the 3x3 width (Wide ResNet-50-2, ResNeXt)."""
    expansion = 4 if bottleneck else 1
    return tuple(
        Stage(
            blocks=n,
            out_channels=base_width * 2**i * expansion,
            width=int(base_width * 2**i * width_factor),
            stride=1 if i == 0 else 2,
        )
        for i, n in enumerate(block_counts)
    )


def blocks_per_stage(depth: int, layers_per_block: int, other_layers: int) -> int:
    """n, for a three-stage CIFAR network of `depth` = 3 * layers_per_block * n + other_layers
    weighted layers (6n+2 for basic blocks, 9n+2 for bottlenecks, 6n+4 for Wide ResNets, which
    count two projection shortcuts)."""
    per_stage = 3 * layers_per_block
    if depth <= other_layers or (depth - other_layers) % per_stage:
        raise UsageError(
            f"depth must be {per_stage}n+{other_layers} (n >= 1 blocks per stage), got {depth}"
        )
    return (depth - other_layers) // per_stage


def cifar_stages(
    blocks: int, out_channels: tuple[int, ...], widths: tuple[int, ...] | None = None
) -> tuple[Stage, ...]:
    """CIFAR stages at 32, 16 and 8 pixels: `blocks` blocks each, stride 2 after the first.
    `widths` are the branch widths (default: the output channels, as in basic blocks)."""
    widths = out_channels if widths is None else widths
    return tuple(
        Stage(blocks, c, w, 1 if i == 0 else 2)
        for i, (c, w) in enumerate(zip(out_channels, widths, strict=True))
    )


def imagenet_resnet(
    *,
    block_counts: tuple[int, ...],
    bottleneck: bool,
    stride_on: StrideOn = "first",
    groups: int = 1,
    width_factor: float = 1.0,
    preact: bool = False,
    num_classes: int = 1000,
    in_chans: int = 3,
    zero_init_residual: bool = False,
    drop_path_rate: float = 0.0,
    drop_path_mode: DropPathMode = "batch",
    name: str = "resnet",
) -> ResNet:
    """An ImageNet ResNet from Table 1's blocks per stage."""
    return ResNet(
        stages=imagenet_stages(block_counts, bottleneck, width_factor=width_factor),
        stem="imagenet", stem_channels=64, bottleneck=bottleneck, groups=groups, preact=preact,
        stride_on=stride_on, shortcut="B", zero_init_residual=zero_init_residual,
        drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode,
        num_classes=num_classes, in_chans=in_chans, name=name,
    )  # fmt: skip


def cifar_resnet(
    *,
    depth: int,
    residual: bool = True,
    shortcut: ShortcutKind = "A",
    num_classes: int = 10,
    in_chans: int = 3,
    zero_init_residual: bool = False,
    drop_path_rate: float = 0.0,
    drop_path_mode: DropPathMode = "batch",
    name: str = "resnet_cifar",
) -> ResNet:
    """Section 4.2's 6n+2-layer network: three stages of n basic blocks, 16/32/64 filters."""
    return ResNet(
        stages=cifar_stages(blocks_per_stage(depth, 2, 2), (16, 32, 64)),
        stem="cifar", stem_channels=16, bottleneck=False,
        shortcut=shortcut, residual=residual, zero_init_residual=zero_init_residual,
        drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode,
        num_classes=num_classes, in_chans=in_chans, name=name,
    )  # fmt: skip


# Table 1's blocks per stage, by depth.
IMAGENET_BLOCKS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
_PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
_MACS = {  # (depth, stride_on): conv + linear multiply-accumulates at 224x224
    (18, "first"): 1_814_073_344,
    (34, "first"): 3_663_761_408,
    (50, "first"): 3_857_973_248,
    (101, "first"): 7_570_194_432,
    (152, "first"): 11_282_415_616,
    (50, "3x3"): 4_089_184_256,
    (101, "3x3"): 7_801_405_440,
    (152, "3x3"): 11_513_626_624,
}
# torchvision IMAGENET1K_V1 (top-1, top-5) and the paper's Table 3 10-crop errors (top-1, top-5).
_TV_ACC = {18: (69.758, 89.078), 34: (73.314, 91.42), 50: (76.13, 92.862),
           101: (77.374, 93.546), 152: (78.312, 94.046)}  # fmt: skip
_PAPER_ERR = {34: (24.52, 7.46), 50: (22.85, 6.71), 101: (21.75, 6.05), 152: (21.43, 5.71)}


def _tv_results(depth: int) -> tuple[Result, ...]:
    top1, top5 = _TV_ACC[depth]
    src = f"torchvision resnet{depth} IMAGENET1K_V1 weights meta"
    return (Result("imagenet_top1_acc", top1, src), Result("imagenet_top5_acc", top5, src))


def _paper_results(depth: int) -> tuple[Result, ...]:
    if depth not in _PAPER_ERR:
        return ()
    top1, top5 = _PAPER_ERR[depth]
    variant = " B" if depth == 34 else ""
    src = f"He et al., arXiv 1512.03385, Table 3 (ResNet-{depth}{variant}, 10-crop)"
    return (
        Result("imagenet_val_top1_err_10crop", top1, src),
        Result("imagenet_val_top5_err_10crop", top5, src),
    )


_INIT_NOTE = (
    "He initialization uses fan_out (torchvision's choice); the paper's reference [13] allows "
    "fan_in or fan_out."
)

for _depth, _counts in IMAGENET_BLOCKS.items():
    _bottleneck = _depth >= 50
    _same = not _bottleneck  # basic-block networks are identical in the paper and torchvision
    register(
        ModelSpec(
            name=f"resnet{_depth}",
            family="resnet",
            paper=PAPER,
            builder=imagenet_resnet,
            arch={
                "block_counts": _counts,
                "bottleneck": _bottleneck,
                "stride_on": "first",
                "groups": 1,
                "width_factor": 1.0,
                "preact": False,
            },
            summary=f"ResNet-{_depth} (Table 1)"
            + (", bottleneck stride on the first 1x1 as in the paper" if _bottleneck else ""),
            input_size=(3, 224, 224),
            dataset="imagenet",
            num_classes=1000,
            num_params=_PARAMS[_depth],
            macs=_MACS[_depth, "first"],
            torchvision_name=f"resnet{_depth}" if _same else None,
            results=(_tv_results(_depth) if _same else ()) + _paper_results(_depth),
            deviations=(_INIT_NOTE,),
        )
    )
    if _bottleneck:
        register(
            ModelSpec(
                name=f"resnet{_depth}_tv",
                family="resnet",
                paper=PAPER,
                builder=imagenet_resnet,
                arch={
                    "block_counts": _counts,
                    "bottleneck": True,
                    "stride_on": "3x3",
                    "groups": 1,
                    "width_factor": 1.0,
                    "preact": False,
                },
                summary=f"torchvision's ResNet-{_depth} 'v1.5': bottleneck stride on the 3x3",
                input_size=(3, 224, 224),
                dataset="imagenet",
                num_classes=1000,
                num_params=_PARAMS[_depth],
                macs=_MACS[_depth, "3x3"],
                torchvision_name=f"resnet{_depth}",
                results=_tv_results(_depth),
                deviations=(
                    "torchvision's 'ResNet v1.5': a downsampling bottleneck strides in its 3x3 "
                    "convolution instead of the first 1x1 (same parameters, more MACs).",
                    _INIT_NOTE,
                ),
            )
        )

# Section 4.2: parameters 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M; Table 6 test error (%).
_CIFAR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
_CIFAR_PARAMS = {
    20: 269_722,
    32: 464_154,
    44: 658_586,
    56: 853_018,
    110: 1_727_962,
    1202: 19_421_274,
}
_CIFAR_MACS = {
    20: 40_551_040,
    32: 68_862_592,
    44: 97_174_144,
    56: 125_485_696,
    110: 252_887_680,
    1202: 2_829_238_912,
}
for _depth, _err in _CIFAR.items():
    register(
        ModelSpec(
            name=f"resnet{_depth}_cifar",
            family="resnet",
            paper=PAPER,
            builder=cifar_resnet,
            arch={"depth": _depth, "residual": True},
            summary=f"ResNet-{_depth} for CIFAR-10 (Sec. 4.2), option A shortcuts",
            input_size=(3, 32, 32),
            dataset="cifar10",
            num_classes=10,
            num_params=_CIFAR_PARAMS[_depth],
            macs=_CIFAR_MACS[_depth],
            results=(Result("cifar10_test_err", _err, "He et al., arXiv 1512.03385, Table 6"),),
            deviations=(
                "Option A pads the new channels with zeros after the existing ones; the paper "
                "does not say where the zero channels go.",
            ),
        )
    )
    if _depth <= 110:
        register(
            ModelSpec(
                name=f"plain{_depth}_cifar",
                family="resnet",
                paper=PAPER,
                builder=cifar_resnet,
                arch={"depth": _depth, "residual": False, "shortcut": "A"},
                summary=f"Plain-{_depth}: ResNet-{_depth}'s layers without shortcuts (Fig. 6)",
                input_size=(3, 32, 32),
                dataset="cifar10",
                num_classes=10,
                num_params=_CIFAR_PARAMS[_depth],
                macs=_CIFAR_MACS[_depth],
                results=(
                    Result(
                        "cifar10_test_err_gt",
                        60.0,
                        "He et al., arXiv 1512.03385, Fig. 6 caption (plain-110 > 60%)",
                    ),
                )
                if _depth == 110
                else (),
            )  # fmt: skip
        )
