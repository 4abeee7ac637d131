"""The effective receptive field (Luo, Li, Urtasun and Zemel 2016, "Understanding the Effective
Receptive Field in Deep Convolutional Neural Networks", arXiv 1701.04128).

The theoretical field says which input pixels a unit *can* see; the effective field says how
much each of them matters. Following the paper, the output gradient is 1 at the central unit of
a layer's map (all its channels) and 0 elsewhere; the magnitude of the resulting input gradient,
summed over input channels and averaged over random inputs (standard normal, the scale of
normalized data), is the effective field: a heatmap over the input. Its mass concentrates
around the centre, so the radius (Euclidean, from the centre of the unit's theoretical field)
that holds 50% or 90% of it measures the effective field's size. The paper's findings: it is
roughly Gaussian, much smaller than the theoretical field, and grows during training.

The model runs for real (this needs gradients), in eval mode (batch norm uses its running
statistics, dropout is off), in its own dtype and on its own device; its weights are left
untouched and its mode is restored.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.analysis.receptive_field import RF
from cnnzoo.errors import UsageError
from cnnzoo.fileio import atomic_write

SAMPLES = 32  # random inputs averaged over; the heatmap's noise falls as 1/sqrt(SAMPLES)


@dataclass(frozen=True)
class EffectiveRF:
    """The effective receptive field of one unit.

    Attributes:
        model: the network's name.
        layer: the module whose output holds the unit.
        input_size: (C, H, W).
        unit: the unit's (row, column) in the layer's output map (its centre).
        centre: the input coordinate (y, x) of the centre of the unit's theoretical field.
        theoretical: the layer's theoretical field (None where the analyzer cannot follow it).
        heatmap: (H, W) mean input-gradient magnitude, normalized to sum to 1.
        samples: random inputs averaged over.
        radius50, radius90: radius in pixels around `centre` holding 50% / 90% of the mass.
    """

    model: str
    layer: str
    input_size: tuple[int, ...]
    unit: tuple[int, int]
    centre: tuple[float, float]
    theoretical: RF | None
    heatmap: Tensor
    samples: int

    @property
    def radius50(self) -> float:
        return mass_radius(self.heatmap, self.centre, 0.5)

    @property
    def radius90(self) -> float:
        return mass_radius(self.heatmap, self.centre, 0.9)

    def theoretical_box(self) -> tuple[float, float, float, float] | None:
        """(top, left, bottom, right): the theoretical field's input pixels, clipped."""
        rf = self.theoretical
        if rf is None:
            return None
        h, w = self.input_size[1:]
        if not rf.spatial:
            (top, bottom), (left, right) = rf.span((1, 1))
            return top, left, bottom, right
        half = [(s - 1) / 2 for s in rf.size]
        return (
            max(self.centre[0] - half[0], 0),
            max(self.centre[1] - half[1], 0),
            min(self.centre[0] + half[0], h - 1),
            min(self.centre[1] + half[1], w - 1),
        )

    def describe(self) -> str:
        rf = self.theoretical
        if rf is None:
            theory = "theoretical field: not known (the analyzer stops following it before this)"
        elif not rf.spatial:
            theory = f"theoretical field: global ({'x'.join(map(str, rf.size))} input pixels)"
        else:
            theory = (
                f"theoretical field: {'x'.join(map(str, rf.size))} pixels, padding included "
                f"(effective stride {'x'.join(str(j) for j in rf.jump)})"
            )
        return "\n".join(
            [
                f"{self.model}, layer {self.layer}, unit {self.unit} of its map, input "
                f"{'x'.join(map(str, self.input_size))}",
                theory,
                f"effective field ({self.samples} random inputs): 50% of the gradient mass "
                f"within {self.radius50:.1f} px of the centre, 90% within {self.radius90:.1f} px",
            ]
        )

    def figure(self) -> Any:
        """The heatmap with the theoretical square and the 50% / 90% circles, on a bare
        `matplotlib.figure.Figure` (no pyplot state)."""
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle, Rectangle

        fig = Figure(figsize=(5.2, 4.6), dpi=110)
        ax = fig.add_subplot()
        image = ax.imshow(self.heatmap.numpy(), cmap="viridis", interpolation="nearest")
        fig.colorbar(image, ax=ax, label="share of the input-gradient magnitude")
        box = self.theoretical_box()
        if box is not None:
            top, left, bottom, right = box
            ax.add_patch(
                Rectangle(
                    (left - 0.5, top - 0.5),
                    right - left + 1,
                    bottom - top + 1,
                    fill=False,
                    edgecolor="white",
                    linestyle="--",
                    label="theoretical field",
                )  # fmt: skip
            )
        y, x = self.centre
        for radius, color, share in ((self.radius50, "orange", 50), (self.radius90, "red", 90)):
            ax.add_patch(Circle((x, y), radius, fill=False, edgecolor=color,
                                label=f"{share}% of the mass: r = {radius:.1f}"))  # fmt: skip
        ax.set_xlim(-0.5, self.heatmap.shape[1] - 0.5)
        ax.set_ylim(self.heatmap.shape[0] - 0.5, -0.5)
        ax.set_title(f"Effective receptive field: {self.model}, {self.layer}", fontsize=9)
        ax.legend(loc="lower left", fontsize=7, framealpha=0.7)
        return fig

    def save(self, path: str | Path) -> Path:
        """Write the figure as a PNG, atomically."""
        path = Path(path)
        buffer = io.BytesIO()
        self.figure().savefig(buffer, format="png")
        atomic_write(path, buffer.getvalue())
        return path


