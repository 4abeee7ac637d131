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
largest of them. An operation that mixes all positions (flatten, global pooling, a linear layer
on flattened features) gives a global field: the whole spatial extent of its input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RF:
    """Receptive field of a tensor's units, one entry per spatial axis (e.g. (H, W)).

    Attributes:
        size: field size in input pixels.
        jump: effective stride, input pixels between neighbouring units.
        offset: input coordinate of the centre of the first unit's field.
        spatial: False once the spatial axes have been mixed away (after flatten or global
            pooling); later operations cannot grow the field any further.
    """

    size: tuple[int, ...]
    jump: tuple[float, ...]
    offset: tuple[float, ...]
    spatial: bool = True

    @classmethod
    def identity(cls, axes: int) -> RF:
        """The field of the input itself: one pixel, stride 1, offset 0."""
        return cls((1,) * axes, (1,) * axes, (0.0,) * axes)

    @property
    def axes(self) -> int:
        return len(self.size)

    def window(
        self,
        kernel: Sequence[int],
        stride: Sequence[int],
        padding: Sequence[int],
        dilation: Sequence[int],
    ) -> RF:
        """The field after a convolution or pooling window over the last `axes` dimensions."""
        if not self.spatial:
            return self
        size, jump, offset = [], [], []
        for r, j, o, k, s, p, d in zip(
            self.size, self.jump, self.offset, kernel, stride, padding, dilation, strict=True
        ):
            k_eff = d * (k - 1) + 1
            size.append(r + (k_eff - 1) * _exact(j))
            jump.append(_exact(j * s))
            offset.append(o + ((k_eff - 1) / 2 - p) * j)
        return RF(tuple(int(x) for x in size), tuple(jump), tuple(offset))

    def shifted(self, starts: Sequence[int], steps: Sequence[int]) -> RF:
        """The field after taking every step-th unit from `start` (slicing, padding by -start)."""
        if not self.spatial:
            return self
        return RF(
            self.size,
            tuple(_exact(j * s) for j, s in zip(self.jump, steps, strict=True)),
            tuple(o + a * j for o, a, j in zip(self.offset, starts, self.jump, strict=True)),
        )

    def global_(self, extent: Sequence[int]) -> RF:
        """The field of an operation that mixes all `extent` positions of each spatial axis."""
        if not self.spatial:
            return self
        field = self.window(extent, extent, (0,) * self.axes, (1,) * self.axes)
        return RF(field.size, field.jump, field.offset, spatial=False)


def _exact(x: float) -> float:
    """Keep integral strides as ints so they print as 2, not 2.0."""
    return int(x) if float(x).is_integer() else x


def union(fields: Sequence[RF]) -> RF | None:
    """The field of a unit that combines units of several branches (add, concatenation).

    Returns the union of the branches' fields (centred where the union is centred), or None when
    the fields do not describe the same axes.
    """
    if not fields:
        return None
    first = fields[0]
    if len(fields) == 1:
        return first
    if any(f.axes != first.axes for f in fields):
        return None
    # A global field merged into a spatial one (x * SE-scale) widens the field but leaves the
    # layout, and the effective stride, to the spatial branch.
    spatial = [f for f in fields if f.spatial] or list(fields)
    size, jump, offset = [], [], []
    for axis in range(first.axes):
        lo = min(f.offset[axis] - (f.size[axis] - 1) / 2 for f in fields)
        hi = max(f.offset[axis] + (f.size[axis] - 1) / 2 for f in fields)
        size.append(round(hi - lo) + 1)
        jump.append(max(f.jump[axis] for f in spatial))
        offset.append((lo + hi) / 2)
    return RF(tuple(size), tuple(jump), tuple(offset), any(f.spatial for f in fields))
