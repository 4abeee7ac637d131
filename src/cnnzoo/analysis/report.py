"""`summary`: explain a network layer by layer; the report object and its exports."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from cnnzoo.analysis import render
from cnnzoo.analysis.receptive_field import RF
from cnnzoo.analysis.records import Failure, LayerRecord, Totals, at_depth, compute_totals
from cnnzoo.analysis.trace import TraceResult, meta_problem, trace
from cnnzoo.errors import OptionError, UsageError

Retrace = Callable[[tuple[int, ...]], TraceResult]

# How far `exact_inputs` and the smallest-input search look.
_EXACT_SEARCH = 64
_MISMATCH_SEARCH = 256
_SEARCH_SECONDS = 5.0


@dataclass(frozen=True)
class Report:
    """The analysis of one network at one input size.

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
    _retrace: Retrace | None = field(default=None, compare=False, repr=False)
    mode: str = "eval"  # "train": traced in training mode (dropout on, auxiliary heads run)

    def __str__(self) -> str:
        return self.to_table()

    def __repr__(self) -> str:
        size = "x".join(map(str, self.input_size))
        failed = f", failed at {self.failure.layer!r}" if self.failure else ""
        return (
            f"Report({self.model}, input {self.batch_size} x {size}, {len(self.layers)} layers, "
            f"{self.totals.params:,} params, {self.totals.macs:,} MACs{failed})"
        )

    def to_table(
        self,
        width: int | None = None,
        *,
        columns: tuple[str, ...] | None = None,
        all_rows: bool = False,
    ) -> str:
        """The layer table as plain text at most `width` characters a line (default: `COLUMNS`
        or the terminal's), followed by the totals and highlights.

        Args:
            columns: keys of `render.LAYER_COLUMNS` to show (default: as many as fit).
            all_rows: also show the layers that pass their input through (Identity, eval-mode
                Dropout), which are otherwise hidden and counted below the table.
        """
        return render.table(self, width, columns=columns, all_rows=all_rows)

    def print(
        self,
        width: int | None = None,
        *,
        columns: tuple[str, ...] | None = None,
        all_rows: bool = False,
    ) -> None:
        """Print the layer table to stdout, fitted to the terminal (see `to_table`)."""
        render.print_table(self, width, columns=columns, all_rows=all_rows)

    def to_markdown(
        self, *, columns: tuple[str, ...] | None = None, all_rows: bool = False
    ) -> str:
        return render.markdown(self, columns=columns, all_rows=all_rows)

    def to_csv(self) -> str:
        return render.csv_text(self)

    def to_json(self, indent: int | None = 2) -> str:
        return render.json_text(self, indent)

    def to_dict(self) -> dict[str, Any]:
        return render.as_dict(self)

    def to_dataframe(self) -> Any:
        """The layers as a pandas DataFrame (needs pandas, which cnnzoo does not depend on)."""
        return render.dataframe(self)

    def explain(self) -> str:
        """The arithmetic of every layer, lecture style, then the totals."""
        from cnnzoo.analysis.explain import explain

        return explain(self)

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
        """Input sizes that make the rounded output-size divisions exact.

        Re-traces the network at inputs grown by 1, 2, ... pixels per spatial axis (up to 64).

        Returns:
            ({layer name: the smallest input (C, H, W) making that layer's division exact},
             the smallest input making every division exact, or None if none was found).
        """
        flagged = {r.name for r in self.all_layers if r.inexact}
        if not flagged or self._retrace is None:
            return {}, None
        found: dict[str, tuple[int, ...]] = {}
        overall: tuple[int, ...] | None = None
        channels, *spatial = self.input_size
        for grow in range(1, _EXACT_SEARCH + 1):
            size = (channels, *(s + grow for s in spatial))
            result = self._retrace(size)
            for row in result.rows:
                if row.name in flagged and row.name not in found and not row.inexact:
                    found[row.name] = size
            if (
                overall is None
                and result.failure is None
                and not any(r.inexact for r in result.rows)
            ):
                overall = size
            if overall is not None and len(found) == len(flagged):
                break
        return found, overall


