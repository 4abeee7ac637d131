"""Inception modules (Szegedy et al. 2014, arXiv 1409.4842, Fig. 2).

The naive module runs 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool side by side on the full
input; its cost grows with the input depth, and the pool branch keeps all input channels so the
depth can only grow. The dimension-reduced module puts 1x1 "bottleneck" convolutions before the
3x3 and 5x5 convolutions and after the pool, which is what makes GoogLeNet affordable.
Branch names (`branch1` .. `branch4`) follow torchvision so state dicts interchange.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from cnnzoo.layers.conv import ConvNormAct
from cnnzoo.layers.merge import Concat


@dataclass(frozen=True)
class InceptionChannels:
    """One row of GoogLeNet's Table 1 (output channels of each branch)."""

    conv1x1: int
    reduce3x3: int
    conv3x3: int
    reduce5x5: int
    conv5x5: int
    pool_proj: int

    @property
    def out_channels(self) -> int:
        return self.conv1x1 + self.conv3x3 + self.conv5x5 + self.pool_proj


class NaiveInception(nn.Module):
    """Fig. 2(a): 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool, concatenated."""

    def __init__(self, in_channels: int, conv1x1: int, conv3x3: int, conv5x5: int) -> None:
        super().__init__()
        self.branch1 = ConvNormAct(in_channels, conv1x1, 1, norm=False)
        self.branch2 = ConvNormAct(in_channels, conv3x3, 3, norm=False)
        self.branch3 = ConvNormAct(in_channels, conv5x5, 5, norm=False)
        self.branch4 = nn.MaxPool2d(3, stride=1, padding=1)
        self.concat = Concat()
        self.out_channels = conv1x1 + conv3x3 + conv5x5 + in_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.concat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)])


class Inception(nn.Module):
    """Fig. 2(b): the module with 1x1 dimension reductions.

    Args:
        in_channels: input depth.
        channels: the table row.
        norm: batch norm after each convolution (torchvision's variant; the paper has none).
        branch3_kernel: kernel of the "5x5" branch; torchvision's GoogLeNet uses 3.
        bn_eps: batch-norm epsilon when `norm` is set.
        pool_ceil_mode: torchvision's GoogLeNet pools with ceil_mode=True here.
    """

    def __init__(
        self,
        in_channels: int,
        channels: InceptionChannels,
        norm: bool = False,
        branch3_kernel: int = 5,
        bn_eps: float = 1e-5,
        pool_ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        c = channels

        def unit(cin: int, cout: int, k: int) -> ConvNormAct:
            return ConvNormAct(cin, cout, k, norm=norm, bn_eps=bn_eps)

        self.branch1 = unit(in_channels, c.conv1x1, 1)
        self.branch2 = nn.Sequential(
            unit(in_channels, c.reduce3x3, 1), unit(c.reduce3x3, c.conv3x3, 3)
        )
        self.branch3 = nn.Sequential(
            unit(in_channels, c.reduce5x5, 1), unit(c.reduce5x5, c.conv5x5, branch3_kernel)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=pool_ceil_mode),
            unit(in_channels, c.pool_proj, 1),
        )
        self.concat = Concat()
        self.out_channels = c.out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.concat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)])
