"""One self-contained HTML page per model: spec, diagram, layer table, totals and charts.

Everything is inline (CSS, the script, the Graphviz diagram and the charts as SVG), so a page opens
without network access and can be mailed around as one file. The layer table is the analyzer's
(`cnnzoo.summary`): one row per executed layer, sortable by clicking a header, with the `--explain`
arithmetic of a convolution or pooling layer on hover and in an expandable cell.

The page checks itself when it loads and writes the result into ``<pre id="selfcheck">`` (rows
in the table, whether sorting by parameters works, the errors caught), which is what the browser
test reads from headless Chromium.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from cnnzoo.analysis.explain import layer_lines
from cnnzoo.analysis.records import LayerRecord
from cnnzoo.analysis.render import axes, count, nbytes, shape
from cnnzoo.analysis.report import Report
from cnnzoo.registry import ModelSpec, get_spec, list_models
from cnnzoo.viz.diagram import PALETTE, Diagram, draw

# A diagram with more boxes or arrows than this is drawn at a smaller depth.
_MAX_NODES = 160
_MAX_EDGES = 260

_CSS = """
body{font:14px/1.4 system-ui,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;
color:#222;padding:0 16px}
h1{margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
.sub{color:#666;margin-top:4px}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
#layers th{cursor:pointer;position:sticky;top:0;background:#f7f7f7;user-select:none}
#layers th[aria-sort=ascending]::after{content:" \\25b2"}
#layers th[aria-sort=descending]::after{content:" \\25bc"}
.kind{display:inline-block;width:10px;height:10px;border:1px solid #888;margin-right:4px}
details pre,pre.explain{margin:4px 0;font-size:12px;background:#fafafa;padding:4px}
summary{cursor:pointer}
.diagram{overflow:auto;max-height:900px;border:1px solid #eee}
.charts{display:flex;flex-wrap:wrap;gap:24px}
.charts figure{margin:0}figcaption{color:#555;font-size:13px}
#selfcheck{display:none}
.grid{display:grid;grid-template-columns:max-content auto;gap:2px 16px}
"""

# Installed before anything else, so that every error (and console.error) is recorded.
_CATCH = """
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push(String(e.message || (e.target && e.target.src) || e));
}, true);
(function () {
  var original = console.error;
  console.error = function () {
    window.__errors.push(Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
"""

_SCRIPT = """
(function () {
  var table = document.getElementById('layers');
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function key(row, i, numeric) {
    var v = row.cells[i].getAttribute('data-v');
    return numeric ? parseFloat(v) : v;
  }
  function sortBy(i) {
    var th = headers[i];
    var numeric = th.classList.contains('n');
    var dir = th.getAttribute('aria-sort') === 'descending' ? 1 : -1;
    if (!th.hasAttribute('aria-sort') && !numeric) { dir = 1; }
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, i, numeric), y = key(b, i, numeric);
      var c = x < y ? -1 : x > y ? 1 : 0;
      return c ? c * dir : key(a, 0, true) - key(b, 0, true);
    });
    headers.forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
    rows.forEach(function (r) { body.appendChild(r); });
  }
  headers.forEach(function (th, i) {
    th.addEventListener('click', function () { sortBy(i); });
  });
  window.sortLayers = sortBy;

  // Self-check: sort by parameters (descending, then ascending), then restore layer order.
  var check = {rows: body.rows.length, expected: parseInt(table.getAttribute('data-layers'), 10)};
  try {
    var p = headers.findIndex(function (h) { return h.getAttribute('data-key') === 'params'; });
    function values() {
      return Array.prototype.map.call(body.rows, function (r) { return key(r, p, true); });
    }
    function ordered(v, sign) {
      for (var j = 1; j < v.length; j++) { if (sign * (v[j] - v[j - 1]) < 0) return false; }
      return true;
    }
    headers[p].click();
    var down = values();
    headers[p].click();
    var up = values();
    check.sortDescending = ordered(down, -1);
    check.sortAscending = ordered(up, 1);
    check.largestFirst = down[0] === Math.max.apply(null, down);
    headers[0].click();
    if (headers[0].getAttribute('aria-sort') !== 'ascending') { headers[0].click(); }
    check.restored = ordered(Array.prototype.map.call(body.rows, function (r) {
      return key(r, 0, true); }), 1);
  } catch (e) {
    window.__errors.push('self-check: ' + e);
  }
  check.errors = window.__errors;
  document.getElementById('selfcheck').textContent = JSON.stringify(check);
})();
"""


def report_html(name: str) -> str:
    """The HTML page of one registered model."""
    from cnnzoo.analysis import summary

    spec = get_spec(name)
    report = summary(name)
    diagram = _fitting_diagram(name)
    parts = [
        f"<h1>{_e(spec.name)}</h1>",
        f'<p class="sub">{_e(spec.summary)}</p>',
        _spec_section(spec),
        _totals_section(report),
        "<h2>Diagram</h2>",
        f"<p>{_diagram_caption(diagram)}</p>",
        f'<div class="diagram">{_inline_svg(diagram.svg())}</div>',
        "<h2>Growth through the network</h2>",
        '<div class="charts">',
        _figure(
            _rf_chart(report.all_layers),
            "Receptive field (pixels, first spatial axis) after each layer",
        ),
        _figure(
            _memory_chart(report.all_layers),
            f"Activation memory of each layer's output (batch {report.batch_size}, float32)",
        ),
        _figure(
            _zoo_chart(spec.name),
            "Where it sits in the zoo: parameters vs MACs per image "
            "(log-log, every registered model; this one in red)",
        ),
        "</div>",
        "<h2>Layers</h2>",
        "<p>One row per executed layer, as <code>cnnzoo summary</code> gives them. Click a "
        "header to sort; hover over (or expand) a convolution or pooling layer's name for its "
        "arithmetic.</p>",
        _layer_table(report),
    ]
    return _page(f"cnnzoo: {spec.name}", "\n".join(parts))


def write_report(name: str, out: str | Path) -> Path:
    """Write ``out/NAME.html`` and return its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.html"
    path.write_text(report_html(name), encoding="utf-8")
    return path


def write_reports(names: Sequence[str], out: str | Path) -> Path:
    """Write one page per model and ``out/index.html`` linking them; returns the index."""
    out = Path(out)
    for name in names:
        write_report(name, out)
    index = out / "index.html"
    index.write_text(index_html(names), encoding="utf-8")
    return index


def index_html(names: Iterable[str]) -> str:
    """The index page: every model with its paper, size and cost, and the zoo chart."""
    rows = []
    for name in names:
        s = get_spec(name)
        rows.append(
            f'<tr><td><a href="{_e(name)}.html">{_e(name)}</a></td><td>{_e(s.family)}</td>'
            f"<td>{s.paper.year}</td><td>{_e(s.paper.title)}</td>"
            f'<td class="n">{count(s.num_params)}</td><td class="n">{count(s.macs)}</td></tr>'
        )
    body = (
        "<h1>cnnzoo</h1><p class='sub'>The classic CNN architectures, one page each.</p>"
        + _figure(_zoo_chart(None), "Parameters vs MACs per image (log-log)")
        + "<table><thead><tr><th>model</th><th>family</th><th>year</th><th>paper</th>"
        "<th class='n'>params</th><th class='n'>MACs</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    return _page("cnnzoo: the zoo", body, script=False)


# -- sections ---------------------------------------------------------------------------------


def _spec_section(spec: ModelSpec) -> str:
    paper = spec.paper
    where = (
        f'<a href="https://arxiv.org/abs/{_e(paper.arxiv)}">arXiv {_e(paper.arxiv)}</a>'
        if paper.arxiv
        else _e(paper.venue or "")
    )
    results = "".join(
        f"<li>{_e(r.metric)}: {r.value:g}% <span class='sub'>({_e(r.source)})</span></li>"
        for r in spec.results
    )
    deviations = "".join(f"<li>{_e(d)}</li>" for d in spec.deviations) or "<li>none</li>"
    size = "x".join(map(str, spec.input_size))
    return (
        "<h2>Paper</h2>"
        f"<p><b>{_e(paper.title)}</b><br>{_e(paper.authors)}, {paper.year}, {where}</p>"
        f"<p>Family <b>{_e(spec.family)}</b>, input {size}, {spec.num_classes} classes "
        f"({_e(spec.dataset)}).</p>"
        f"<h3>Published results</h3><ul>{results or '<li>none recorded</li>'}</ul>"
        f"<h3>Deviations from the paper</h3><ul>{deviations}</ul>"
    )


def _totals_section(report: Report) -> str:
    t = report.totals
    rf = report.output_rf
    items = [
        ("parameters", f"{t.params:,} ({nbytes(t.param_bytes)})"),
        ("MACs", f"{t.macs:,} ({count(t.macs)})"),
        ("FLOPs", f"{t.flops:,} ({count(t.flops)})"),
        ("activations", nbytes(t.activation_bytes)),
        ("training step (Adam)", nbytes(t.training_bytes("adam"))),
        ("layers", f"{len(report.all_layers)}"),
        ("output receptive field", axes(rf.size) if rf is not None else "n/a"),
    ]
    cells = "".join(f"<div>{_e(k)}</div><div><b>{_e(v)}</b></div>" for k, v in items)
    size = "x".join(map(str, report.input_size))
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    return (
        f"<h2>Totals</h2><p>One input of {size}, batch {report.batch_size}.</p>"
        f'<div class="grid">{cells}</div>' + (f"<ul>{notes}</ul>" if notes else "")
    )


def _layer_table(report: Report) -> str:
    header = (
        ("#", "index", True),
        ("layer", "name", False),
        ("type", "type", False),
        ("output", "output", False),
        ("kernel / stride", "window", False),
        ("params", "params", True),
        ("MACs", "macs", True),
        ("activations", "activation_bytes", True),
        ("receptive field", "rf", True),
    )
    ths = "".join(
        f'<th data-key="{k}"{" class=n" if numeric else ""}>{_e(label)}</th>'
        for label, k, numeric in header
    )
    rows = [_layer_row(r, report.batch_size) for r in report.all_layers]
    return (
        f'<table id="layers" data-layers="{len(report.all_layers)}"><thead><tr>{ths}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _layer_row(r: LayerRecord, batch: int) -> str:
    w = r.window
    window = f"{axes(w.kernel)} / {axes(w.stride)}" if w is not None else ""
    if w is not None and w.groups and w.groups > 1:
        window += f", groups {w.groups}"
    out = shape(r.output_shape) if r.output_shape else ""
    rf = r.rf_size[0] if r.rf_size else 0
    name = _e(r.name)
    if w is not None:
        arithmetic = _e("\n".join(layer_lines(r, batch)))
        name = (
            f'<details title="{arithmetic}"><summary>{name}</summary>'
            f'<pre class="explain">{arithmetic}</pre></details>'
        )
    cells = [
        (r.index, str(r.index), True),
        (r.name, name, False),
        (r.type, _e(r.type), False),
        (out, _e(out), False),
        (window, _e(window), False),
        (r.params, f"{r.params:,}", True),
        (r.macs, f"{r.macs:,}", True),
        (r.activation_bytes, nbytes(r.activation_bytes), True),
        (rf, axes(r.rf_size) if r.rf_size else "", True),
    ]
    tds = "".join(
        f'<td data-v="{_e(str(v))}"{" class=n" if numeric else ""}>{text}</td>'
        for v, text, numeric in cells
    )
    return f"<tr>{tds}</tr>"


def _fitting_diagram(name: str) -> Diagram:
    """Every layer if the graph is small enough to read, else collapsed to a smaller depth."""
    diagram = draw(name)
    for depth in (3, 2, 1):
        if len(diagram.nodes) <= _MAX_NODES and len(diagram.edges) <= _MAX_EDGES:
            break
        diagram = draw(name, depth=depth)
    return diagram


def _diagram_caption(d: Diagram) -> str:
    level = "every layer" if d.depth is None else f"modules below depth {d.depth} collapsed"
    legend = " ".join(
        f'<span class="kind" style="background:{c}"></span>{k}'
        for k, c in PALETTE.items()
        if k not in ("input", "other")
    )
    return (
        f"Dataflow graph ({level}; {len(d.nodes)} boxes, {len(d.edges)} arrows). {legend}. "
        f"<code>cnnzoo draw {_e(d.model)}</code> renders it as SVG, PNG or PDF."
    )


# -- charts (inline SVG) ----------------------------------------------------------------------

_W, _H, _PAD = 540, 220, 64


def _axes_svg(xlabel: str, ylabel: str, yticks: list[tuple[float, str]]) -> list[str]:
    parts = [
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - 8}" y2="{_H - _PAD}" stroke="#888"/>',
        f'<line x1="{_PAD}" y1="8" x2="{_PAD}" y2="{_H - _PAD}" stroke="#888"/>',
        f'<text x="{(_W + _PAD) / 2}" y="{_H - 8}" font-size="11" text-anchor="middle">'
        f"{_e(xlabel)}</text>",
        f'<text x="12" y="{(_H - _PAD) / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {(_H - _PAD) / 2})">{_e(ylabel)}</text>',
    ]
    for y, label in yticks:
        parts.append(
            f'<text x="{_PAD - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{_e(label)}</text>"
        )
    return parts


def _svg(parts: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(label)}">{"".join(parts)}</svg>'
    )


def _rf_chart(rows: Sequence[LayerRecord]) -> str:
    points = [(r.index, r.rf_size[0]) for r in rows if r.rf_size]
    if not points:
        return _svg(_axes_svg("layer", "receptive field", []), "no receptive field")
    top = max(v for _, v in points) or 1
    n = max(len(rows) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return _PAD + (_W - 8 - _PAD) * i / n, _H - _PAD - (_H - _PAD - 8) * v / top

    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in points))
    parts = _axes_svg(
        "layer (execution order)", "pixels", [(xy(0, 0)[1], "0"), (xy(0, top)[1], f"{top:g}")]
    )
    parts.append(f'<polyline points="{line}" fill="none" stroke="#3182bd" stroke-width="1.5"/>')
    return _svg(parts, "receptive field growth")


def _memory_chart(rows: Sequence[LayerRecord]) -> str:
    top = max((r.activation_bytes for r in rows), default=0) or 1
    n = max(len(rows), 1)
    width = (_W - 8 - _PAD) / n
    parts = _axes_svg("layer (execution order)", "bytes", [(_H - _PAD, "0"), (8, nbytes(top))])
    for r in rows:
        if r.activation_bytes:
            h = (_H - _PAD - 8) * r.activation_bytes / top
            parts.append(
                f'<rect x="{_PAD + r.index * width:.2f}" y="{_H - _PAD - h:.1f}" '
                f'width="{max(width * 0.9, 0.5):.2f}" height="{h:.1f}" fill="#e6550d">'
                f"<title>{_e(r.name)}: {nbytes(r.activation_bytes)}</title></rect>"
            )
    return _svg(parts, "activation memory per layer")


def _zoo_chart(highlight: str | None) -> str:
    specs = [get_spec(n) for n in list_models()]
    xs = [math.log10(max(s.num_params, 1)) for s in specs]
    ys = [math.log10(max(s.macs, 1)) for s in specs]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)

    def xy(x: float, y: float) -> tuple[float, float]:
        return (
            _PAD + (_W - 16 - _PAD) * (x - x0) / ((x1 - x0) or 1),
            _H - _PAD - (_H - _PAD - 16) * (y - y0) / ((y1 - y0) or 1),
        )

    parts = _axes_svg(
        f"parameters (10^{x0:.1f} .. 10^{x1:.1f})",
        "MACs",
        [(xy(x0, y0)[1], f"10^{y0:.1f}"), (xy(x0, y1)[1], f"10^{y1:.1f}")],
    )
    for s, x, y in sorted(zip(specs, xs, ys, strict=True), key=lambda t: t[0].name == highlight):
        cx, cy = xy(x, y)
        here = s.name == highlight
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{6 if here else 3.5}" '
            f'fill="{"#de2d26" if here else "#9ecae1"}" stroke="#555" stroke-width="0.5">'
            f"<title>{_e(s.name)}: {count(s.num_params)} params, {count(s.macs)} MACs</title>"
            "</circle>"
        )
        if here:
            parts.append(
                f'<text x="{cx + 8:.1f}" y="{cy + 4:.1f}" font-size="11">{_e(s.name)}</text>'
            )
    return _svg(parts, "parameters vs MACs of every model")


# -- page ---------------------------------------------------------------------------------------


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"


def _inline_svg(svg: str) -> str:
    """Graphviz's SVG without the XML prolog and doctype, for embedding in HTML."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _page(title: str, body: str, script: bool = True) -> str:
    check = '<pre id="selfcheck"></pre>' if script else ""
    tail = f"<script>{_SCRIPT}</script>" if script else ""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><script>{_CATCH}</script><style>{_CSS}</style></head>"
        f"<body>{body}{check}{tail}</body></html>\n"
    )


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)
