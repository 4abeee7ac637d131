"""Wide ResNet: Zagoruyko & Komodakis 2016, "Wide Residual Networks", arXiv 1605.07146.

CIFAR networks WRN-d-k (Table 1): a 3x3 stem of 16 filters, three stages of n = (d - 4) / 6
pre-activation basic units with 16k, 32k and 64k filters, 1x1 projection shortcuts (no BN) where
the shape changes, a final BN-ReLU, 8x8 average pooling and one FC layer. Dropout between the two
convolutions of a unit, after the ReLU (Sec. 2.4; 0.3 on CIFAR), is the override `dropout`,
default 0.

ImageNet networks `wide_resnet50_2` / `wide_resnet101_2` are the paper's bottleneck ResNets with
twice as wide 3x3 convolutions (Sec. 3, "WRN-50-2-bottleneck"), equal to torchvision's.

Deviations: see each spec. The parameter counts the paper reports (2.7M, 11.0M, 36.5M, 8.9M) are
met both with and without BN's scale and shift.
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
    title="Wide Residual Networks",
    authors="Zagoruyko, Komodakis",
    year=2016,
    arxiv="1605.07146",
)


def cifar_wide_resnet(
    *,
    depth: int,
    widen_factor: int,
    dropout: float = 0.0,
    num_classes: int = 10,
    in_chans: int = 3,
    drop_path_rate: float = 0.0,
    drop_path_mode: DropPathMode = "batch",
    name: str = "wrn_cifar",
) -> ResNet:
    """WRN-`depth`-`widen_factor` (Table 1).

    Args:
        depth: 6n + 4 for n units per stage.
        widen_factor: k, the multiplier of the 16/32/64 filters of the 2015 CIFAR ResNet.
        dropout: dropout between the two convolutions of each unit (the paper's 0.3).
    """
    widths = tuple(c * widen_factor for c in (16, 32, 64))
    return ResNet(
        stages=cifar_stages(blocks_per_stage(depth, 2, 4), widths), stem="cifar", stem_channels=16,
        bottleneck=False, preact=True, shortcut="B", dropout=dropout,
        drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode,
        num_classes=num_classes, in_chans=in_chans, name=name,
    )  # fmt: skip


def _wrn_src(note: str = "") -> str:
    return "Zagoruyko & Komodakis, arXiv 1605.07146" + (f", {note}" if note else "")


# (depth, k): parameters, MACs at 32x32, published results.
_CIFAR = {
    (16, 4): (
        2_748_890,
        392_612_352,
        (Result("cifar10_test_err", 5.02, _wrn_src("via a third-party reproduction table")),),
    ),
    (16, 8): (
        10_961_370,
        1_548_145_664,
        (
            Result("cifar10_test_err", 4.27, _wrn_src("results table (11.0M)")),
            Result(
                "cifar100_test_err",
                20.43,
                _wrn_src("results table; confidence: memory, not confirmed"),
            ),
            Result("svhn_test_err_with_dropout", 1.54, _wrn_src("WRN README, dropout")),
        ),
    ),
    (28, 10): (
        36_479_194,
        5_243_328_768,
        (
            Result("cifar10_test_err", 4.0, _wrn_src("WRN README (median of 5)")),
            Result("cifar100_test_err", 19.25, _wrn_src("WRN README")),
            Result("cifar10_test_err_with_dropout", 3.89, _wrn_src("WRN README, dropout 0.3")),
            Result("cifar100_test_err_with_dropout", 18.85, _wrn_src("WRN README, dropout 0.3")),
        ),
    ),
    (40, 4): (
        8_949_210,
        1_298_582_016,
        (
            Result("cifar10_test_err", 4.53, _wrn_src("results table (8.9M)")),
            Result(
                "cifar100_test_err",
                21.18,
                _wrn_src("results table; confidence: memory, not confirmed"),
            ),
        ),
    ),
}

for (_depth, _k), (_params, _macs, _results) in _CIFAR.items():
    register(
        ModelSpec(
            name=f"wrn{_depth}_{_k}_cifar",
            family="wide_resnet",
            paper=PAPER,
            builder=cifar_wide_resnet,
            arch={"depth": _depth, "widen_factor": _k},
            summary=f"WRN-{_depth}-{_k} for CIFAR-10 (Table 1), pre-activation basic units",
            input_size=(3, 32, 32),
            dataset="cifar10",
            num_classes=10,
            num_params=_params,
            macs=_macs,
            results=_results,
            deviations=(
                "Dropout defaults to 0 (the paper's plain WRN); the paper's dropout runs are "
                "create_model(..., dropout=0.3).",
                "The first unit's BN-ReLU feeds both its branch and its projection shortcut, as "
                "in the authors' code.",
            ),
        )
    )

# depth: parameters, MACs at 224x224, torchvision IMAGENET1K_V1 accuracies.
_IMAGENET = {
    50: (68_883_240, 11_398_021_120, (78.468, 94.086)),
    101: (126_886_696, 22_753_050_624, (78.848, 94.284)),
}
for _depth, (_params, _macs, (_top1, _top5)) in _IMAGENET.items():
    _tv = f"torchvision wide_resnet{_depth}_2 IMAGENET1K_V1 weights meta"
    _paper_result = (
        (Result("imagenet_val_top1_err_single_crop", 21.9, _wrn_src("WRN README (top-5 5.79)")),)
        if _depth == 50
        else ()
    )
    register(
        ModelSpec(
            name=f"wide_resnet{_depth}_2",
            family="wide_resnet",
            paper=PAPER,
            builder=imagenet_resnet,
            arch={
                "block_counts": IMAGENET_BLOCKS[_depth],
                "bottleneck": True,
                "stride_on": "3x3",
                "width_factor": 2.0,
                "preact": False,
                "groups": 1,
            },
            summary=f"WRN-{_depth}-2-bottleneck: ResNet-{_depth} with 2x wider 3x3 convolutions",
            input_size=(3, 224, 224),
            dataset="imagenet",
            num_classes=1000,
            num_params=_params,
            macs=_macs,
            torchvision_name=f"wide_resnet{_depth}_2",
            results=(
                Result("imagenet_top1_acc", _top1, _tv),
                Result("imagenet_top5_acc", _top5, _tv),
                *_paper_result,
            ),
            deviations=(
                "Post-activation bottlenecks with the stride in the 3x3 (torchvision, and the "
                "authors' ImageNet model); the paper's CIFAR networks are pre-activation.",
            ),
        )
    )
