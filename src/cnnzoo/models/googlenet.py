"""GoogLeNet: Szegedy et al. 2014, "Going Deeper with Convolutions", arXiv 1409.4842, Table 1.

`googlenet` is the paper's network: the stem with its two local response normalizations, nine
inception modules with the channel counts of Table 1 (a named table below, 5x5 branches really
5x5), 7x7 average pooling, dropout 0.4 and a linear classifier, plus the two auxiliary
classifiers of Section 5 on inception 4a and 4d (5x5 average pool stride 3, 1x1 conv 128,
FC 1024, dropout 0.7, FC classes). `forward` returns the main logits only;
`forward_with_aux` also returns the auxiliary logits, whose losses training weights by 0.3.

`googlenet_tv` is torchvision's form: batch norm after every convolution, 3x3 instead of 5x5 in
the "5x5" branch, a 2x2 pool before 5a, dropout 0.2, and no auxiliary heads by default.
Module names follow torchvision in both, so weights interchange with `googlenet_tv`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnzoo.layers import ConvNormAct, Inception, InceptionChannels, LocalResponseNorm, check_input
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="Going Deeper with Convolutions",
    authors="Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke, Rabinovich",
    year=2014,
    arxiv="1409.4842",
)

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_TABLE: dict[str, InceptionChannels] = {
    "3a": InceptionChannels(64, 96, 128, 16, 32, 32),
    "3b": InceptionChannels(128, 128, 192, 32, 96, 64),
    "4a": InceptionChannels(192, 96, 208, 16, 48, 64),
    "4b": InceptionChannels(160, 112, 224, 24, 64, 64),
    "4c": InceptionChannels(128, 128, 256, 24, 64, 64),
    "4d": InceptionChannels(112, 144, 288, 32, 64, 64),
    "4e": InceptionChannels(256, 160, 320, 32, 128, 128),
    "5a": InceptionChannels(256, 160, 320, 32, 128, 128),
    "5b": InceptionChannels(384, 192, 384, 48, 128, 128),
}
AUX_TAPS = ("4a", "4d")  # Section 5: auxiliary classifiers on the outputs of 4a and 4d


class AuxClassifier(nn.Module):
    """Section 5's auxiliary classifier; names follow torchvision's `InceptionAux`."""

    def __init__(
        self, in_channels: int, num_classes: int, pool: nn.Module, norm: bool, bn_eps: float
    ) -> None:
        super().__init__()
        self.pool = pool
        self.conv = ConvNormAct(in_channels, 128, 1, norm=norm, bn_eps=bn_eps)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.flatten(self.conv(self.pool(x)))
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    """GoogLeNet in the paper's form or torchvision's (`torchvision_form=True`).

    Args:
        torchvision_form: batch norm, 3x3 "5x5" branches, torchvision's pools and dropout 0.2.
        aux_logits: build the two auxiliary classifiers (used by `forward_with_aux`).
        transform_input: torchvision's pretrained weights expect inputs normalized with the
            ImageNet mean/std re-scaled to mean 0.5, std 0.5; set this when using them.
        dropout: dropout before the classifier (0.4 in the paper, 0.2 in torchvision).
    """

    def __init__(
        self,
        *,
        torchvision_form: bool,
        aux_logits: bool | None = None,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float | None = None,
        transform_input: bool = False,
        name: str = "googlenet",
    ) -> None:
        super().__init__()
        self.name, self.in_chans = name, in_chans
        tv = torchvision_form
        aux_logits = not tv if aux_logits is None else aux_logits
        self.transform_input = transform_input
        bn_eps = 1e-3

        def unit(cin: int, cout: int, k: int, stride: int = 1) -> ConvNormAct:
            return ConvNormAct(cin, cout, k, stride, norm=tv, bn_eps=bn_eps)

        def module(cin: int, row: str) -> Inception:
            return Inception(
                cin, INCEPTION_TABLE[row], norm=tv, branch3_kernel=3 if tv else 5,
                bn_eps=bn_eps, pool_ceil_mode=tv,
            )  # fmt: skip

        self.conv1 = unit(in_chans, 64, 7, stride=2)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.lrn1 = nn.Identity() if tv else LocalResponseNorm()
        self.conv2 = unit(64, 64, 1)
        self.conv3 = unit(64, 192, 3)
        self.lrn2 = nn.Identity() if tv else LocalResponseNorm()
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception3a = module(192, "3a")
        self.inception3b = module(self.inception3a.out_channels, "3b")
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = module(self.inception3b.out_channels, "4a")
        self.inception4b = module(self.inception4a.out_channels, "4b")
        self.inception4c = module(self.inception4b.out_channels, "4c")
        self.inception4d = module(self.inception4c.out_channels, "4d")
        self.inception4e = module(self.inception4d.out_channels, "4e")
        self.maxpool4 = (
            nn.MaxPool2d(2, 2, ceil_mode=True) if tv else nn.MaxPool2d(3, 2, ceil_mode=True)
        )
        self.inception5a = module(self.inception4e.out_channels, "5a")
        self.inception5b = module(self.inception5a.out_channels, "5b")
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1)) if tv else nn.AvgPool2d(7, stride=1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout((0.2 if tv else 0.4) if dropout is None else dropout)
        self.fc = nn.Linear(self.inception5b.out_channels, num_classes)
        self.aux1: AuxClassifier | None = None
        self.aux2: AuxClassifier | None = None
        if aux_logits:
            for attr, tap in zip(("aux1", "aux2"), AUX_TAPS, strict=True):
                pool = nn.AdaptiveAvgPool2d((4, 4)) if tv else nn.AvgPool2d(5, stride=3)
                channels = getattr(self, f"inception{tap}").out_channels
                setattr(self, attr, AuxClassifier(channels, num_classes, pool, tv, bn_eps))
        self._init_weights(tv)

    def _init_weights(self, torchvision_form: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                if torchvision_form:  # torchvision: truncated normal, std 0.01
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                else:  # Glorot (Xavier), as in the reference Caffe model
                    nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _transform(self, x: Tensor) -> Tensor:
        # Maps ImageNet-normalized input to torchvision GoogLeNet's expected (x - 0.5) / 0.5.
        ch0 = x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        ch1 = x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        ch2 = x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        return torch.cat((ch0, ch1, ch2), 1)

    def _trunk(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Runs the network; returns the final features and the inputs of the two aux heads."""
        x = check_input(x, self.in_chans, self.name)
        if self.transform_input:
            x = self._transform(x)
        x = self.lrn1(self.maxpool1(self.conv1(x)))
        x = self.maxpool2(self.lrn2(self.conv3(self.conv2(x))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        tap1 = self.inception4a(x)
        tap2 = self.inception4d(self.inception4c(self.inception4b(tap1)))
        x = self.maxpool4(self.inception4e(tap2))
        x = self.inception5b(self.inception5a(x))
        return self.flatten(self.avgpool(x)), tap1, tap2

    def forward(self, x: Tensor) -> Tensor:
        features, _, _ = self._trunk(x)
        return self.fc(self.dropout(features))

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Main logits and the auxiliary classifiers' logits, for training.

        The paper adds the auxiliary losses with weight 0.3 (`ModelSpec.aux_loss_weight`) during
        training and discards the heads at inference. Returns an empty tuple of auxiliary logits
        when the model was built with `aux_logits=False`.
        """
        features, tap1, tap2 = self._trunk(x)
        logits = self.fc(self.dropout(features))
        if self.aux1 is None or self.aux2 is None:
            return logits, ()
        return logits, (self.aux1(tap1), self.aux2(tap2))


register(
    ModelSpec(
        name="googlenet",
        family="googlenet",
        paper=PAPER,
        builder=GoogLeNet,
        arch={"torchvision_form": False},
        summary="GoogLeNet (Table 1): LRN stem, nine inception modules, two auxiliary heads",
        input_size=(3, 224, 224),
        dataset="imagenet",
        num_classes=1000,
        num_params=13_378_280,
        macs=1_582_671_872,
        aux_loss_weight=0.3,
        results=(
            Result(
                "imagenet_val_top5_err_1model_1crop",
                10.07,
                "Szegedy et al., arXiv 1409.4842, Table 3 (1 model, 1 crop)",
            ),
            Result(
                "imagenet_val_top5_err_1model_144crop",
                7.89,
                "Szegedy et al., arXiv 1409.4842, Table 3 (1 model, 144 crops)",
            ),
        ),
        deviations=(
            "Local response normalization uses AlexNet's constants (k=2, n=5, alpha=1e-4, "
            "beta=0.75); the paper names none.",
            "Max pools use ceil_mode (as the reference Caffe model) to reach Table 1's sizes "
            "112 -> 56 -> 28 -> 14 -> 7.",
            "Initialization is Glorot uniform with zero biases; the paper does not state it.",
            "The default build includes the two auxiliary classifiers (aux_logits=True), so its "
            "parameter count includes them; aux_logits=False gives the inference network "
            "(6,998,552 parameters; the paper's Table 1 sums to about 6.8M).",
        ),
    )
)

register(
    ModelSpec(
        name="googlenet_tv",
        family="googlenet",
        paper=PAPER,
        builder=GoogLeNet,
        arch={"torchvision_form": True},
        summary="torchvision's GoogLeNet: batch norm, 3x3 in the '5x5' branch",
        input_size=(3, 224, 224),
        dataset="imagenet",
        num_classes=1000,
        num_params=6_624_904,
        macs=1_498_376_192,
        torchvision_name="googlenet",
        aux_loss_weight=0.3,
        results=(
            Result("imagenet_top1_acc", 69.778, "torchvision googlenet IMAGENET1K_V1 weights meta"),
            Result("imagenet_top5_acc", 89.53, "torchvision googlenet IMAGENET1K_V1 weights meta"),
        ),
        deviations=(
            "torchvision's variant: batch norm after every convolution, no LRN, 3x3 instead of "
            "5x5 convolutions in the '5x5' branch, a 2x2 max pool before 5a, dropout 0.2, "
            "adaptive pooling in the auxiliary heads.",
            "Auxiliary heads are off by default (aux_logits=False), as in torchvision's "
            "inference model; pass aux_logits=True to load a state dict that has them.",
        ),
    )
)
