"""`summary`: explain a network layer by layer; the report object and its exports.

The pipeline imports one way: records <- formulas <- trace <- input_search <- report. A `Report`
is data (`records.Analysis`) plus its renderings; it holds no model and cannot run one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnzoo.analysis import render
from cnnzoo.analysis.explain import explain
from cnnzoo.analysis.input_search import SEARCH_SECONDS, exact_inputs, smallest_input
from cnnzoo.analysis.records import Analysis, LayerRecord, at_depth, compute_totals
from cnnzoo.analysis.trace import meta_problem, trace
from cnnzoo.errors import OptionError, UsageError
from cnnzoo.meta import meta_model
from cnnzoo.registry import get_spec, list_models


class Report(Analysis):
    """The analysis of one network at one input size (see `records.Analysis` for the fields),
    with its renderings: terminal table, Markdown, CSV, JSON, pandas, and `explain`."""

    __slots__ = ()

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

    def to_markdown(self, *, columns: tuple[str, ...] | None = None, all_rows: bool = False) -> str:
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
        return explain(self)


def summary(
    model_or_name: nn.Module | str,
    input_size: tuple[int, ...] | None = None,
    *,
    batch_size: int = 1,
    dtype: torch.dtype = torch.float32,
    depth: int | None = None,
    find_exact_inputs: bool = False,
    search_seconds: float = SEARCH_SECONDS,
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
        find_exact_inputs: also search for the inputs that make every rounded output-size
            division exact (`Report.exact`; re-traces the network up to 64 times).
        search_seconds: the time bound of the search for the smallest input that passes, when
            the network rejects `input_size`.
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

    failure = result.failure
    if failure is not None and failure.kind in ("input too small", "shape mismatch"):
        failure = smallest_input(
            model, failure, input_size, dtype=dtype, real=real, seconds=search_seconds
        )
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
        where = f"{_display_name(lost)} ({lost.type})"
        notes.append(f"receptive field not followed past {where}: {why}")
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
    flagged = [r.name for r in result.rows if r.inexact]
    exact = (
        exact_inputs(model, input_size, flagged, dtype=dtype, real=real)
        if find_exact_inputs
        else None
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
        exact=exact,
        mode=mode,
    )


def _resolve(
    model_or_name: nn.Module | str, input_size: tuple[int, ...] | None
) -> tuple[nn.Module, str, tuple[int, ...]]:
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


def _display_name(row: LayerRecord) -> str:
    """A layer's name for a sentence: the model itself (a one-layer model) has the empty name."""
    return row.name or "the model itself"


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
