"""The one table renderer: every table cnnzoo prints, as text fitted to a width, Markdown, CSV
or JSON.

A `Table` is data: a title, columns, rows of raw values and footer lines. Text and Markdown show
each value through its column's `format`; CSV and JSON write the raw values, so numbers stay
numbers. The text form fits a width the way torchinfo and Keras do: columns marked optional
(`priority`) are added, in order, only while they fit; `elastic` columns (a layer name, a note)
give up width, the rightmost first, and their long cells are shortened with an ellipsis. No cell
is ever wrapped, so no word is ever split; footer prose is wrapped at spaces.

    from cnnzoo.table import Column, Table, render

    t = Table(
        columns=(
            Column("model", elastic=True),
            Column("params", align="right", format="{:,}".format),
        ),
        rows=(("resnet50", 25_557_032), ("vgg16", 138_357_544)),
        title="two models",
        footer=("params: all parameters, shared ones once",),
    )
    print(render(t, "table", width=80))   # or "markdown", "csv", "json"
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

ELLIPSIS = "…"
GAP = "  "  # between two columns of the text form
FORMATS = ("table", "markdown", "csv", "json")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Column:
    """One column.

    Attributes:
        header: the heading shown in text and Markdown.
        key: the field name in CSV and JSON (default: `header`).
        align: "left" or "right" (numbers).
        format: how a raw value is shown in text and Markdown (None shows as "").
        priority: None: always shown; otherwise an optional column, added in increasing priority
            while it fits the width.
        elastic: may be narrowed to `min_width`, its cells ellipsized.
        min_width: the narrowest an elastic column becomes.
        only_if_any: shown only when some row has a non-empty cell in it (notes).
    """

    header: str
    key: str = ""
    align: str = "left"
    format: Callable[[Any], str] = _text
    priority: int | None = None
    elastic: bool = False
    min_width: int = 8
    only_if_any: bool = False

    def __post_init__(self) -> None:
        if self.align not in ("left", "right"):
            raise ValueError(f"align must be 'left' or 'right', got {self.align!r}")

    @property
    def name(self) -> str:
        return self.key or self.header


@dataclass(frozen=True)
class Table:
    """A title, columns, rows of raw values (one per column) and footer lines."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    title: str = ""
    footer: tuple[str, ...] = ()
    # Text-form only: rows shown with these cells instead of the formatted values (the layer
    # tree's group rows, which name a block and leave the other cells empty).
    display: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"row {i} has {len(row)} cells for {len(self.columns)} columns")

    def select(self, names: Sequence[str]) -> Table:
        """The table with only the columns named (by key or header, any case), in that order;
        every one of them is shown whatever the width."""
        index = {}
        for i, c in enumerate(self.columns):
            index.setdefault(c.name.lower(), i)
            index.setdefault(c.header.lower(), i)
        unknown = [n for n in names if n.lower() not in index]
        if unknown:
            from cnnzoo.errors import UsageError

            valid = ", ".join(c.name for c in self.columns)
            raise UsageError(f"unknown column {', '.join(unknown)}; choose from {valid}")
        picked = [index[n.lower()] for n in names]
        return replace(
            self,
            columns=tuple(
                replace(self.columns[i], priority=None, only_if_any=False) for i in picked
            ),  # fmt: skip
            rows=tuple(tuple(row[i] for i in picked) for row in self.rows),
            display={k: tuple(v[i] for i in picked) for k, v in self.display.items()},
        )


def terminal_width(default: int = 80) -> int:
    """`COLUMNS` when set (as argparse and rich read it), else the terminal's, else `default`."""
    return shutil.get_terminal_size((default, 24)).columns


