"""The zoo as people read it: the model table of `cnnzoo list` and the spec of `cnnzoo info`.

Parameters and MACs in the table are measured on the real (meta-device) model, not copied from
the spec, so the table shows what the code builds.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnzoo.analysis import count_macs, count_parameters, meta_model
from cnnzoo.formatting import format_count
from cnnzoo.registry import ModelSpec, get_spec, list_models
from cnnzoo.table import Column, Table, render

__all__ = ["ZooRow", "describe", "format_count", "measure", "render_rows", "zoo_rows"]


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


def _shape(size: tuple[int, ...]) -> str:
    return "x".join(map(str, size))


# Text and Markdown show the input as CxHxW and MACs as 15.5G; CSV and JSON the raw numbers.
_COLUMNS = (
    Column("model", elastic=True, min_width=10),
    Column("family", elastic=True),
    Column("paper", elastic=True),
    Column("year", align="right"),
    Column("input", format=_shape),
    Column("params", align="right", format="{:,}".format),
    Column("MACs", key="macs", align="right", format=format_count),
)


def zoo_table(rows: list[ZooRow]) -> Table:
    """The zoo as a `cnnzoo.table.Table`: one row per model."""
    return Table(
        columns=_COLUMNS,
        rows=tuple(
            (r.name, r.family, r.paper, r.year, r.input_size, r.params, r.macs) for r in rows
        ),
        title=f"cnnzoo: {len(rows)} models",
        footer=("MACs: multiply-accumulates of one forward pass at the input shown; "
                "FLOPs = 2 x MACs",),
    )  # fmt: skip


def render_rows(rows: list[ZooRow], fmt: str = "table", width: int | None = None) -> str:
    """Render the zoo table as a terminal table (`width`: default the terminal's), Markdown,
    CSV or JSON."""
    table = zoo_table(rows)
    if fmt == "markdown":  # a table to paste: no title, no footer
        table = Table(columns=table.columns, rows=table.rows)
    if fmt == "csv":  # the input as CxHxW there too
        table = Table(
            columns=table.columns,
            rows=tuple((*r[:4], _shape(r[4]), *r[5:]) for r in table.rows),
        )
    return render(table, fmt, width)


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
