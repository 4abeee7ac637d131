"""Shortcuts of residual blocks when the branch changes shape (He et al. 2015, Sec. 3.3)."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.errors import UsageError

ShortcutKind = Literal["A", "B"]


class ZeroPadShortcut(nn.Module):
    """Option A: identity with zero entries padded for the new channels; stride by subsampling.

    It has no parameters, which is why the paper's CIFAR ResNets and their plain twins have the
    same parameter counts.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("a zero-padding shortcut cannot reduce channels")
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


def projection_shortcut(
    in_channels: int, out_channels: int, stride: int, norm: bool = True
) -> nn.Sequential:
    """Option B: a strided 1x1 convolution (with batch norm in post-activation networks).

    A Sequential with the conv at index 0 and the norm at index 1, like torchvision's
    `downsample`, so state dicts interchange.
    """
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    return nn.Sequential(*layers)


def make_shortcut(
    kind: ShortcutKind | None, in_channels: int, out_channels: int, stride: int, norm: bool = True
) -> nn.Module | None:
    """The shortcut for a block: None for identity (shape unchanged) or no shortcut (`kind=None`
    is only meaningful to callers that build plain networks)."""
    if in_channels == out_channels and stride == 1:
        return None
    if kind == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    if kind == "B":
        return projection_shortcut(in_channels, out_channels, stride, norm)
    raise UsageError(f"shortcut must be 'A' (zero padding) or 'B' (projection), got {kind!r}")
