"""Pre-activation ResNet: He, Zhang, Ren, Sun 2016, "Identity Mappings in Deep Residual
Networks", arXiv 1603.05027.

The residual unit of Fig. 1(b) / Fig. 4(e): BN-ReLU-conv inside the branch and nothing after the
addition, so the identity path from any unit to any later one is clean. Following the appendix,
the first unit activates its input (the output of the stand-alone stem convolution) before the
split into branch and shortcut, projection shortcuts take the activated input, and the last unit
is followed by an extra BN-ReLU before pooling.

CIFAR networks (Sec. 4 and 5): `preact_resnet110_cifar` is the 6n+2-layer network of basic
units (16/32/64 filters, zero-padding shortcuts as in the 2015 paper); `preact_resnet164_cifar`
and `preact_resnet1001_cifar` are 9n+2-layer bottleneck networks whose units output 64/128/256
channels around 16/32/64-channel 3x3 convolutions, with 1x1 projection shortcuts where the shape
changes. ImageNet forms `preact_resnet18` / `preact_resnet50` put the pre-activation unit into
Table 1 of the 2015 paper.

All of them are the shared `ResNet` class with `preact=True`. Deviations are listed per spec.
"""

from __future__ import annotations

from cnnzoo.layers.drop_path import DropPathMode
from cnnzoo.models.resnet import (
    IMAGENET_BLOCKS,
    ResNet,
    blocks_per_stage,
    cifar_stages,
    imagenet_resnet,
)
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="Identity Mappings in Deep Residual Networks",
    authors="He, Zhang, Ren, Sun",
    year=2016,
    arxiv="1603.05027",
)


def cifar_preact_resnet(
    *,
    depth: int,
    bottleneck: bool,
    num_classes: int = 10,
    in_chans: int = 3,
    drop_path_rate: float = 0.0,
    drop_path_mode: DropPathMode = "batch",
    name: str = "preact_resnet_cifar",
) -> ResNet:
    """A pre-activation CIFAR ResNet: 6n+2 layers of basic units or 9n+2 of bottlenecks."""
    n = blocks_per_stage(depth, 3 if bottleneck else 2, 2)
    widths = (16, 32, 64)
    expansion = 4 if bottleneck else 1
    return ResNet(
        stages=cifar_stages(n, tuple(w * expansion for w in widths), widths),
        stem="cifar", stem_channels=16, bottleneck=bottleneck, preact=True,
        # The 1k-layers code strides in the first 1x1 of a bottleneck and projects with a
        # 1x1 convolution; the basic network keeps the 2015 paper's option A.
        stride_on="first", shortcut="B" if bottleneck else "A",
        drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode,
        num_classes=num_classes, in_chans=in_chans, name=name,
    )  # fmt: skip


_FIRST_UNIT = (
    "Not a deviation: the activation the appendix puts after conv1, before the split, is the "
    "first block's own BN-ReLU (layer1.0.bn1), feeding its branch and its shortcut alike."
)

_COUNT_NOTE = {
    1001: (
        "Not a deviation: the paper's 10.2M counts convolution and FC weights; with BN's scale "
        "and shift the network has 10.33M parameters.",
    )
}

# depth: (bottleneck, parameters, MACs at 32x32, CIFAR-10 / CIFAR-100 test errors with sources)
_CIFAR = {
    110: (
        False,
        1_727_962,
        252_887_680,
        (
            Result(
                "cifar10_test_err",
                6.37,
                "He et al., arXiv 1603.05027 (pre-activation ResNet-110), as tabulated by a "
                "third-party reproduction README",
            ),
        ),
    ),
    164: (
        True,
        1_703_258,
        244_500_992,
        (
            Result(
                "cifar10_test_err",
                5.46,
                "He et al., arXiv 1603.05027, results table (pre-act ResNet-164)",
            ),
            Result("cifar100_test_err", 24.33, "He et al., arXiv 1603.05027; WRN README"),
        ),
    ),
    1001: (
        True,
        10_327_706,
        1_487_849_984,
        (
            Result(
                "cifar10_test_err",
                4.92,
                "He et al., arXiv 1603.05027 (mini-batch 128); KaimingHe/resnet-1k-layers README",
            ),
            Result(
                "cifar10_test_err_batch64",
                4.62,
                "He et al., arXiv 1603.05027, abstract (mini-batch 64)",
            ),
            Result("cifar100_test_err", 22.71, "He et al., arXiv 1603.05027; WRN README"),
        ),
    ),
}

for _depth, (_bottleneck, _params, _macs, _results) in _CIFAR.items():
    _kind = "bottleneck" if _bottleneck else "basic"
    register(
        ModelSpec(
            name=f"preact_resnet{_depth}_cifar",
            family="preact_resnet",
            paper=PAPER,
            builder=cifar_preact_resnet,
            arch={"depth": _depth, "bottleneck": _bottleneck},
            summary=f"Pre-activation ResNet-{_depth} for CIFAR-10, {_kind} units",
            input_size=(3, 32, 32),
            dataset="cifar10",
            num_classes=10,
            num_params=_params,
            macs=_macs,
            results=_results,
            deviations=(
                _FIRST_UNIT,
                *_COUNT_NOTE.get(_depth, ()),
                "Projection shortcuts are 1x1 convolutions without BN (the 1k-layers code); the "
                "paper only says 'projection'."
                if _bottleneck
                else "Option A zero-padding shortcuts (the 2015 paper's CIFAR choice); the paper "
                "does not restate the shortcut of the basic ResNet-110, and whether the zero "
                "padding carries the activated input is our choice (it does, like a projection).",
            ),
        )
    )

_IMAGENET = {18: (11_687_720, 1_814_073_344), 50: (25_549_352, 3_857_973_248)}
for _depth, (_params, _macs) in _IMAGENET.items():
    register(
        ModelSpec(
            name=f"preact_resnet{_depth}",
            family="preact_resnet",
            paper=PAPER,
            builder=imagenet_resnet,
            arch={
                "block_counts": IMAGENET_BLOCKS[_depth],
                "bottleneck": _depth >= 50,
                "stride_on": "first",
                "preact": True,
                "zero_init_residual": False,  # it zeroes a post-activation BN; there is none
            },
            summary=f"ResNet-{_depth} of Table 1 (arXiv 1512.03385) with pre-activation units",
            input_size=(3, 224, 224),
            dataset="imagenet",
            num_classes=1000,
            num_params=_params,
            macs=_macs,
            deviations=(
                "The paper trains ResNet-152/200 on ImageNet; 18 and 50 layers are Table 1's "
                "depths with its unit, for comparison with resnet18 / resnet50.",
                "The stem is conv-maxpool and the first unit's BN-ReLU follows the max pool; "
                "fb.resnet.torch's preresnet puts BN-ReLU before the max pool (same parameters).",
                "Bottleneck stride on the first 1x1 as in the 2015 paper (fb.resnet.torch strides "
                "in the 3x3; the paper does not say).",
            ),
        )
    )
