"""VGG: Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", arXiv 1409.1556, Table 1.

Configurations A, B, D and E (VGG-11, -13, -16, -19) are one table: numbers are 3x3 convolutions
(stride 1, pad 1) with that many filters, "M" is a 2x2 max pool with stride 2. Stacking 3x3
convolutions gives a large receptive field (three of them see 7x7) with fewer parameters and more
non-linearities than one large filter. The `_bn` variants add batch norm after every convolution
(torchvision's; not in the paper). Module layout equals torchvision's, so weights interchange.
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnzoo.layers import check_input
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="Very Deep Convolutional Networks for Large-Scale Image Recognition",
    authors="Simonyan, Zisserman",
    year=2014,
    arxiv="1409.1556",
)

# Table 1 of the paper; "M" is max pooling.
CONFIGS: dict[str, tuple[int | str, ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (
        64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
        512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
    ),
}  # fmt: skip


class VGG(nn.Module):
    """A VGG network from a configuration of Table 1.

    Args:
        config: "A", "B", "D" or "E".
        batch_norm: batch norm after each convolution.
        dropout: dropout of the first two fully connected layers (0.5 in the paper).
    """

    def __init__(
        self,
        *,
        config: str,
        batch_norm: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.5,
        name: str = "vgg",
    ) -> None:
        super().__init__()
        self.name, self.in_chans = name, in_chans
        layers: list[nn.Module] = []
        channels = in_chans
        for item in CONFIGS[config]:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            layers.append(nn.Conv2d(channels, int(item), kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(item)))
            layers.append(nn.ReLU(inplace=True))
            channels = int(item)
        self.features = nn.Sequential(*layers)
        # Identity at 224x224; lets other input sizes reach the 7x7x512 the classifier expects.
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = check_input(x, self.in_chans, self.name)
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


_DEPTHS = {"A": 11, "B": 13, "D": 16, "E": 19}
_PARAMS = {  # torchvision's documented counts (and the paper's 133/133/138/144 M)
    ("A", False): 132_863_336,
    ("B", False): 133_047_848,
    ("D", False): 138_357_544,
    ("E", False): 143_667_240,
    ("A", True): 132_868_840,
    ("B", True): 133_053_736,
    ("D", True): 138_365_992,
    ("E", True): 143_678_248,
}
_MACS = {  # conv + linear multiply-accumulates at 224x224 (torchvision: 7.61/11.31/15.47/19.63 G)
    "A": 7_609_090_048,
    "B": 11_308_466_176,
    "D": 15_470_264_320,
    "E": 19_632_062_464,
}
# torchvision weights meta (top-1, top-5) and the paper's Table 3 single-scale errors.
_TV_ACC = {
    "vgg11": (69.02, 88.628), "vgg13": (69.928, 89.246), "vgg16": (71.592, 90.382),
    "vgg19": (72.376, 90.876), "vgg11_bn": (70.37, 89.81), "vgg13_bn": (71.586, 90.374),
    "vgg16_bn": (73.36, 91.516), "vgg19_bn": (74.218, 91.842),
}  # fmt: skip
_PAPER_ERR = {"A": (29.6, 10.4), "B": (28.7, 9.9), "D": (27.0, 8.8), "E": (27.3, 9.0)}

for _config, _depth in _DEPTHS.items():
    for _bn in (False, True):
        _name = f"vgg{_depth}" + ("_bn" if _bn else "")
        _top1, _top5 = _TV_ACC[_name]
        _results = (
            Result("imagenet_top1_acc", _top1, f"torchvision {_name} IMAGENET1K_V1 weights meta"),
            Result("imagenet_top5_acc", _top5, f"torchvision {_name} IMAGENET1K_V1 weights meta"),
        )
        _deviations = [
            "Adaptive 7x7 average pooling before the classifier (torchvision's; identity at "
            "224x224).",
            "Initialization is torchvision's (Kaiming normal convs, N(0, 0.01) linear layers); "
            "the paper initialized deep configurations from configuration A, later Glorot.",
        ]
        if _bn:
            _deviations.insert(0, "Batch norm after every convolution: not in the paper.")
        else:
            _err1, _err5 = _PAPER_ERR[_config]
            src = f"Simonyan & Zisserman, arXiv 1409.1556, Table 3, config {_config}, 256/256"
            _results += (
                Result("imagenet_val_top1_err_single_scale", _err1, src),
                Result("imagenet_val_top5_err_single_scale", _err5, src),
            )
        register(
            ModelSpec(
                name=_name,
                family="vgg",
                paper=PAPER,
                builder=VGG,
                arch={"config": _config, "batch_norm": _bn},
                summary=f"VGG-{_depth}, configuration {_config}"
                + (" with batch norm" if _bn else ""),
                input_size=(3, 224, 224),
                dataset="imagenet",
                num_classes=1000,
                num_params=_PARAMS[_config, _bn],
                macs=_MACS[_config],
                torchvision_name=_name,
                results=_results,
                deviations=tuple(_deviations),
            )
        )
