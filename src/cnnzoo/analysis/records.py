"""What the analyzer produces: frozen per-layer records, totals, and the failure of a run.

Totals are computed from the records and the model's parameters: parameters are deduplicated by
identity (a shared module or a tied weight counts once), and the sum of every column over the
records equals its total. Parameters that no executed layer used (GoogLeNet's auxiliary heads,
which only the training forward runs) are part of the parameter total and listed separately.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from cnnzoo.analysis.formulas import Window
from cnnzoo.analysis.receptive_field import RF
from cnnzoo.errors import UsageError

# The producer that stands for the network's input in `LayerRecord.producers`.
INPUT = -1

# Optimizer state kept per trainable parameter, in parameter-sized tensors.
OPTIMIZER_STATES = {"sgd": 0, "sgd_momentum": 1, "adam": 2}


@dataclass(frozen=True, slots=True)
class ParamRef:
    """One parameter tensor of the model, under the first name `named_parameters` gives it."""

    name: str
    numel: int
    trainable: bool
    nbytes: int


@dataclass(frozen=True, slots=True)
class LayerRecord:
    """One executed layer (a leaf module call or a functional call in a `forward`), or a block of
    layers when the report is summarized to a depth.

    Attributes:
        index: position in execution order.
        name: qualified module name; a functional call is named after the module whose forward
            made it, e.g. ``"_transform.cat()"``; a repeated call gets ``@2``, ``@3``, ...
        type: module class, or the torch function of a functional call.
        depth: nesting depth (children of the model have depth 1).
        kind: "module", "function" or "block".
        input_shapes: shapes of the tensors passed in.
        output_shapes: shapes of the tensors returned.
        params: parameters counted in this layer (trainable + frozen).
        trainable_params, frozen_params: the split of `params`.
        shared_params: parameters this layer uses that an earlier layer already counted.
        shared_with: names of the layers that counted them.
        macs: multiply-accumulates of convolutions and matrix products.
        flops: all FLOPs (2 x macs for convolutions and matrix products, see `formulas`).
        activation_bytes: bytes of newly allocated outputs (0 for in-place ops and views).
        window: kernel, stride, padding, dilation and groups of a convolution or pool.
        rf: receptive field of the output (size, effective stride, offset per spatial axis).
        inexact: the window's output-size division is not exact (the size was rounded).
        in_place: the layer wrote into its input.
        notes: anything the counts could not cover.
        producers: indices of the rows whose outputs this layer reads, in the order it first
            reads them; -1 (`INPUT`) stands for the network's input. A merge (a residual add, an
            inception concatenation) lists its branches, so the graph can be drawn from records.
        layers: how many executed layers the record stands for: 1, or a block's layers.
    """

    index: int
    name: str
    type: str
    depth: int
    kind: str
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    params: int
    trainable_params: int
    frozen_params: int
    shared_params: int
    shared_with: tuple[str, ...]
    macs: int
    flops: int
    activation_bytes: int
    window: Window | None
    rf: RF | None
    inexact: bool = False
    in_place: bool = False
    notes: tuple[str, ...] = ()
    producers: tuple[int, ...] = ()
    layers: int = 1

    @property
    def kernel(self) -> tuple[int, ...] | None:
        return self.window.kernel if self.window else None

    @property
    def stride(self) -> tuple[int | float, ...] | None:
        return self.window.stride if self.window else None

    @property
    def padding(self) -> tuple[int, ...] | None:
        return self.window.padding if self.window else None

    @property
    def dilation(self) -> tuple[int, ...] | None:
        return self.window.dilation if self.window else None

    @property
    def groups(self) -> int | None:
        return self.window.groups if self.window else None

    @property
    def rf_size(self) -> tuple[int, ...] | None:
        return self.rf.size if self.rf else None

    @property
    def rf_stride(self) -> tuple[float, ...] | None:
        return self.rf.jump if self.rf else None

    @property
    def rf_offset(self) -> tuple[float, ...] | None:
        return self.rf.offset if self.rf else None

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return self.output_shapes[0] if self.output_shapes else None


@dataclass(frozen=True, slots=True)
class BlockCall:
    """A call of a module that has children; its layers are `rows[first:end]` of the trace."""

    name: str
    type: str
    depth: int
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    rf: RF | None
    first: int
    end: int
    parents: tuple[int, ...]  # indices of the enclosing block calls, outermost first


@dataclass(frozen=True, slots=True)
class Failure:
    """Where and why the forward pass stopped.

    Attributes:
        layer: qualified name of the failing layer.
        type: its module class (or function).
        op: the torch function that raised, if any.
        input_shapes: shapes the failing layer received.
        message: the error.
        kind: "input too small" (a window larger than its padded input), "shape mismatch" or
            "error".
        smallest_input: the smallest input (C, H, W) that passes, when one was found.
        largest_input: the largest input of the run of passing sizes that starts at
            `smallest_input`, when a larger size fails again (paper AlexNet: 227 to 258).
        hint: a sentence for the user about what the search found, or why it stopped.
    """

    layer: str
    type: str
    op: str | None
    input_shapes: tuple[tuple[int, ...], ...]
    message: str
    kind: str
    smallest_input: tuple[int, ...] | None = None
    largest_input: tuple[int, ...] | None = None
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Totals:
    """Whole-model totals for one forward pass of `batch_size` inputs.

    Attributes:
        params: all parameters of the model, shared ones once (= sum over `model.parameters()`).
        trainable_params, frozen_params: the split of `params` by `requires_grad`.
        unused_params: parameters no executed layer used (included in `params`).
        macs: multiply-accumulates of convolutions and matrix products (the "paper" count).
        flops: all FLOPs: 2 x macs plus normalization, activations, pooling, adds, ...
        other_flops: flops - 2 x macs.
        input_bytes: the input batch.
        activation_bytes: newly allocated layer outputs.
        param_bytes: parameters; buffer_bytes: buffers (batch-norm statistics, ...).
        trainable_bytes: bytes of trainable parameters (the size of their gradients).
        batch_size: the batch the byte counts refer to.
    """

    params: int
    trainable_params: int
    frozen_params: int
    unused_params: int
    macs: int
    flops: int
    other_flops: int
    input_bytes: int
    activation_bytes: int
    param_bytes: int
    buffer_bytes: int
    trainable_bytes: int
    batch_size: int

    def training_bytes(self, optimizer: str = "adam", batch_size: int | None = None) -> int:
        """Estimated memory of one training step.

        parameters + buffers + gradients + optimizer state + the input and every layer's newly
        allocated output, which is what autograd keeps for the backward pass. Activations scale
        with the batch size; the rest does not.

        Args:
            optimizer: "sgd" (no state), "sgd_momentum" (1 buffer per parameter) or "adam" (2).
            batch_size: the batch to estimate for; defaults to the analysed batch.
        """
        if optimizer not in OPTIMIZER_STATES:
            raise UsageError(f"optimizer must be one of {', '.join(OPTIMIZER_STATES)}")
        fixed = self.param_bytes + self.buffer_bytes
        fixed += self.trainable_bytes * (1 + OPTIMIZER_STATES[optimizer])
        return fixed + self._per_sample_bytes() * (batch_size or self.batch_size)

    def _per_sample_bytes(self) -> float:
        return (self.input_bytes + self.activation_bytes) / self.batch_size

    def max_batch_size(self, budget_bytes: int, optimizer: str = "adam") -> int:
        """The largest batch whose `training_bytes` estimate fits in `budget_bytes` (0 if none)."""
        fixed = self.training_bytes(optimizer, batch_size=1) - self._per_sample_bytes()
        per_sample = self._per_sample_bytes()
        if per_sample <= 0:
            return 0
        return max(0, int((budget_bytes - fixed) // per_sample))


@dataclass(frozen=True, slots=True)
class ExactInputs:
    """Input sizes that make the rounded output-size divisions exact.

    Attributes:
        layers: (layer name, the smallest input (C, H, W) making its division exact) for each
            layer whose division is not exact at the analysed input and that some larger input
            makes exact.
        overall: the smallest input making every division exact while the network still runs,
            or None if none was found.
        searched: how many pixels per spatial axis the search grew the input, at most.
    """

    layers: tuple[tuple[str, tuple[int, ...]], ...]
    overall: tuple[int, ...] | None
    searched: int


@dataclass(frozen=True)
class Analysis:
    """What the analyzer found about one network at one input size: data only.

    The renderers and `explain` read this; `report.Report` adds them as methods.

    Attributes:
        model: the registered name, or the module's class name.
        input_size: one input, (C, H, W).
        batch_size: inputs per batch; counts and bytes are per batch.
        dtype: dtype of the input and parameters.
        depth: the depth `layers` is summarized to (None: every layer).
        layers: one record per executed layer in execution order (or per block at `depth`).
        totals: whole-model totals.
        output_rf: receptive field of the network's output.
        failure: where the forward pass stopped, if it did; `layers` then end before it.
        notes: how the counts were obtained and what they do not cover.
        traced_on: "meta" (shapes only), or the device of the fallback real forward pass.
        all_layers: every executed layer, whatever `depth` is.
        exact: the inputs that make inexact divisions exact, when they were searched for
            (`summary(..., find_exact_inputs=True)`); None when not searched.
        mode: "eval", or "train": traced in training mode (dropout on, auxiliary heads run).
    """

    model: str
    input_size: tuple[int, ...]
    batch_size: int
    dtype: torch.dtype
    depth: int | None
    layers: tuple[LayerRecord, ...]
    totals: Totals
    output_rf: RF | None
    failure: Failure | None
    notes: tuple[str, ...]
    traced_on: str
    all_layers: tuple[LayerRecord, ...]
    exact: ExactInputs | None = None
    mode: str = "eval"

    def highlights(self, n: int = 3) -> dict[str, list[tuple[str, int, float]]]:
        """The layers holding the most parameters and the most activation memory.

        Returns:
            {"params": [(layer, count, share), ...], "activations": [(layer, bytes, share), ...]}
            with shares as fractions of the totals.
        """

        def top(key: Callable[[LayerRecord], int], total: int) -> list[tuple[str, int, float]]:
            rows = sorted((r for r in self.all_layers if key(r) > 0), key=key, reverse=True)
            return [(r.name, key(r), key(r) / total if total else 0.0) for r in rows[:n]]

        return {
            "params": top(lambda r: r.params, self.totals.params),
            "activations": top(lambda r: r.activation_bytes, self.totals.activation_bytes),
        }

    def exact_inputs(self) -> tuple[dict[str, tuple[int, ...]], tuple[int, ...] | None]:
        """`exact` as ({layer name: smallest input making its division exact}, overall).

        Raises:
            UsageError: the exact inputs were not searched for.
        """
        if self.exact is None:
            raise UsageError(
                f"{self.model}: exact inputs were not searched for; "
                "call summary(..., find_exact_inputs=True)"
            )
        return dict(self.exact.layers), self.exact.overall


def compute_totals(
    rows: tuple[LayerRecord, ...],
    params: tuple[ParamRef, ...],
    *,
    input_bytes: int,
    buffer_bytes: int,
    batch_size: int,
) -> Totals:
    """Totals over the leaf records; parameters come from the model, deduplicated by identity."""
    macs = sum(r.macs for r in rows)
    flops = sum(r.flops for r in rows)
    return Totals(
        params=sum(p.numel for p in params),
        trainable_params=sum(p.numel for p in params if p.trainable),
        frozen_params=sum(p.numel for p in params if not p.trainable),
        unused_params=sum(p.numel for p in params) - sum(r.params for r in rows),
        macs=macs,
        flops=flops,
        other_flops=flops - 2 * macs,
        input_bytes=input_bytes,
        activation_bytes=sum(r.activation_bytes for r in rows),
        param_bytes=sum(p.nbytes for p in params),
        buffer_bytes=buffer_bytes,
        trainable_bytes=sum(p.nbytes for p in params if p.trainable),
        batch_size=batch_size,
    )


def at_depth(
    rows: tuple[LayerRecord, ...],
    parents: tuple[tuple[int, ...], ...],
    blocks: tuple[BlockCall | None, ...],
    depth: int | None,
) -> tuple[LayerRecord, ...]:
    """The records summarized to `depth`: layers nested deeper are merged into the outermost
    enclosing block at that depth or deeper, one record per block call; sums are unchanged, and
    a block's producers are the rows outside it that its layers read."""
    if depth is None:
        return rows
    groups: list[tuple[int | None, list[LayerRecord]]] = []
    for row, chain in zip(rows, parents, strict=True):
        block = _enclosing(row, chain, blocks, depth)
        if block is not None and groups and groups[-1][0] == block:
            groups[-1][1].append(row)
        else:
            groups.append((block, [row]))
    new_index = {r.index: i for i, (_, group) in enumerate(groups) for r in group}
    new_index[INPUT] = INPUT
    out: list[LayerRecord] = []
    for i, (block, group) in enumerate(groups):
        producers = tuple(
            dict.fromkeys(new_index[p] for r in group for p in r.producers if new_index[p] != i)
        )
        if block is None:
            (row,) = group
            out.append(replace(row, index=i, producers=producers))
        else:
            out.append(_merge(blocks[block], group, i, producers))  # type: ignore[arg-type]
    return tuple(out)


