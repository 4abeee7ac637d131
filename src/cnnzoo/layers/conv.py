"""Convolution followed by optional batch norm and ReLU: the unit most CNNs are built from."""

from __future__ import annotations

from torch import Tensor, nn


class ConvNormAct(nn.Module):
    """conv -> (batch norm) -> (ReLU).

    Attribute names (`conv`, `bn`) match torchvision's `BasicConv2d`, so state dicts interchange.

    Args:
        padding: defaults to "same"-style ``kernel_size // 2``.
        norm: add batch norm (the conv then has no bias, which BN's shift would make redundant).
        act: add a ReLU.
        bn_eps: batch-norm epsilon (torchvision's GoogLeNet uses 1e-3).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        norm: bool = True,
        act: bool = True,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=not norm
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps) if norm else nn.Identity()
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))
