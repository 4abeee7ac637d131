"""Receptive fields: how much of the input one unit sees, and where.

Each tensor derived from the input carries an `RF`: per spatial axis the receptive field size, the
effective stride ("jump": input pixels between neighbouring units) and the offset (input
coordinate of the centre of the first unit's field; pixel i of the input has centre i). A window
operation (convolution or pooling with kernel k, stride s, padding p, dilation d) maps

    k_eff  = d * (k - 1) + 1
    size'  = size + (k_eff - 1) * jump
    jump'  = jump * s
    offset' = offset + ((k_eff - 1) / 2 - p) * jump

(Araujo et al. 2019, "Computing Receptive Fields of Convolutional Neural Networks", Distill).
Unit u along an axis then sees input pixels offset + u * jump -/+ (size - 1) / 2, padding
included, so the size can exceed the image. Where branches merge (residual adds, inception and
dense concatenations) the field is the union of the branches' fields, which is at least the
largest of them.

A unit that depends on every position of a tensor (global pooling, flatten before a linear
layer, a squeeze-and-excitation gate multiplied back onto the map, a norm whose statistics span
the spatial axes) has a *global* field: the union of the fields of all the positions it mixes,
clipped to the input, which is the whole input whenever those positions cover it. A global field
stays global through everything after it; it is never reported larger than the input. (It is
the hull of the positions' fields: an input pixel that a stride skips at the far border, and
that no unit reads, still counts in it.)

Where a field cannot be followed exactly (a window partition, resampling, a roll or flip along a
spatial axis, a transposed convolution, an operation without a rule), `formulas.derive_rf` says
why, and the trace notes it at that layer; every layer after it has no field.

The spatial axes need not be the trailing dimensions: `dims` says where they are, so a permute to
channels-last (ConvNeXt's LayerNorm2d, Swin's patch embedding) and back keeps the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache


@dataclass(frozen=True, slots=True)
class RF:
    """Receptive field of a tensor's units, one entry per spatial axis (e.g. (H, W)).

    Attributes:
        size: field size in input pixels (padding included while the field is local; clipped to
            the input once it is global). 0 for a tensor that depends on no input pixel.
        jump: effective stride, input pixels between neighbouring units.
        offset: input coordinate of the centre of the first unit's field (of the field itself
            once it is global).
        spatial: False once the field is global: every unit depends on the same input region
            (after flatten, global pooling, an SE gate, ...); later operations cannot grow it.
        extent: the input's spatial size, which a global field is clipped to (None: unknown);
            not part of equality, since a local field does not depend on it.
        dims: the tensor dimensions holding the spatial axes, counted from the end (None: the
            trailing ones, e.g. (-2, -1) for N x C x H x W; (-3, -2) for N x H x W x C).
    """

    size: tuple[int, ...]
    jump: tuple[float, ...]
    offset: tuple[float, ...]
    spatial: bool = True
    extent: tuple[int, ...] | None = field(default=None, compare=False)
    dims: tuple[int, ...] | None = None

    @classmethod
    def identity(cls, axes: int, extent: Sequence[int] | None = None) -> RF:
        """The field of the input itself: one pixel, stride 1, offset 0."""
        return cls(
            (1,) * axes, (1,) * axes, (0.0,) * axes, extent=tuple(extent) if extent else None
        )

    @property
    def axes(self) -> int:
        return len(self.size)

    @property
    def tensor_dims(self) -> tuple[int, ...]:
        """`dims`, with the default (trailing) spelled out."""
        return self.dims if self.dims is not None else _trailing(len(self.size))

    @property
    def empty(self) -> bool:
        return any(s == 0 for s in self.size)

    def moved(self, dims: Sequence[int]) -> RF:
        """The same field on a tensor whose spatial axes sit at `dims` (negative indices)."""
        dims = tuple(dims)
        trailing = dims == tuple(range(-self.axes, 0))
        return RF(self.size, self.jump, self.offset, self.spatial, self.extent,
                  None if trailing else dims)  # fmt: skip

    def window(
        self,
        kernel: Sequence[int],
        stride: Sequence[int],
        padding: Sequence[int],
        dilation: Sequence[int],
    ) -> RF:
        """The field after a convolution or pooling window over the spatial axes, in order."""
        if not self.spatial or self.empty:
            return self
        size, jump, offset = [], [], []
        for r, j, o, k, s, p, d in zip(
            self.size, self.jump, self.offset, kernel, stride, padding, dilation, strict=True
        ):
            k_eff = d * (k - 1) + 1
            size.append(r + (k_eff - 1) * _exact(j))
            jump.append(_exact(j * s))
            offset.append(o + ((k_eff - 1) / 2 - p) * j)
        return RF(tuple(int(x) for x in size), tuple(jump), tuple(offset),
                  extent=self.extent, dims=self.dims)  # fmt: skip

    def shifted(self, starts: Sequence[int], steps: Sequence[int]) -> RF:
        """The field after taking every step-th unit from `start` (slicing, padding by -start)."""
        if not self.spatial or self.empty:
            return self
        return RF(
            self.size,
            tuple(_exact(j * s) for j, s in zip(self.jump, steps, strict=True)),
            tuple(o + a * j for o, a, j in zip(self.offset, starts, self.jump, strict=True)),
            extent=self.extent,
            dims=self.dims,
        )

    def span(self, units: Sequence[int]) -> tuple[tuple[float, float], ...]:
        """Per axis, the input interval (lo, hi) that units 0 .. units-1 see together, clipped
        to the input where its extent is known (a global field: its own interval)."""
        out = []
        for axis in range(self.axes):
            half = (self.size[axis] - 1) / 2
            lo = self.offset[axis] - half
            hi = self.offset[axis] + half
            if self.spatial:
                hi += (units[axis] - 1) * self.jump[axis]
            if self.extent is not None:
                lo, hi = max(lo, 0), min(hi, self.extent[axis] - 1)
            out.append((lo, hi))
        return tuple(out)

    def global_(self, units: Sequence[int]) -> RF:
        """The field of an operation that mixes all `units` positions of each spatial axis."""
        if not self.spatial or self.empty:
            return self
        return _from_span(self.span(units), self.jump, self.extent)


@cache
def _trailing(axes: int) -> tuple[int, ...]:
    """`tensor_dims` of a field on the trailing axes, made once per number of axes."""
    return tuple(range(-axes, 0))


def _from_span(
    spans: Sequence[tuple[float, float]], jump: Sequence[float], extent: tuple[int, ...] | None
) -> RF:
    return RF(
        tuple(round(hi - lo) + 1 for lo, hi in spans),
        tuple(jump),
        tuple((lo + hi) / 2 for lo, hi in spans),
        spatial=False,
        extent=extent,
    )


def _exact(x: float) -> float:
    """Keep integral strides as ints so they print as 2, not 2.0."""
    return int(x) if float(x).is_integer() else x


def union(fields: Sequence[RF], units: Sequence[Sequence[int]] | None = None) -> RF | None:
    """The field of a unit that combines units of several branches (add, concatenation, x * g).

    A global branch makes the result global: its interval joined with everything the local
    branches' units see (`units[i]`: branch i's number of positions per axis; without it a local
    branch counts with one unit, which is exact for an SE gate computed from the same map).
    Otherwise the union of the local fields, centred where the union is centred.

    Returns None when the fields do not describe the same axes.
    """
    fields = [f for f in fields if not f.empty] or list(fields[:1])
    if not fields:
        return None
    first = fields[0]
    if len(fields) == 1:
        return first
    if any(f.axes != first.axes for f in fields):
        return None
    extent = next((f.extent for f in fields if f.extent is not None), None)
    if not all(f.spatial for f in fields):
        spans = [
            f.span(units[i] if units is not None else (1,) * f.axes) for i, f in enumerate(fields)
        ]
        hull = [
            (min(s[axis][0] for s in spans), max(s[axis][1] for s in spans))
            for axis in range(first.axes)
        ]
        return _from_span(hull, first.jump, extent)
    if any(f.tensor_dims != first.tensor_dims for f in fields):
        return None
    size, jump, offset = [], [], []
    for axis in range(first.axes):
        lo = min(f.offset[axis] - (f.size[axis] - 1) / 2 for f in fields)
        hi = max(f.offset[axis] + (f.size[axis] - 1) / 2 for f in fields)
        size.append(round(hi - lo) + 1)
        jump.append(max(f.jump[axis] for f in fields))
        offset.append((lo + hi) / 2)
    return RF(tuple(size), tuple(jump), tuple(offset), extent=extent, dims=first.dims)
