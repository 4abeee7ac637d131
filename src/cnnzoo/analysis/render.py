"""Renderers of a report: the layer table (text fitted to the terminal, Markdown, CSV), JSON and
pandas, all through the one table renderer (`cnnzoo.table`) and the one number formatter
(`cnnzoo.formatting`).

Renderers only format what the records hold; they compute nothing but shares of totals.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cnnzoo.analysis.memory import activation_memory
from cnnzoo.analysis.records import LayerRecord
from cnnzoo.formatting import format_bytes, format_count
from cnnzoo.table import Column, Table, render, terminal_width, to_markdown, to_text

if TYPE_CHECKING:
    from cnnzoo.analysis.records import Analysis as Report

# The shared formatters under the names this module's callers use.
count = format_count
nbytes = format_bytes


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


# -- the layer table ---------------------------------------------------------------------------

# key -> column. Layer, type, output shape, params and MACs are always shown; the others join, in
# `priority` order, while the width allows (torchinfo's and Keras's compact default).
LAYER_COLUMNS = {
    "layer": Column("layer", elastic=True, min_width=12),
    "type": Column("type", elastic=True, min_width=8),
    "output": Column("output"),
    "window": Column("window", priority=3),
    "params": Column("params", align="right"),
    "macs": Column("MACs", key="macs", align="right"),
    "flops": Column("FLOPs", key="flops", align="right", priority=4),
    "memory": Column("memory", align="right", priority=2),
    "rf": Column("RF/stride", key="rf", align="right", priority=1),
    "notes": Column("notes", priority=5, elastic=True, min_width=12, only_if_any=True),
}


def cells(row: LayerRecord) -> tuple[str, ...]:
    """A record as the layer table's cells, in `LAYER_COLUMNS` order (the qualified name)."""
    return (
        row.name or "(model)",
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


def passes_through(row: LayerRecord) -> bool:
    """A layer that returns its input untouched (Identity, eval-mode Dropout): no arithmetic, no
    parameters, no new memory. The terminal table hides these unless asked for all rows."""
    return row.in_place and row.flops == 0 and row.params == 0 and row.shared_params == 0


def _tree(rows: tuple[LayerRecord, ...]) -> list[tuple[LayerRecord | None, str]]:
    """(record or None for a block heading, the layer cell): the qualified names as an indented
    tree; a block heading is written where a new enclosing name begins."""
    out: list[tuple[LayerRecord | None, str]] = []
    path: list[str] = []
    for row in rows:
        parts = row.name.split(".") if row.name else ["(model)"]
        *parents, leaf = parts
        same = 0
        while same < min(len(path), len(parents)) and path[same] == parents[same]:
            same += 1
        out += [(None, "  " * level + parents[level]) for level in range(same, len(parents))]
        path = parents
        out.append((row, "  " * len(parents) + leaf))
    return out


def layer_table(
    report: Report,
    *,
    columns: tuple[str, ...] | None = None,
    all_rows: bool = False,
    tree: bool = True,
) -> Table:
    """The report's layers as a `cnnzoo.table.Table`, the totals as its footer.

    Args:
        columns: keys of `LAYER_COLUMNS` to show, in order, whatever the width (default: the
            width decides, see `LAYER_COLUMNS`).
        all_rows: keep the layers that pass their input through (hidden by default and counted
            in the footer).
        tree: the layer column as an indented tree of the qualified names (else flat names).
    """
    hidden = [] if all_rows else [r for r in report.layers if passes_through(r)]
    shown = tuple(r for r in report.layers if all_rows or not passes_through(r))
    entries = _tree(shown) if tree else [(r, r.name or "(model)") for r in shown]
    rows, display = [], {}
    for i, (record, label) in enumerate(entries):
        if record is None:
            display[i] = (label, *("" for _ in range(len(LAYER_COLUMNS) - 1)))
            rows.append((label, *(None for _ in range(len(LAYER_COLUMNS) - 1))))
        else:
            rows.append((label, *cells(record)[1:]))
    footer = totals_lines(report)
    if hidden:
        types = ", ".join(dict.fromkeys(r.type for r in hidden))
        footer.append(
            f"{len(hidden)} layer(s) that pass their input through ({types}) are not shown; "
            "--all-rows shows them"
        )
    table = Table(
        columns=tuple(LAYER_COLUMNS.values()),
        rows=tuple(rows),
        title=heading(report),
        footer=tuple(footer),
        display=display,
    )
    return table.select(columns) if columns else table


# -- text blocks around the table ------------------------------------------------------------


def heading(report: Report) -> str:
    c_h_w = "x".join(map(str, report.input_size))
    traced = (
        "meta tensors" if report.traced_on == "meta" else f"a real forward on {report.traced_on}"
    )
    depth = f", depth {report.depth}" if report.depth is not None else ""
    mode = ", training mode" if report.mode == "train" else ""
    return (
        f"{report.model}: input {report.batch_size} x {c_h_w} {_dtype(report)}"
        f" (traced on {traced}{depth}{mode})"
    )


def _dtype(report: Report) -> str:
    return str(report.dtype).removeprefix("torch.")


def _both(n: int) -> str:
    """1_981_356_834_816 -> '1,981,356,834,816 (1.98T)'; small numbers once."""
    return f"{n:,}" if abs(n) < 1000 else f"{n:,} ({count(n)})"


def totals_lines(report: Report) -> list[str]:
    t = report.totals
    mem = activation_memory(report)
    lines = [
        f"Parameters: {_both(t.params)}: trainable {t.trainable_params:,}, frozen "
        f"{t.frozen_params:,}"
        + (f", not used by forward {t.unused_params:,}" if t.unused_params else ""),
        f"MACs (conv + linear): {_both(t.macs)}; as FLOPs: 2 x MACs = {count(2 * t.macs)}",
        f"Other FLOPs (norm, activations, pooling, adds): {_both(t.other_flops)}",
        f"All FLOPs: {_both(t.flops)}",
        f"Activations per image ({mem.definition}): {mem.values:,} values = "
        f"{nbytes(mem.bytes)}; backward keeps all of them",
        f"Memory (batch {t.batch_size}): input {nbytes(t.input_bytes)}, activations "
        f"{nbytes(t.activation_bytes)}, parameters {nbytes(t.param_bytes)}, buffers "
        f"{nbytes(t.buffer_bytes)}",
        f"Training estimate (batch {t.batch_size}): SGD {nbytes(t.training_bytes('sgd'))}, "
        f"SGD+momentum {nbytes(t.training_bytes('sgd_momentum'))}, "
        f"Adam {nbytes(t.training_bytes('adam'))}",
    ]
    out_rf = report.output_rf
    if out_rf is not None:
        lines.append(
            f"Receptive field of the output: {axes(out_rf.size)} pixels, padding included "
            f"(effective stride {axes(out_rf.jump)})"
            if out_rf.spatial
            else f"Receptive field of the output: global, {axes(out_rf.size)} pixels "
            "(every output depends on the whole input it reads)"
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


def table(
    report: Report,
    width: int | None = None,
    *,
    columns: tuple[str, ...] | None = None,
    all_rows: bool = False,
) -> str:
    """The layer table as plain text at most `width` characters a line (default: `COLUMNS` or
    the terminal's width), then the totals."""
    return to_text(layer_table(report, columns=columns, all_rows=all_rows), width)


def print_table(
    report: Report,
    width: int | None = None,
    *,
    columns: tuple[str, ...] | None = None,
    all_rows: bool = False,
) -> None:
    """Print the table and totals to stdout, fitted to the terminal."""
    print(table(report, width or terminal_width(), columns=columns, all_rows=all_rows))


def markdown(
    report: Report, *, columns: tuple[str, ...] | None = None, all_rows: bool = False
) -> str:
    """Every column (or `columns`), flat qualified names, the totals as a list."""
    t = layer_table(report, columns=columns or tuple(LAYER_COLUMNS), all_rows=all_rows,
                    tree=False)  # fmt: skip
    return to_markdown(t)


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
        "mode": report.mode,
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
    """One line per layer, every field of `layer_dict` (lists as 'AxB' or '; '-joined)."""
    columns = tuple(Column(key) for key in _CSV_FIELDS)
    rows = tuple(tuple(_csv_value(v) for v in layer_dict(r).values()) for r in report.layers)
    return render(Table(columns=columns, rows=rows), "csv")


def dataframe(report: Report) -> Any:
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError("to_dataframe needs pandas: pip install pandas") from err
    return pd.DataFrame([layer_dict(r) for r in report.layers], columns=list(_CSV_FIELDS))