def mass_radius(heatmap: Tensor, centre: tuple[float, float], share: float) -> float:
    """The smallest radius r such that the pixels within r of `centre` hold `share` of the mass."""
    h, w = heatmap.shape
    ys = torch.arange(h, dtype=torch.float64)[:, None] - centre[0]
    xs = torch.arange(w, dtype=torch.float64)[None, :] - centre[1]
    distance = (ys**2 + xs**2).sqrt().flatten()
    order = distance.argsort()
    mass = heatmap.flatten().to(torch.float64)[order].cumsum(0)
    index = int(torch.searchsorted(mass, share * mass[-1] - 1e-12))
    return float(distance[order][min(index, len(order) - 1)])


def _default_layer(rows) -> Any:
    """The last layer whose output is still a map with more than one position."""
    maps = [
        r
        for r in rows
        if r.kind == "module"
        and r.output_shape is not None
        and len(r.output_shape) == 4
        and r.output_shape[2] * r.output_shape[3] > 1
    ]
    if not maps:
        raise UsageError("the network has no layer with a spatial output map; name one with "
                         "--layer")  # fmt: skip
    return maps[-1]


def effective_rf(
    model: nn.Module,
    input_size: tuple[int, ...],
    *,
    layer: str | None = None,
    samples: int = SAMPLES,
    seed: int = 0,
    name: str | None = None,
) -> EffectiveRF:
    """The effective receptive field of the central unit of `layer`'s output.

    Args:
        model: any network; it is neither modified nor moved (its mode is restored).
        input_size: one input, (C, H, W).
        layer: a module name (`model.named_modules()`); default: the last layer whose output is
            a spatial map with more than one position.
        samples: random inputs to average over.
        seed: seed of the random inputs (the caller's RNG is left alone).
        name: the network's name, for the figure and the text.

    Raises:
        UsageError: no such layer (with the closest names), or it has no spatial output.
    """
    from cnnzoo.analysis.report import summary
    from cnnzoo.registry import closest_names

    if samples < 1:
        raise UsageError(f"samples must be at least 1, got {samples}")
    modules = dict(model.named_modules())
    if layer is not None and (layer not in modules or layer == ""):
        names = [n for n in modules if n]
        tail = layer.rsplit(".", 1)[-1]
        close = closest_names(layer, names) or [n for n in names if n.endswith(f".{tail}")][:5]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UsageError(f"no layer {layer!r} in {name or type(model).__name__}.{hint}")
    report = summary(model, tuple(input_size))
    if report.failure is not None:
        raise UsageError(f"the network does not run on {'x'.join(map(str, input_size))}: "
                         f"{report.failure.message}")  # fmt: skip
    if layer is None:
        row = _default_layer(report.all_layers)
    else:
        row = next((r for r in report.all_layers if r.name == layer), None)
        if row is None:  # a block: its field is that of its last layer
            row = next((r for r in reversed(report.all_layers)
                        if r.name.startswith(layer + ".")), None)  # fmt: skip
        if row is None:
            raise UsageError(f"layer {layer!r} does not run in the forward pass")
        if row.output_shape is None or len(row.output_shape) != 4:
            raise UsageError(f"layer {layer!r} has output {row.output_shape}, not a map "
                             "(N x C x H x W); the effective field needs one")  # fmt: skip
    target = layer if layer is not None else row.name
    shape = row.output_shape
    unit = (shape[2] // 2, shape[3] // 2)
    rf = row.rf  # of a block: of its last layer, whose output the block returns
    centre = _centre(rf, unit, input_size)
    heatmap = _mean_gradient(model, modules[target], input_size, unit, samples, seed)
    return EffectiveRF(
        model=name or type(model).__name__,
        layer=target,
        input_size=tuple(input_size),
        unit=unit,
        centre=centre,
        theoretical=rf,
        heatmap=heatmap / heatmap.sum(),
        samples=samples,
    )


def _centre(
    rf: RF | None, unit: tuple[int, int], input_size: tuple[int, ...]
) -> tuple[float, float]:
    if rf is not None and rf.spatial:
        return (rf.offset[0] + unit[0] * rf.jump[0], rf.offset[1] + unit[1] * rf.jump[1])
    return ((input_size[1] - 1) / 2, (input_size[2] - 1) / 2)


def _mean_gradient(
    model: nn.Module,
    module: nn.Module,
    input_size: tuple[int, ...],
    unit: tuple[int, int],
    samples: int,
    seed: int,
) -> Tensor:
    """Mean over random inputs of |d out[:, :, unit] / d input|, summed over input channels."""
    captured: list[Tensor] = []

    def hook(_module: nn.Module, _args: Any, output: Any) -> None:
        captured.append(output if isinstance(output, Tensor) else output[0])

    generator = torch.Generator().manual_seed(seed)
    modes = [(m, m.training) for m in model.modules()]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    handle = module.register_forward_hook(hook)
    total = torch.zeros(input_size[1:], dtype=torch.float64)
    try:
        model.eval()
        batch = min(samples, 8)
        done = 0
        while done < samples:
            n = min(batch, samples - done)
            x = torch.randn((n, *input_size), generator=generator, dtype=torch.float64)
            x = x.to(device=device, dtype=dtype).requires_grad_()
            captured.clear()
            model(x)
            out = captured[-1]
            # Each sample's unit depends on its own input only, so one backward serves all.
            (grad,) = torch.autograd.grad(out[:, :, unit[0], unit[1]].sum(), x)
            total += grad.detach().abs().sum(1).sum(0).to("cpu", torch.float64)
            done += n
    finally:
        handle.remove()
        for m, training in modes:
            m.training = training
    if not math.isfinite(float(total.sum())) or float(total.sum()) == 0:
        raise UsageError("the input gradient of the unit is zero or not finite; the effective "
                         "field cannot be measured for this layer")  # fmt: skip
    return total