def ellipsize(text: str, width: int) -> str:
    """`text` cut to `width` characters, the last one an ellipsis when anything was cut."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + ELLIPSIS if width > 0 else ""


def render(table: Table, fmt: str = "table", width: int | None = None) -> str:
    """The table as "table" (text `width` columns wide; default the terminal's), "markdown",
    "csv" or "json"."""
    if fmt == "table":
        return to_text(table, width)
    if fmt == "markdown":
        return to_markdown(table)
    if fmt == "csv":
        return to_csv(table)
    if fmt == "json":
        return to_json(table)
    raise ValueError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")


# -- text ---------------------------------------------------------------------------------------


def _cells(table: Table) -> list[tuple[str, ...]]:
    return [
        table.display.get(i) or tuple(c.format(v) for c, v in zip(table.columns, row, strict=True))
        for i, row in enumerate(table.rows)
    ]


def _fit(columns: Sequence[Column], natural: Sequence[int], width: int) -> dict[int, int]:
    """Column index -> width: the always-shown columns, then the optional ones while they fit,
    elastic columns narrowed when the width is short."""

    def total(widths: dict[int, int]) -> int:
        return sum(widths.values()) + len(GAP) * max(len(widths) - 1, 0)

    shown = {i: natural[i] for i, c in enumerate(columns) if c.priority is None}
    optional = sorted((c.priority, i) for i, c in enumerate(columns) if c.priority is not None)
    for _, i in optional:
        room = width - total(shown) - (len(GAP) if shown else 0)
        c = columns[i]
        if natural[i] <= room:
            shown[i] = natural[i]
        elif c.elastic and min(c.min_width, natural[i]) <= room:
            shown[i] = room
    for i in sorted(shown, reverse=True):  # the rightmost elastic column gives first
        excess = total(shown) - width
        if excess <= 0:
            break
        c = columns[i]
        if c.elastic:
            shown[i] = max(min(c.min_width, natural[i]), shown[i] - excess)
    return dict(sorted(shown.items()))


def to_text(table: Table, width: int | None = None) -> str:
    """Plain text at most `width` characters a line: title, header, rows, footer."""
    width = width or terminal_width()
    cells = _cells(table)
    keep = [
        i for i, c in enumerate(table.columns)
        if not c.only_if_any or any(row[i] for row in cells)
    ]  # fmt: skip
    columns = [table.columns[i] for i in keep]
    cells = [tuple(row[i] for i in keep) for row in cells]
    natural = [max([len(c.header), *(len(row[j]) for row in cells)]) for j, c in enumerate(columns)]
    widths = _fit(columns, natural, width)

    def line(values: Sequence[str]) -> str:
        parts = []
        for j, w in widths.items():
            text = ellipsize(values[j], w)
            parts.append(text.rjust(w) if columns[j].align == "right" else text.ljust(w))
        return GAP.join(parts).rstrip()

    rule = "─" * min(width, sum(widths.values()) + len(GAP) * (len(widths) - 1))
    lines = _wrap(table.title, width) if table.title else []
    lines += [rule, line([c.header for c in columns]), rule]
    lines += [line(row) for row in cells]
    lines.append(rule)
    for text in table.footer:
        lines += _wrap(text, width)
    return "\n".join(ellipsize(x, width) for x in lines)


def _wrap(text: str, width: int) -> list[str]:
    """Prose wrapped at spaces, never inside a word; continuation lines indented."""
    return textwrap.wrap(
        text, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False
    ) or [""]


# -- data formats -------------------------------------------------------------------------------


def to_markdown(table: Table) -> str:
    """A GitHub table: the title in bold above it, the footer as a list below it."""
    lines = [f"**{table.title}**", ""] if table.title else []
    lines.append("| " + " | ".join(c.header for c in table.columns) + " |")
    lines.append("|" + "|".join("---:" if c.align == "right" else "---" for c in table.columns)
                 + "|")  # fmt: skip
    for row in _cells(table):
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in row) + " |")
    if table.footer:
        lines.append("")
        lines += [f"- {text}" for text in table.footer]
    return "\n".join(lines)


def to_csv(table: Table) -> str:
    """A header of column keys, then the raw values (None as empty); no title, no footer."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in table.columns])
    for row in table.rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue().rstrip("\n")


def to_json(table: Table, indent: int | None = 2) -> str:
    """{"title", "columns", "rows": [{key: raw value}], "footer"}."""
    keys = [c.name for c in table.columns]
    data = {
        "title": table.title,
        "columns": keys,
        "rows": [dict(zip(keys, row, strict=True)) for row in table.rows],
        "footer": list(table.footer),
    }
    return json.dumps(data, indent=indent, default=str)