def summary(
    model_or_name: nn.Module | str,
    input_size: tuple[int, ...] | None = None,
    *,
    batch_size: int = 1,
    dtype: torch.dtype = torch.float32,
    depth: int | None = None,
    mode: str = "eval",
) -> Report:
    """Explain a network layer by layer: shapes, parameters, MACs, FLOPs, memory, receptive field.

    Nothing is computed for real: the forward pass runs on meta tensors, so the time does not
    depend on the input size or batch, and the model (weights, batch-norm statistics, device,
    train/eval mode) is left untouched. A network that meta tensors cannot run is traced with a
    real forward pass instead, and the report says so.

    Args:
        model_or_name: a registered name (see `cnnzoo.list_models`) or any `nn.Module`.
        input_size: one input, (C, H, W); defaults to the registered spec's input.
        batch_size: inputs per batch.
        dtype: dtype of the input and of the floating-point parameters.
        depth: summarize layers nested deeper than this into their enclosing block.
        mode: "eval" (inference), or "train": the model in training mode (dropout active,
            batch norm on batch statistics) running its training forward, `forward_with_aux`
            where it has one (GoogLeNet's auxiliary heads). Meta tensors only.

    Returns:
        A `Report`; if the input is too small or shapes mismatch, its `failure` names the layer
        and its `layers` stop there.
    """
    model, name, input_size = _resolve(model_or_name, input_size)
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
    if mode not in ("eval", "train"):
        raise UsageError(f"mode must be 'eval' or 'train', got {mode!r}")
    training = mode == "train"
    notes: list[str] = []
    real = False
    result = trace(model, (batch_size, *input_size), dtype, training=training)
    if training and hasattr(model, "forward_with_aux"):
        notes.append("training mode: traced `forward_with_aux`, the auxiliary heads included")
    # A real forward in training mode would update the caller's batch-norm statistics.
    if (
        result.error is not None
        and meta_problem(result.error)
        and not _on_meta(model)
        and not training
    ):
        notes.append(
            f"meta tensors cannot run this network ({_first_line(result.error)}); shapes and "
            "counts come from a real forward pass"
        )
        real = True
        result = trace(model, (batch_size, *input_size), dtype, real=True)

    def retrace(size: tuple[int, ...]) -> TraceResult:
        return trace(model, (1, *size), dtype, real=real)

    failure = result.failure
    if failure is not None and failure.kind in ("input too small", "shape mismatch"):
        failure = _with_smallest_input(failure, input_size, retrace)
    if result.unknown_ops:
        ops = ", ".join(f"{op} (x{n})" for op, n in sorted(result.unknown_ops.items()))
        notes.append(f"no formula for: {ops}; counted as 0 FLOPs")
    lost = next((r for r in result.rows if r.rf is None and _spatial_input(r)), None)
    if lost is not None:
        prefix = "receptive field stops here: "
        why = next(
            (n.removeprefix(prefix) for n in lost.notes if n.startswith(prefix)),
            "it moves or mixes the spatial axes in a way the analyzer does not model",
        )
        notes.append(f"receptive field not followed past {lost.name} ({lost.type}): {why}")
    unused = sum(p.numel for p in result.params) - sum(r.params for r in result.rows)
    if unused and failure is None:
        notes.append(
            f"{unused:,} parameters are not used by the forward pass (e.g. auxiliary heads); "
            "they are in the parameter total but in no layer"
        )
    totals = compute_totals(
        result.rows,
        result.params,
        input_bytes=result.input_bytes,
        buffer_bytes=result.buffer_bytes,
        batch_size=batch_size,
    )
    device = "meta" if not real else str(_device(model))
    return Report(
        model=name,
        input_size=tuple(input_size),
        batch_size=batch_size,
        dtype=dtype,
        depth=depth,
        layers=at_depth(result.rows, result.parents, result.blocks, depth),
        totals=totals,
        output_rf=result.output_rf,
        failure=failure,
        notes=tuple(notes),
        traced_on=device,
        all_layers=result.rows,
        _retrace=retrace,
        mode=mode,
    )


def _resolve(
    model_or_name: nn.Module | str, input_size: tuple[int, ...] | None
) -> tuple[nn.Module, str, tuple[int, ...]]:
    from cnnzoo.analysis.counts import meta_model
    from cnnzoo.registry import get_spec, list_models

    if isinstance(model_or_name, str):
        spec = get_spec(model_or_name)
        return meta_model(model_or_name), spec.name, tuple(input_size or spec.input_size)
    if not isinstance(model_or_name, nn.Module):
        raise OptionError(
            f"expected a model name or an nn.Module, got {type(model_or_name).__name__}"
        )
    registered = getattr(model_or_name, "name", None)
    name = registered if isinstance(registered, str) else type(model_or_name).__name__
    if input_size is None:
        if not isinstance(registered, str) or registered not in list_models():
            raise UsageError(f"{name}: input_size is required for a model that is not registered")
        input_size = get_spec(registered).input_size
    return model_or_name, name, tuple(input_size)


def _spatial_input(row: LayerRecord) -> bool:
    return bool(row.input_shapes) and len(row.input_shapes[0]) > 2


def _on_meta(model: nn.Module) -> bool:
    tensors = [*model.parameters(), *model.buffers()]
    return bool(tensors) and all(t.is_meta for t in tensors)


def _device(model: nn.Module) -> torch.device:
    return next((t.device for t in [*model.parameters(), *model.buffers()]), torch.device("cpu"))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _with_smallest_input(
    failure: Failure, input_size: tuple[int, ...], retrace: Retrace
) -> Failure:
    """Add the smallest input that passes to a too-small or shape-mismatch failure.

    Inputs are square (C, s, s). Being too small is monotone in s, so a binary search finds the
    smallest s at which no window is too small; a network whose classifier expects one exact
    feature size (AlexNet's FC6) then needs a scan upwards from there, which gives up after
    `_MISMATCH_SEARCH` sizes or `_SEARCH_SECONDS`.
    """
    channels, *spatial = input_size

    def size_at(s: int) -> tuple[int, ...]:
        return (channels, *(s for _ in spatial))

    def too_small(s: int) -> bool:
        f = retrace(size_at(s)).failure
        return f is not None and f.kind == "input too small"

    hi = 1
    while too_small(hi):
        hi *= 2
        if hi > 1 << 15:
            return failure
    lo = hi // 2  # too_small(lo) or lo == 0; not too_small(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if too_small(mid) else (lo, mid)
    deadline = time.perf_counter() + _SEARCH_SECONDS
    later = None
    for s in range(hi, hi + _MISMATCH_SEARCH):
        result = retrace(size_at(s))
        if result.failure is None:
            size = size_at(s)
            return replace(
                failure,
                smallest_input=size,
                hint=f"the smallest input that passes is {'x'.join(map(str, size))}",
            )
        later = later or result.failure
        if time.perf_counter() > deadline:
            break
    hint = f"no input from {'x'.join(map(str, size_at(hi)))} up passes"
    if later is not None and hi > 1:
        hint += f"; from there on {later.layer} fails: {later.message}"
    return replace(failure, hint=hint)
