"""The one residual block of cnnzoo.

Parameterized by depth of the branch (basic: two 3x3; bottleneck: 1x1-3x3-1x1), width,
cardinality (grouped 3x3, ResNeXt), activation order (post: He et al. 2015; pre: He et al. 2016
"Identity Mappings"), dropout between convolutions (Wide ResNet) and drop-path (Stochastic Depth),
it serves ResNet, pre-activation ResNet, Wide ResNet, ResNeXt and Stochastic Depth networks.
A block with `residual=False` has no shortcut at all: the plain networks of the degradation
experiment.

Attribute names follow torchvision (`conv1`, `bn1`, ..., `downsample`) so state dicts interchange.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from cnnzoo.errors import UsageError
from cnnzoo.layers.drop_path import DropPath, DropPathMode
from cnnzoo.layers.merge import Add
from cnnzoo.layers.shortcut import ShortcutKind, make_shortcut

StrideOn = Literal["first", "3x3"]


class ResidualBlock(nn.Module):
    """A residual block: out = merge(branch(x), shortcut(x)).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: spatial stride of the block.
        width: channels inside the branch (the 3x3 convolutions).
        bottleneck: 1x1 -> 3x3 -> 1x1 branch instead of 3x3 -> 3x3.
        groups: cardinality of the 3x3 convolution (ResNeXt).
        preact: BN-ReLU-conv order with a clean identity path (He et al. 2016).
        stride_on: for bottlenecks, "first" puts the stride on the first 1x1 (the 2015 paper),
            "3x3" on the 3x3 (torchvision's "ResNet v1.5").
        shortcut: "A" zero padding or "B" projection when the shape changes.
        residual: False removes the shortcut (plain network).
        dropout: dropout probability right before the last convolution, after its activation
            (Wide ResNet, Sec. 2: "between convolutions and after ReLU").
        drop_path: probability of dropping the branch in training (Stochastic Depth).
        drop_path_mode: "batch" (the paper's) or "sample" (timm's); see `layers.drop_path`.
        activate_shortcut: in a pre-activation block with an identity shortcut, add the
            activated input (BN-ReLU of x) instead of x. He et al. 2016 (appendix) activate the
            first unit's input, which comes straight from the stem convolution, before it splits
            into branch and shortcut. Projection shortcuts of pre-activation blocks always take
            the activated input.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        width: int | None = None,
        bottleneck: bool = False,
        groups: int = 1,
        preact: bool = False,
        stride_on: StrideOn = "first",
        shortcut: ShortcutKind = "B",
        residual: bool = True,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        drop_path_mode: DropPathMode = "batch",
        activate_shortcut: bool = False,
    ) -> None:
        super().__init__()
        if activate_shortcut and not preact:
            raise UsageError("activate_shortcut applies to pre-activation blocks only")
        width = out_channels if width is None else width
        if bottleneck:
            first_stride = stride if stride_on == "first" else 1
            convs = [
                (in_channels, width, 1, first_stride, 1),
                (width, width, 3, stride // first_stride, groups),
                (width, out_channels, 1, 1, 1),
            ]
        else:
            convs = [(in_channels, width, 3, stride, groups), (width, out_channels, 3, 1, 1)]
        self.num_convs = len(convs)
        self.preact = preact
        self.residual = residual
        for i, (cin, cout, k, s, g) in enumerate(convs, start=1):
            # In a pre-activation block, BN i normalizes the input of conv i.
            bn_channels = cin if preact else cout
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(bn_channels))
            if preact or i < len(convs):
                setattr(self, f"relu{i}", nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.drop_path = DropPath(drop_path, drop_path_mode) if drop_path > 0 else None
        self.downsample = (
            make_shortcut(shortcut, in_channels, out_channels, stride, norm=not preact)
            if residual
            else None
        )
        self.add = Add() if residual else None
        self.relu = None if preact else nn.ReLU(inplace=True)
        # He et al. 2016: a projection takes the pre-activated input, as does the first unit.
        self.shortcut_activated = (
            preact and residual and (activate_shortcut or self.downsample is not None)
        )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        out = x
        for i in range(1, self.num_convs + 1):
            conv, bn = getattr(self, f"conv{i}"), getattr(self, f"bn{i}")
            if self.preact:
                out = getattr(self, f"relu{i}")(bn(out))
                if i == 1 and self.shortcut_activated:
                    shortcut = out
            if i == self.num_convs and self.dropout is not None:
                out = self.dropout(out)
            out = conv(out)
            if not self.preact:
                out = bn(out)
                if i < self.num_convs:
                    out = getattr(self, f"relu{i}")(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        if self.add is not None:
            if self.downsample is not None:
                shortcut = self.downsample(shortcut)
            out = self.add(out, shortcut)
        if self.relu is not None:
            out = self.relu(out)
        return out

    def zero_init_last_bn(self) -> None:
        """Start the block as identity: gamma of the branch's last BN = 0 (Goyal et al. 2017)."""
        if self.preact:
            raise UsageError("zero_init_residual applies to post-activation blocks only")
        nn.init.zeros_(getattr(self, f"bn{self.num_convs}").weight)
