"""The lecture's memory question ("how much memory does VGG-16 take per image?"), answered as it
is asked: in values and in bytes, per image, with the definition stated.

The definition, shared by `cnnzoo summary` and `cnnzoo compare`: the forward activations of one
image are the input plus every newly allocated layer output. Outputs written in place (an
in-place ReLU) and views (flatten) allocate nothing and add nothing. For VGG-16 at 3x224x224
that is 15,262,696 values, 58.2 MiB in float32. It is also what the backward pass keeps: autograd
saves each layer's input or output for the chain rule, so a training step holds all of them at
once (`Totals.training_bytes` counts them once per image, plus parameters, gradients and
optimizer state).

`compare` and `bench` call `activation_memory(report)` for the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnzoo.analysis.records import Analysis as Report

DEFINITION = "forward, input included"


@dataclass(frozen=True)
class ActivationMemory:
    """One image's forward activations.

    Attributes:
        input_values: values of the input image (C x H x W).
        output_values: values of the newly allocated layer outputs.
        bytes_per_value: the element size of the traced dtype (4 for float32).
        definition: the short form of the definition, for a table's footer.
    """

    input_values: int
    output_values: int
    bytes_per_value: int
    definition: str = DEFINITION

    @property
    def values(self) -> int:
        """Input included."""
        return self.input_values + self.output_values

    @property
    def bytes(self) -> int:
        return self.values * self.bytes_per_value


def activation_memory(report: Report) -> ActivationMemory:
    """The forward activations of one image of `report` (see the module docstring).

    Values are bytes over the traced dtype's element size (every output of the networks in the
    zoo has that dtype); bytes are per image, whatever the report's batch size.
    """
    t = report.totals
    size = report.dtype.itemsize
    per_image = t.batch_size * size
    return ActivationMemory(
        input_values=t.input_bytes // per_image,
        output_values=t.activation_bytes // per_image,
        bytes_per_value=size,
    )
