"""Stochastic Depth: Huang, Sun, Liu, Sedra, Weinberger 2016, "Deep Networks with Stochastic
Depth", arXiv 1603.09382.

The 2015 CIFAR ResNets (6n+2 layers, option A shortcuts) trained with each residual branch
dropped at random: block l of L survives with probability p_l = 1 - (l / L)(1 - p_L), the
linear decay rule of Sec. 3, with p_L = 0.5 (the paper's choice for CIFAR). A drop removes the
branch for the whole mini-batch and at test time the branch is scaled by p_l; this is drop-path
mode "batch" (`layers.drop_path`), the default. `drop_path_mode="sample"` gives timm's per-sample
variant instead.

Every residual network in cnnzoo takes `drop_path_rate` (= 1 - p_L) and `drop_path_mode`; the
specs here fix the rate at the paper's 0.5 so their names mean the paper's networks.
"""

from __future__ import annotations

from cnnzoo.models.resnet import cifar_resnet
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="Deep Networks with Stochastic Depth",
    authors="Huang, Sun, Liu, Sedra, Weinberger",
    year=2016,
    arxiv="1603.09382",
)

P_L = 0.5  # survival probability of the last block (Sec. 4, all CIFAR experiments)

# depth: parameters, MACs at 32x32 (those of resnet{depth}_cifar), published results.
_CIFAR = {
    110: (
        1_727_962,
        252_887_680,
        (
            Result(
                "cifar10_test_err",
                5.25,
                "Huang et al., arXiv 1603.09382, Table 1 (C10+, linear decay, p_L = 0.5)",
            ),
            Result(
                "cifar100_test_err",
                24.58,
                "Huang et al., arXiv 1603.09382 (C100+); PapersWithCode (75.42% accuracy)",
            ),
        ),
    ),
    1202: (
        19_421_274,
        2_829_238_912,
        (Result("cifar10_test_err", 4.91, "Huang et al., arXiv 1603.09382, abstract (C10+)"),),
    ),
}

for _depth, (_params, _macs, _results) in _CIFAR.items():
    register(
        ModelSpec(
            name=f"resnet{_depth}_sd_cifar",
            family="stochastic_depth",
            paper=PAPER,
            builder=cifar_resnet,
            arch={"depth": _depth, "residual": True, "drop_path_rate": 1.0 - P_L},
            summary=f"ResNet-{_depth} for CIFAR-10 with stochastic depth, p_L = {P_L}",
            input_size=(3, 32, 32),
            dataset="cifar10",
            num_classes=10,
            num_params=_params,
            macs=_macs,
            results=_results,
            deviations=(
                "Option A pads the new channels with zeros after the existing ones (the "
                "paper's code subsamples and zero-pads too; the channel order is our choice).",
                "A dropped block still computes its branch and multiplies it by 0, so training "
                "is not faster as in the paper; the result is the same.",
            ),
        )
    )
