"""Renderers of a report: terminal table (rich), Markdown, CSV, JSON and pandas.

Renderers only format what the records hold; they compute nothing but shares of totals.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from cnnzoo.analysis.records import LayerRecord

if TYPE_CHECKING:
    from cnnzoo.analysis.records import Analysis as Report

_COLUMNS = ("layer", "type", "output", "window", "params", "MACs", "FLOPs", "memory", "RF/stride",
            "notes")  # fmt: skip
_RIGHT = {"params", "MACs", "FLOPs", "memory", "RF/stride"}


# -- formatting helpers ----------------------------------------------------------------------


def count(n: int) -> str:
    """105_415_200 -> '105.4M'; keeps 4 significant figures; small numbers as they are."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{unit}"
    return str(n)


def nbytes(n: float) -> str:
    """Binary units: 1_161_600 -> '1.11 MiB'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            value = n / scale
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{digits}f} {unit}"
    return f"{int(n)} B"


def shape(s: tuple[int, ...], batch: bool = False) -> str:
    """(1, 96, 55, 55) -> '96x55x55' (the batch dimension dropped unless `batch`)."""
    dims = s if batch or len(s) < 2 else s[1:]
    return "x".join(map(str, dims)) if dims else "scalar"


def axes(values: tuple[Any, ...] | None) -> str:
    """(11, 11) -> '11'; (7, 1) -> '7x1'."""
    if values is None:
        return ""
    text = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return text[0] if len(set(text)) == 1 else "x".join(text)


def window(row: LayerRecord) -> str:
    w = row.window
    if w is None:
        return ""
    if w.is_adaptive:
        return f"adaptive {axes(w.out_size)}"
    text = (
        f"{axes(w.kernel)}x{axes(w.kernel)}"
        if len(set(w.kernel)) == 1 and len(w.kernel) == 2
        else axes(w.kernel)
    )
    text += f" s{axes(w.stride)} p{axes(w.padding)}"
    if any(d != 1 for d in w.dilation):
        text += f" d{axes(w.dilation)}"
    if w.groups not in (None, 1):
        text += f" g{w.groups}"
    if w.ceil_mode:
        text += " ceil"
    return text


def rf(row: LayerRecord) -> str:
    """'11/4': field size / effective stride; a global field (after flatten) shows its size."""
    if row.rf is None:
        return "?"
    if not row.rf.spatial:
        return axes(row.rf.size)
    return f"{axes(row.rf.size)}/{axes(row.rf.jump)}"


def flags(row: LayerRecord) -> str:
    marks = []
    if row.inexact:
        marks.append("not exact")
    if row.in_place:  # the output is an input tensor: written in place, or passed through
        marks.append("in-place" if row.flops else "passes input through")
    if row.shared_with:
        marks.append(f"shared with {', '.join(row.shared_with)}")
    marks += row.notes
    return "; ".join(marks)


def _params(row: LayerRecord) -> str:
    text = f"{row.params:,}"
    if row.shared_params:
        text += f" (+{row.shared_params:,} shared)"
    return text


def cells(row: LayerRecord, indent: bool = True) -> tuple[str, ...]:
    name = row.name or "(model)"
    return (
        ("  " * max(row.depth - 1, 0) if indent else "") + name,
        row.type,
        "; ".join(shape(s) for s in row.output_shapes),
        window(row),
        _params(row),
        count(row.macs),
        count(row.flops),
        nbytes(row.activation_bytes),
        rf(row),
        flags(row),
    )


# -- text blocks around the table ------------------------------------------------------------


def heading(report: Report) -> str:
    c_h_w = "x".join(map(str, report.input_size))
    traced = (
        "meta tensors" if report.traced_on == "meta" else f"a real forward on {report.traced_on}"
    )
    depth = f", depth {report.depth}" if report.depth is not None else ""
    return (
        f"{report.model}: input {report.batch_size} x {c_h_w} {_dtype(report)}"
        f" (traced on {traced}{depth})"
    )


def _dtype(report: Report) -> str:
    return str(report.dtype).removeprefix("torch.")


def totals_lines(report: Report) -> list[str]:
    t = report.totals
    lines = [
        f"Parameters: {t.params:,} (trainable {t.trainable_params:,}, frozen {t.frozen_params:,}"
        + (f", not used by forward {t.unused_params:,}" if t.unused_params else "")
        + ")",
        f"MACs (conv + linear): {t.macs:,} ({count(t.macs)}); "
        f"as FLOPs: 2 x MACs = {count(2 * t.macs)}",
        "Other FLOPs (norm, activations, pooling, adds): "
        f"{t.other_flops:,} ({count(t.other_flops)})",
        f"All FLOPs: {t.flops:,} ({count(t.flops)})",
        f"Memory: input {nbytes(t.input_bytes)}, activations {nbytes(t.activation_bytes)}, "
        f"parameters {nbytes(t.param_bytes)}, buffers {nbytes(t.buffer_bytes)}",
        f"Training estimate (batch {t.batch_size}): SGD {nbytes(t.training_bytes('sgd'))}, "
        f"SGD+momentum {nbytes(t.training_bytes('sgd_momentum'))}, "
        f"Adam {nbytes(t.training_bytes('adam'))}",
    ]
    out_rf = report.output_rf
    if out_rf is not None:
        lines.append(
            f"Receptive field of the output: {axes(out_rf.size)} pixels, padding included"
            + (f" (effective stride {axes(out_rf.jump)})" if out_rf.spatial else " (global)")
        )
    tops = report.highlights()
    if tops["params"]:
        lines.append(
            "Most parameters: " + ", ".join(f"{n} {v:,} ({s:.1%})" for n, v, s in tops["params"])
        )
    if tops["activations"]:
        lines.append(
            "Most activation memory: "
            + ", ".join(f"{n} {nbytes(v)} ({s:.1%})" for n, v, s in tops["activations"])
        )
    inexact = [r.name for r in report.all_layers if r.inexact]
    if inexact:
        lines.append(
            f"Not exact (output size rounded): {', '.join(inexact)}; "
            "`--explain` shows the arithmetic"
        )
    lines += [f"Note: {note}" for note in report.notes]
    if report.failure is not None:
        lines += failure_lines(report)
    return lines


def failure_lines(report: Report) -> list[str]:
    f = report.failure
    if f is None:
        return []
    shapes = ", ".join(shape(s, batch=True) for s in f.input_shapes)
    lines = [
        f"FAILED at {f.layer} ({f.type}{', ' + f.op if f.op else ''}) on input {shapes}: "
        f"{f.kind}: {f.message}"
    ]
    if f.hint:
        lines.append(f"Hint: {f.hint}")
    return lines


# -- renderers -------------------------------------------------------------------------------


def rich_table(report: Report) -> Table:
    """The layer table as a rich `Table` (for consoles that show colour and fit the width)."""
    t = Table(title=heading(report), title_justify="left")
    for column in _COLUMNS:
        t.add_column(column, justify="right" if column in _RIGHT else "left", overflow="fold")
    for row in report.layers:
        t.add_row(*cells(row))
    return t


def table(report: Report, width: int = 150) -> str:
    """The layer table as plain text `width` columns wide, then the totals."""
    console = Console(file=io.StringIO(), width=width, force_terminal=False)
    console.print(rich_table(report))
    text = console.file.getvalue().rstrip("\n")  # type: ignore[attr-defined]
    return "\n".join([text, *totals_lines(report)])


def print_table(report: Report, console: Console | None = None) -> None:
    """Print the table and totals to a rich console (stdout by default)."""
    # A pipe or file gets the plain 150-column table; a terminal its own width and colours.
    console = console or Console(width=None if sys.stdout.isatty() else 150)
    console.print(rich_table(report))
    for line in totals_lines(report):
        console.print(line, markup=False, highlight=False)


def markdown(report: Report) -> str:
    lines = [f"**{heading(report)}**", ""]
    lines.append("| " + " | ".join(_COLUMNS) + " |")
    lines.append("|" + "|".join("---:" if c in _RIGHT else "---" for c in _COLUMNS) + "|")
    for row in report.layers:
        lines.append(
            "| " + " | ".join(c.replace("|", "\\|") for c in cells(row, indent=False)) + " |"
        )
    lines.append("")
    lines += [f"- {line}" for line in totals_lines(report)]
    return "\n".join(lines)


_CSV_FIELDS = (
    "index", "name", "type", "depth", "kind", "input_shapes", "output_shapes", "kernel", "stride",
    "padding", "dilation", "groups", "ceil_mode", "params", "trainable_params", "frozen_params",
    "shared_params", "shared_with", "macs", "flops", "activation_bytes", "rf_size", "rf_stride",
    "rf_offset", "inexact", "in_place", "notes",
)  # fmt: skip


def layer_dict(row: LayerRecord) -> dict[str, Any]:
    """A record as plain data (lists and numbers), the form of JSON, CSV and DataFrame rows."""
    w = row.window
    return {
        "index": row.index,
        "name": row.name,
        "type": row.type,
        "depth": row.depth,
        "kind": row.kind,
        "input_shapes": [list(s) for s in row.input_shapes],
        "output_shapes": [list(s) for s in row.output_shapes],
        "kernel": list(w.kernel) if w else None,
        "stride": list(w.stride) if w else None,
        "padding": list(w.padding) if w else None,
        "dilation": list(w.dilation) if w else None,
        "groups": w.groups if w else None,
        "ceil_mode": w.ceil_mode if w else None,
        "params": row.params,
        "trainable_params": row.trainable_params,
        "frozen_params": row.frozen_params,
        "shared_params": row.shared_params,
        "shared_with": list(row.shared_with),
        "macs": row.macs,
        "flops": row.flops,
        "activation_bytes": row.activation_bytes,
        "rf_size": list(row.rf.size) if row.rf else None,
        "rf_stride": list(row.rf.jump) if row.rf else None,
        "rf_offset": list(row.rf.offset) if row.rf else None,
        "inexact": row.inexact,
        "in_place": row.in_place,
        "notes": list(row.notes),
    }


def as_dict(report: Report) -> dict[str, Any]:
    t = report.totals
    f = report.failure
    return {
        "model": report.model,
        "input_size": list(report.input_size),
        "batch_size": report.batch_size,
        "dtype": _dtype(report),
        "depth": report.depth,
        "traced_on": report.traced_on,
        "layers": [layer_dict(r) for r in report.layers],
        "totals": {
            "params": t.params,
            "trainable_params": t.trainable_params,
            "frozen_params": t.frozen_params,
            "unused_params": t.unused_params,
            "macs": t.macs,
            "flops": t.flops,
            "other_flops": t.other_flops,
            "input_bytes": t.input_bytes,
            "activation_bytes": t.activation_bytes,
            "param_bytes": t.param_bytes,
            "buffer_bytes": t.buffer_bytes,
            "training_bytes": {
                opt: t.training_bytes(opt) for opt in ("sgd", "sgd_momentum", "adam")
            },
        },
        "output_rf": None
        if report.output_rf is None
        else {"size": list(report.output_rf.size), "stride": list(report.output_rf.jump)},
        "failure": None
        if f is None
        else {
            "layer": f.layer,
            "type": f.type,
            "op": f.op,
            "input_shapes": [list(s) for s in f.input_shapes],
            "kind": f.kind,
            "message": f.message,
            "smallest_input": list(f.smallest_input) if f.smallest_input else None,
            "hint": f.hint,
        },
        "notes": list(report.notes),
    }


def json_text(report: Report, indent: int | None = 2) -> str:
    return json.dumps(as_dict(report), indent=indent)


def _csv_value(value: Any) -> Any:
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            return ";".join("x".join(map(str, v)) for v in value)
        return (
            "x".join(map(str, value))
            if value and not isinstance(value[0], str)
            else "; ".join(value)
        )
    return "" if value is None else value


def csv_text(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in report.layers:
        writer.writerow({k: _csv_value(v) for k, v in layer_dict(row).items()})
    return buffer.getvalue().rstrip("\n")


def dataframe(report: Report) -> Any:
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError("to_dataframe needs pandas: pip install pandas") from err
    return pd.DataFrame([layer_dict(r) for r in report.layers], columns=list(_CSV_FIELDS))
