"""ResNeXt: Xie, Girshick, Dollar, Tu, He 2017, "Aggregated Residual Transformations for Deep
Neural Networks", arXiv 1611.05431.

A ResNeXt unit is a bottleneck whose 3x3 convolution is split into C groups of d channels
(Fig. 3(c), the form the paper implements); "C x d" names the first stage's template and the
group width doubles with every stage, like ResNet's widths. Cardinality is the `groups` argument
of the shared `ResidualBlock`.

ImageNet networks (Table 1): ResNet-50/101's stages with C x d 3x3 convolutions, projection
shortcuts where the shape changes and the stride in the 3x3 (the paper's code follows
fb.resnet.torch); `resnext50_32x4d`, `resnext101_32x8d` and `resnext101_64x4d` are equal to
torchvision's.

CIFAR networks (Sec. 5.3, Table 7): ResNeXt-29 is a 3x3 stem of 64 filters, three stages of three
bottleneck units with outputs of 256, 512 and 1024 channels and d = 64 in the first stage, then
average pooling and one FC layer; `resnext29_8x64d_cifar` and `resnext29_16x64d_cifar`.

Deviations: the paper's text does not fix the shortcut or where the stride sits; both follow the
paper's code (projection shortcuts with BN, stride in the 3x3), as torchvision does.
"""

from __future__ import annotations

from cnnzoo.layers.drop_path import DropPathMode
from cnnzoo.models.resnet import IMAGENET_BLOCKS, ResNet, cifar_stages, imagenet_resnet
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="Aggregated Residual Transformations for Deep Neural Networks",
    authors="Xie, Girshick, Dollar, Tu, He",
    year=2017,
    arxiv="1611.05431",
)


def template_width_factor(cardinality: int, group_width: int) -> float:
    """How much wider a C x d first-stage 3x3 is than ResNet's 64 channels (C * d / 64)."""
    return cardinality * group_width / 64


def cifar_resnext(
    *,
    cardinality: int,
    group_width: int,
    num_classes: int = 10,
    in_chans: int = 3,
    zero_init_residual: bool = False,
    drop_path_rate: float = 0.0,
    drop_path_mode: DropPathMode = "batch",
    name: str = "resnext29_cifar",
) -> ResNet:
    """ResNeXt-29 (C x d) for CIFAR: three stages of three bottlenecks (Sec. 5.3).

    Args:
        cardinality: C, the number of groups of every 3x3 convolution.
        group_width: d, the channels per group in the first stage (doubling per stage).
    """
    widths = tuple(cardinality * group_width * 2**i for i in range(3))
    return ResNet(
        stages=cifar_stages(3, (256, 512, 1024), widths), stem="cifar", stem_channels=64,
        bottleneck=True, groups=cardinality, stride_on="3x3", shortcut="B",
        zero_init_residual=zero_init_residual,
        drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode,
        num_classes=num_classes, in_chans=in_chans, name=name,
    )  # fmt: skip


def _tv_results(name: str, top1: float, top5: float) -> tuple[Result, ...]:
    src = f"torchvision {name} IMAGENET1K_V1 weights meta"
    return (Result("imagenet_top1_acc", top1, src), Result("imagenet_top5_acc", top5, src))


# (depth, C, d): parameters, MACs at 224x224, published results.
_IMAGENET = {
    (50, 32, 4): (
        25_028_904,
        4_230_479_872,
        _tv_results("resnext50_32x4d", 77.618, 93.698)
        + (Result("imagenet_val_top1_err", 22.2, "Xie et al., arXiv 1611.05431, Table 3"),),
    ),
    (101, 32, 8): (
        88_791_336,
        16_414_015_488,
        _tv_results("resnext101_32x8d", 79.312, 94.526),
    ),
    (101, 64, 4): (
        83_455_272,
        15_460_270_080,
        (
            Result(
                "imagenet_val_top1_err",
                20.4,
                "Xie et al., arXiv 1611.05431, Table 4 (224 crop; top-5 5.3)",
            ),
        ),
    ),
}
for (_depth, _c, _d), (_params, _macs, _results) in _IMAGENET.items():
    _name = f"resnext{_depth}_{_c}x{_d}d"
    register(
        ModelSpec(
            name=_name,
            family="resnext",
            paper=PAPER,
            builder=imagenet_resnet,
            arch={
                "block_counts": IMAGENET_BLOCKS[_depth],
                "bottleneck": True,
                "stride_on": "3x3",
                "groups": _c,
                "width_factor": template_width_factor(_c, _d),
                "preact": False,
            },
            summary=f"ResNeXt-{_depth} ({_c}x{_d}d) of Table 1",
            input_size=(3, 224, 224),
            dataset="imagenet",
            num_classes=1000,
            num_params=_params,
            macs=_macs,
            torchvision_name=_name,
            results=_results,
        )
    )

_COUNT_NOTE = {
    16: (
        "Not a deviation: Table 7's 68.1M counts convolution and FC weights; with BN's scale "
        "and shift the network has 68.16M parameters.",
    )
}

# C: parameters, MACs at 32x32, Table 7 (CIFAR-10, CIFAR-100 test error).
_CIFAR = {
    8: (34_426_698, 5_387_266_048, (3.65, 17.77)),
    16: (68_155_210, 10_688_866_304, (3.58, 17.31)),
}
for _c, (_params, _macs, (_c10, _c100)) in _CIFAR.items():
    _src = "Xie et al., arXiv 1611.05431, Table 7"
    register(
        ModelSpec(
            name=f"resnext29_{_c}x64d_cifar",
            family="resnext",
            paper=PAPER,
            builder=cifar_resnext,
            arch={"cardinality": _c, "group_width": 64},
            summary=f"ResNeXt-29 ({_c}x64d) for CIFAR (Sec. 5.3)",
            input_size=(3, 32, 32),
            dataset="cifar10",
            num_classes=10,
            num_params=_params,
            macs=_macs,
            results=(
                Result("cifar10_test_err", _c10, _src + " (mean of 10 runs)" if _c == 8 else _src),
                Result("cifar100_test_err", _c100, _src),
            ),
            deviations=(
                "Projection shortcuts (1x1 conv + BN) where the shape changes and the stride in "
                "the 3x3, following the paper's code; the paper's text does not say.",
                *_COUNT_NOTE.get(_c, ()),
            ),
        )
    )
