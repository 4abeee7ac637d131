"""The zoo as people read it: the model table of `cnnzoo list` and the spec of `cnnzoo info`.

Parameters and MACs in the table are measured on the real (meta-device) model, not copied from
the spec, so the table shows what the code builds.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from cnnzoo.analysis import count_macs, count_parameters, meta_model
from cnnzoo.errors import UsageError
from cnnzoo.registry import ModelSpec, get_spec, list_models


@dataclass(frozen=True)
class ZooRow:
    name: str
    family: str
    paper: str
    year: int
    input_size: tuple[int, int, int]
    params: int
    macs: int


def measure(name: str) -> ZooRow:
    """Build the model on the meta device and count its parameters and MACs."""
    spec = get_spec(name)
    model = meta_model(name)
    authors = spec.paper.authors.split(",")[0].strip()
    et_al = " et al." if "," in spec.paper.authors else ""
    return ZooRow(
        name=name,
        family=spec.family,
        paper=f"{authors}{et_al}",
        year=spec.paper.year,
        input_size=spec.input_size,
        params=count_parameters(model),
        macs=count_macs(model, spec.input_size),
    )


def zoo_rows(pattern: str | None = None) -> list[ZooRow]:
    return [measure(name) for name in list_models(pattern)]


_HEADERS = ("model", "family", "paper", "year", "input", "params", "MACs")


def _cells(row: ZooRow) -> tuple[str, ...]:
    c, h, w = row.input_size
    return (
        row.name,
        row.family,
        row.paper,
        str(row.year),
        f"{c}x{h}x{w}",
        f"{row.params:,}",
        format_count(row.macs),
    )


def format_count(n: int) -> str:
    """1_814_073_344 -> '1.81 G'; keeps three significant figures."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return str(n)


def render_rows(rows: list[ZooRow], fmt: str = "table") -> str:
    """Render the zoo table as a terminal table, Markdown, CSV or JSON."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("model", "family", "paper", "year", "input", "params", "macs"))
        for r in rows:
            c, h, w = r.input_size
            writer.writerow((r.name, r.family, r.paper, r.year, f"{c}x{h}x{w}", r.params, r.macs))
        return buffer.getvalue().rstrip("\n")
    if fmt == "json":  # the shape of main's cnnzoo.table JSON: {"title", "columns", "rows"}
        import json

        keys = ["model", "family", "paper", "year", "input", "params", "macs"]
        values = [(r.name, r.family, r.paper, r.year, list(r.input_size), r.params, r.macs)
                  for r in rows]  # fmt: skip
        data = {
            "title": f"cnnzoo: {len(rows)} models",
            "columns": keys,
            "rows": [dict(zip(keys, v, strict=True)) for v in values],
        }
        return json.dumps(data, indent=2)
    if fmt == "markdown":
        lines = ["| " + " | ".join(_HEADERS) + " |", "|---|---|---|---:|---|---:|---:|"]
        lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
        return "\n".join(lines)
    if fmt != "table":
        raise UsageError(f"unknown format {fmt!r}; use table, markdown, csv or json")
    table = Table(title=f"cnnzoo: {len(rows)} models", title_justify="left")
    for header in _HEADERS:
        table.add_column(header, justify="right" if header in ("params", "MACs") else "left")
    for r in rows:
        table.add_row(*_cells(r))
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    console.print(table)
    return console.file.getvalue().rstrip("\n")


def describe(name: str) -> str:
    """The spec of one model as readable text."""
    spec: ModelSpec = get_spec(name)
    c, h, w = spec.input_size
    lines = [
        f"{spec.name}: {spec.summary}",
        f"  family:      {spec.family}",
        f"  paper:       {spec.paper.cite()}",
        f"  input:       {c}x{h}x{w} ({spec.dataset}, {spec.num_classes} classes)",
        f"  parameters:  {spec.num_params:,}",
        f"  MACs:        {spec.macs:,} ({format_count(spec.macs)}; FLOPs = 2 x MACs)",
        f"  torchvision: {spec.torchvision_name or 'none (no torchvision equivalent)'}",
    ]
    if spec.aux_loss_weight:
        lines.append(f"  auxiliary heads: loss weight {spec.aux_loss_weight} in training")
    overrides = ", ".join(
        f"{k}={p.default!r}" for k, p in spec.overrides().items() if p.default is not p.empty
    )
    lines.append(f"  overrides:   {overrides}")
    if spec.results:
        lines.append("  published results (%):")
        lines += [f"    {r.metric} = {r.value:g}  [{r.source}]" for r in spec.results]
    if spec.deviations:
        lines.append("  deviations from the paper:")
        lines += [f"    - {d}" for d in spec.deviations]
    return "\n".join(lines)
