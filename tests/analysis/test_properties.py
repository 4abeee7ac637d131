"""Property-based tests over random conv/pool stacks, against a real forward pass.

Shapes: the analyzer's output shapes (and its output-size arithmetic) equal a real forward's,
and it fails exactly where the real forward fails. Receptive fields: size, effective stride and
offset equal a brute-force measurement, the extent of the input gradient of one output unit.
"""

from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from cnnzoo.analysis import summary
from cnnzoo.analysis.formulas import output_size

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def layer(draw: st.DrawFn, channels: int) -> nn.Module:
    kind = draw(st.sampled_from(["conv", "max", "avg"]))
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 3))
    if kind == "conv":
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
        out = groups * draw(st.integers(1, 2))
        d = draw(st.integers(1, 2))
        p = draw(st.integers(0, k))
        return nn.Conv2d(channels, out, k, s, p, dilation=d, groups=groups)
    ceil_mode = draw(st.booleans())
    if kind == "max":
        d = draw(st.integers(1, 2))
        p = draw(st.integers(0, (d * (k - 1) + 1) // 2))  # PyTorch: at most half the window
        return nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil_mode)
    p = draw(st.integers(0, k // 2))
    return nn.AvgPool2d(k, s, p, ceil_mode=ceil_mode)


@st.composite
def stacks(draw: st.DrawFn, max_layers: int = 4) -> tuple[nn.Sequential, int]:
    channels = in_channels = draw(st.sampled_from([1, 2, 3, 6]))
    layers = []
    for _ in range(draw(st.integers(1, max_layers))):
        module = draw(layer(channels))
        layers.append(module)
        channels = module.out_channels if isinstance(module, nn.Conv2d) else channels
    return nn.Sequential(*layers), in_channels


def _real_shapes(model: nn.Sequential, x: torch.Tensor) -> tuple[list[tuple[int, ...]], int | None]:
    """Output shape of each layer of a real forward, and the index of the failing layer."""
    shapes = []
    with torch.no_grad():
        for i, module in enumerate(model):
            try:
                x = module(x)
            except RuntimeError:
                return shapes, i
            shapes.append(tuple(x.shape))
    return shapes, None


@SETTINGS
@given(stacks(), st.integers(1, 20), st.integers(1, 20))
def test_shapes_equal_a_real_forward(stack: tuple[nn.Sequential, int], h: int, w: int) -> None:
    model, channels = stack
    real, failed_at = _real_shapes(model, torch.randn(1, channels, h, w))
    report = summary(model, (channels, h, w))
    assert [r.output_shape for r in report.layers] == real
    if failed_at is None:
        assert report.failure is None
    else:
        assert report.failure is not None and report.failure.layer == str(failed_at)
    for row in report.layers:  # the explained arithmetic gives the same sizes
        window = row.window
        assert window is not None
        predicted = tuple(
            output_size(n, k, s, p, d, window.ceil_mode)
            for n, k, s, p, d in zip(
                window.in_size,
                window.kernel,
                window.stride,
                window.padding,
                window.dilation,
                strict=True,
            )
        )
        assert predicted == row.output_shape[2:]


def _unit_weights(model: nn.Sequential) -> nn.Sequential:
    """A twin that sums its windows with positive weights: every input in a unit's field gets a
    gradient. Max pooling (whose gradient reaches one input) becomes a summing convolution of
    the same geometry; ceil_mode only adds a unit at the end, so unit u keeps its window."""
    layers: list[nn.Module] = []
    for m in model:
        if isinstance(m, nn.Conv2d):
            conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                             m.dilation, m.groups, bias=False)  # fmt: skip
        elif isinstance(m, nn.MaxPool2d):
            c = _channels_before(model, m)
            conv = nn.Conv2d(c, c, m.kernel_size, m.stride, m.padding, m.dilation, groups=c,
                             bias=False)  # fmt: skip
        else:
            layers.append(nn.AvgPool2d(m.kernel_size, m.stride, m.padding))
            continue
        nn.init.ones_(conv.weight)
        layers.append(conv)
    return nn.Sequential(*layers).double()


def _channels_before(model: nn.Sequential, target: nn.Module) -> int:
    channels = None
    for m in model:
        if m is target:
            break
        if isinstance(m, nn.Conv2d):
            channels = m.out_channels
    return channels if channels is not None else model.in_channels  # type: ignore[attr-defined]


@SETTINGS
@given(stacks(max_layers=3))
def test_receptive_field_equals_gradient_extent(stack: tuple[nn.Sequential, int]) -> None:
    model, channels = stack
    model.in_channels = channels  # type: ignore[assignment]
    probe = summary(model, (channels, 64, 64))
    rf = probe.output_rf
    if probe.failure is not None or rf is None:
        return  # 64 pixels too small for this stack; the shape test covers failures
    size, jump, offset = rf.size[0], rf.jump[0], rf.offset[0]
    # The first unit whose field lies inside the image, and an image that contains it.
    unit = max(0, math.ceil(((size - 1) / 2 - offset) / jump))
    lo = offset + unit * jump - (size - 1) / 2
    hi = offset + unit * jump + (size - 1) / 2
    n = int(hi) + 1 + int(jump)
    x = torch.ones(1, channels, n, n, dtype=torch.float64, requires_grad=True)
    out = _unit_weights(model)(x)
    assert out.shape[-1] > unit
    (grad,) = torch.autograd.grad(out[0, :, unit, unit].sum(), x)
    rows = grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    cols = grad[0].abs().sum(dim=(0, 1)).nonzero().flatten()
    assert (rows.min().item(), rows.max().item()) == (lo, hi)
    assert (cols.min().item(), cols.max().item()) == (lo, hi)
    assert summary(model, (channels, n, n)).output_rf == rf  # independent of the input size