def _enclosing(
    row: LayerRecord, chain: tuple[int, ...], blocks: tuple[BlockCall | None, ...], depth: int
) -> int | None:
    """The outermost finished block call around `row` at `depth` or deeper, if `row` is deeper."""
    if row.depth <= depth:
        return None
    for b in chain:
        block = blocks[b]
        if block is not None and block.depth >= depth:
            return b
    return None


def _merge(
    block: BlockCall, rows: list[LayerRecord], index: int, producers: tuple[int, ...]
) -> LayerRecord:
    shared_with = tuple(dict.fromkeys(name for r in rows for name in r.shared_with))
    notes = tuple(dict.fromkeys(note for r in rows for note in r.notes))
    return LayerRecord(
        index=index,
        name=block.name,
        type=block.type,
        depth=block.depth,
        kind="block",
        input_shapes=block.input_shapes,
        output_shapes=block.output_shapes,
        params=sum(r.params for r in rows),
        trainable_params=sum(r.trainable_params for r in rows),
        frozen_params=sum(r.frozen_params for r in rows),
        shared_params=sum(r.shared_params for r in rows),
        shared_with=shared_with,
        macs=sum(r.macs for r in rows),
        flops=sum(r.flops for r in rows),
        activation_bytes=sum(r.activation_bytes for r in rows),
        window=None,
        rf=block.rf,
        inexact=any(r.inexact for r in rows),
        notes=notes,
        producers=producers,
        layers=sum(r.layers for r in rows),
    )
