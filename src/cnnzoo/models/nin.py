"""Network in Network: Lin, Chen, Yan 2013, "Network In Network", arXiv 1312.4400.

An mlpconv layer slides a small multilayer perceptron over the image: a spatial convolution
followed by 1x1 convolutions ("cascaded cross channel parametric pooling"), each with a ReLU.
The CIFAR-10 network (Sec. 4.2) stacks three mlpconv layers with max pooling and dropout 0.5
between them; the last one outputs one map per class and global average pooling turns the maps
into class scores, with no fully connected layer (Sec. 3.2).

The paper gives no layer sizes; `nin_cifar` takes them from the authors' public CIFAR-10 model
(cuda-convnet config mavenlin/cuda-convnet NIN, mirrored as the Caffe Model Zoo "NIN CIFAR10"
gist): 192-160-96 with a 5x5 convolution, 192-192-192 with 5x5, 192-192-10 with 3x3; 3x3
stride-2 pooling (Caffe rounds the output size up, so 32 -> 16 -> 8).

Deviations: see the spec's `deviations`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from cnnzoo.layers import ConvNormAct, check_input
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(title="Network In Network", authors="Lin, Chen, Yan", year=2013, arxiv="1312.4400")


@dataclass(frozen=True)
class MlpConv:
    """One mlpconv layer: a spatial convolution, then two 1x1 convolutions."""

    kernel: int
    conv: int  # filters of the spatial convolution
    mlp1: int  # filters of the first 1x1 convolution
    mlp2: int  # filters of the second; the last layer's is replaced by the class count


# The authors' CIFAR-10 model (conv1/cccp1/cccp2, conv2/cccp3/cccp4, conv3/cccp5/cccp6).
CIFAR_LAYERS = (MlpConv(5, 192, 160, 96), MlpConv(5, 192, 192, 192), MlpConv(3, 192, 192, 10))


class MlpConvBlock(nn.Module):
    """A spatial conv and two 1x1 convs, each followed by a ReLU (bias, no batch norm)."""

    def __init__(self, in_channels: int, layer: MlpConv, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvNormAct(in_channels, layer.conv, layer.kernel, norm=False)
        self.mlp1 = ConvNormAct(layer.conv, layer.mlp1, 1, norm=False)
        self.mlp2 = ConvNormAct(layer.mlp1, out_channels, 1, norm=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp2(self.mlp1(self.conv(x)))


class NiN(nn.Module):
    """Network in Network over a table of mlpconv layers.

    Args:
        layers: the mlpconv table; the last layer's `mlp2` becomes `num_classes`.
        dropout: dropout after each pooling (0.5 in the paper, Sec. 4.1).
    """

    def __init__(
        self,
        *,
        layers: tuple[MlpConv, ...],
        dropout: float = 0.5,
        num_classes: int = 10,
        in_chans: int = 3,
        name: str = "nin",
    ) -> None:
        super().__init__()
        self.name, self.in_chans = name, in_chans
        stages: list[nn.Module] = []
        channels = in_chans
        for i, layer in enumerate(layers):
            last = i == len(layers) - 1
            out = num_classes if last else layer.mlp2
            stages.append(MlpConvBlock(channels, layer, out))
            if not last:
                stages += [nn.MaxPool2d(3, stride=2, ceil_mode=True), nn.Dropout(dropout)]
            channels = out
        self.features = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # global average pooling: one score per map
        self.flatten = nn.Flatten()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = check_input(x, self.in_chans, self.name)
        return self.flatten(self.avgpool(self.features(x)))


_SRC = "Lin, Chen, Yan, arXiv 1312.4400"
register(
    ModelSpec(
        name="nin_cifar",
        family="nin",
        paper=PAPER,
        builder=NiN,
        arch={"layers": CIFAR_LAYERS},
        summary="NiN for CIFAR-10: three mlpconv layers (192-160-96, 192x3, 192-192-10), GAP",
        input_size=(3, 32, 32),
        dataset="cifar10",
        num_classes=10,
        num_params=966_986,
        macs=222_486_528,
        results=(
            Result("cifar10_test_err", 10.41, _SRC + ", Table 2 (NIN + Dropout)"),
            Result("cifar10_aug_test_err", 8.81, _SRC + ", Table 2 (NIN + Dropout + Augmentation)"),
            Result("cifar100_test_err", 35.68, _SRC + ", Table 3 (100-class output layer)"),
        ),
        deviations=(
            "Layer sizes are the authors' public CIFAR-10 model (cuda-convnet config and Caffe "
            "Model Zoo gist 'NIN CIFAR10'); the paper states none.",
            "Both poolings between mlpconv layers are 3x3 stride-2 max pooling, as Sec. 4.1 "
            "says; the Caffe Model Zoo version of the public model averages in the second one.",
            "The last mlpconv layer goes straight into global average pooling (the public "
            "model); Sec. 4.1 says a max pooling follows every mlpconv layer.",
            "Pooling rounds its output size up (ceil_mode, Caffe's rule), so 32 -> 16 -> 8.",
            "The class-score 1x1 convolution keeps its ReLU before global average pooling, as in "
            "the public model, so the scores are non-negative.",
            "He (fan_out) initialization; the public model uses small Gaussians.",
        ),
    )
)
