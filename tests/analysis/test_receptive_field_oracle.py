"""The receptive field oracle: on random graphs that mix convolutions (dilated, strided, grouped),
average pooling, squeeze-and-excitation products, channel shuffles, permutes to channels-last and
back, concatenations and residual adds, the field the analyzer computes equals the *measured*
one: the footprint of the nonzero input gradient of one central output unit, with positive
weights, positive inputs and average pooling, so that no path is masked, in float64.
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from cnnzoo.analysis import summary

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIZE = 40  # input height and width


def _positive(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.uniform_(p, 0.5, 1.0)
    return module


class SE(nn.Module):
    """x * gate(mean over the map), as MobileNetV3's and EfficientNet's blocks. The gate is
    linear here: a sigmoid saturates to exactly 1.0 in float64 once its input passes ~37, and
    its zero gradient would mask the path the oracle measures."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = _positive(nn.Conv2d(c, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(self.pool(x))


class Shuffle(nn.Module):
    """ShuffleNet's channel shuffle: a view that splits only the channels, transpose, view."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class ChannelsLast(nn.Module):
    """ConvNeXt's pattern: permute to N x H x W x C, layer norm and a linear layer over the
    channels, permute back."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = _positive(nn.LayerNorm(c))
        self.fc = _positive(nn.Linear(c, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 2, 3, 1)
        return self.fc(y + 0 * self.norm(y)).permute(0, 3, 1, 2)


class Branches(nn.Module):
    """Two convolutions of different kernels joined by an add, a concatenation or a mean."""

    def __init__(self, c: int, k1: int, k2: int, d: int, join: str) -> None:
        super().__init__()
        self.a = _positive(nn.Conv2d(c, c, k1, padding=(k1 - 1) // 2))
        self.b = _positive(nn.Conv2d(c, c, k2, padding=d * (k2 - 1) // 2, dilation=d))
        self.join = join
        self.out_channels = 2 * c if join == "cat" else c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a(x), self.b(x)
        if self.join == "mean":  # FractalNet's join
            return torch.stack([a, b]).mean(0)
        return torch.cat([a, b], 1) if self.join == "cat" else a + b


@st.composite
def block(draw: st.DrawFn, c: int) -> tuple[nn.Module, int]:
    kind = draw(st.sampled_from(["conv", "pool", "se", "shuffle", "permute", "branch"]))
    if kind == "conv":
        k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
        groups = draw(st.sampled_from([1, 2]))
        out = 2 * draw(st.integers(1, 2))
        conv = nn.Conv2d(c, out, k, s, draw(st.integers(0, k)), dilation=d, groups=groups)
        return _positive(conv), out
    if kind == "pool":
        k = draw(st.integers(1, 3))
        return nn.AvgPool2d(k, draw(st.integers(1, 2)), draw(st.integers(0, k // 2))), c
    if kind == "se":
        return SE(c), c
    if kind == "shuffle":
        return Shuffle(), c
    if kind == "permute":
        return ChannelsLast(c), c
    k1, k2 = draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3]))
    join = draw(st.sampled_from(["add", "cat", "mean"]))
    branches = Branches(c, k1, k2, draw(st.integers(1, 2)), join)
    return branches, branches.out_channels


@st.composite
def graphs(draw: st.DrawFn) -> nn.Sequential:
    c, layers = 2, []
    for _ in range(draw(st.integers(1, 5))):
        module, c = draw(block(c))
        layers.append(module)
    return nn.Sequential(*layers).double()


def _footprint(grad: torch.Tensor) -> list[tuple[int, int]]:
    rows = grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    cols = grad[0].abs().sum(dim=(0, 1)).nonzero().flatten()
    return [(rows.min().item(), rows.max().item()), (cols.min().item(), cols.max().item())]


def _measured(model: nn.Module) -> tuple[list[tuple[int, int]], list[tuple[int, int]], tuple]:
    """The input rows and columns that the central output unit's gradient reaches; those that
    any output unit's gradient reaches (the part of the input the network reads at all: a
    stride can skip the last pixel); and the central unit."""
    x = (torch.rand(1, 2, SIZE, SIZE, dtype=torch.float64) + 0.5).requires_grad_()
    out = model(x)
    h, w = out.shape[-2] // 2, out.shape[-1] // 2
    (grad,) = torch.autograd.grad(out[0, :, h, w].sum(), x, retain_graph=True)
    (read,) = torch.autograd.grad(out.sum(), x)
    return _footprint(grad), _footprint(read), (h, w)


def _computed(rf, unit: tuple[int, ...], read: list[tuple[int, int]]) -> list[tuple[float, float]]:
    """The computed field of `unit`, clipped to the part of the input the network reads."""
    if not rf.spatial:
        spans = [rf.span((1, 1))[a] for a in range(2)]
    else:
        spans = []
        for a in range(2):
            centre = rf.offset[a] + unit[a] * rf.jump[a]
            half = (rf.size[a] - 1) / 2
            spans.append((centre - half, centre + half))
    return [(max(lo, r[0]), min(hi, r[1])) for (lo, hi), r in zip(spans, read, strict=True)]


@SETTINGS
@given(graphs())
def test_computed_field_equals_the_gradient_footprint(model: nn.Sequential) -> None:
    report = summary(model, (2, SIZE, SIZE), dtype=torch.float64)
    assume(report.failure is None)  # too small for this graph: the shape tests cover failures
    rf = report.output_rf
    assert rf is not None, [n for r in report.all_layers for n in r.notes]
    measured, read, unit = _measured(model)
    assert _computed(rf, unit, read) == measured
    if not rf.spatial:  # a global field is never reported larger than the input
        assert max(rf.size) <= SIZE


def test_se_makes_the_field_global_and_no_larger_than_the_input() -> None:
    model = nn.Sequential(_positive(nn.Conv2d(2, 2, 3, 2, 1)), SE(2),
                          _positive(nn.Conv2d(2, 2, 3, 1, 1))).double()  # fmt: skip
    report = summary(model, (2, SIZE, SIZE), dtype=torch.float64)
    rf = report.output_rf
    assert rf is not None and not rf.spatial and rf.size == (SIZE, SIZE)
    measured, read, _ = _measured(model)
    assert read == [(0, SIZE - 1)] * 2 and _computed(rf, (0, 0), read) == measured
    first = report.all_layers[0]
    assert first.rf is not None and first.rf.spatial and first.rf.size == (3, 3)


def test_shuffle_and_channels_last_keep_a_local_field() -> None:
    model = nn.Sequential(_positive(nn.Conv2d(2, 2, 3)), Shuffle(), ChannelsLast(2),
                          _positive(nn.Conv2d(2, 2, 5))).double()  # fmt: skip
    rf = summary(model, (2, SIZE, SIZE), dtype=torch.float64).output_rf
    assert rf is not None and rf.spatial and rf.size == (7, 7) and rf.dims is None
    measured, read, unit = _measured(model)
    assert _computed(rf, unit, read) == measured


class _Window(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # Swin's partition into 4x4 windows
        n, c, h, w = x.shape
        return x.view(n, c, h // 4, 4, w // 4, 4).sum((3, 5))


class _Upsample(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, scale_factor=2.0)


def test_window_partition_and_upsampling_stop_with_a_note_at_their_layer() -> None:
    for stage, words in ((_Window(), "window partition"), (_Upsample(), "resampling")):
        model = nn.Sequential(nn.Conv2d(2, 2, 3), stage, nn.Conv2d(2, 2, 3))
        report = summary(model, (2, 18, 18))
        conv, stopped, after = report.all_layers
        assert conv.rf is not None and stopped.rf is None and after.rf is None
        assert any(words in n and "stops here" in n for n in stopped.notes), stopped.notes
        assert report.output_rf is None
        assert any("not followed past 1" in n for n in report.notes)


def test_group_norm_and_softmax_over_the_map_are_global() -> None:
    class Attention(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            weights = torch.softmax(x.flatten(2), -1).view_as(x)
            return x * weights

    for stage in (nn.GroupNorm(1, 2), Attention()):
        model = nn.Sequential(nn.Conv2d(2, 2, 3), stage, nn.Conv2d(2, 2, 3))
        rf = summary(model, (2, 16, 16)).output_rf
        assert rf is not None and not rf.spatial and rf.size == (16, 16), stage


def test_torchvision_networks_fields() -> None:
    torchvision = __import__("pytest").importorskip("torchvision")
    shuffle = summary(torchvision.models.shufflenet_v2_x1_0(), (3, 224, 224))
    conv5 = next(r for r in shuffle.all_layers if r.name == "conv5.2")
    assert conv5.rf is not None and conv5.rf.spatial and conv5.rf.jump == (32, 32)
    convnext = summary(torchvision.models.convnext_tiny(), (3, 224, 224))
    assert convnext.output_rf is not None and not convnext.output_rf.spatial
    assert not any("receptive" in n for n in convnext.notes)
    last = [r for r in convnext.all_layers if r.output_shape == (1, 768, 7, 7)][-1]
    assert last.rf is not None and last.rf.spatial  # LayerNorm2d's permutes keep the field
