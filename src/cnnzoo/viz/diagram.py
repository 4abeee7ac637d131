"""A network's dataflow graph: layers (or blocks, at a depth) as nodes, tensors as edges.

Nodes and edges come from the analyzer's records alone (`cnnzoo.summary`): one node per record
of `report.layers` (a block's record, at a depth, stands for the layers it merges), and an edge
from each of a record's `producers` (the rows whose outputs it reads) to it; a block's producers
are the rows outside it that its layers read. Shapes, kernels, strides and groups are the same
records'. A functional call in a `forward` (LeNet-5's C3 connection table) has a record of its
own, so it is a node; non-tensor bookkeeping (FractalNet's column sampling) has none. Layers that
do nothing (`nn.Identity`) are left out and their edges pass through. The output node is fed by
the rows whose outputs no other row reads.

Nodes are coloured by what they compute, the same colour in every diagram: convolution, pooling,
normalization, activation, linear, merge (add / concatenate), regularization, shape, block.
Graphviz lays the graph out and renders it (the `graphviz` Python package and the Graphviz `dot`
binary).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from cnnzoo.analysis.records import INPUT, LayerRecord
from cnnzoo.errors import UsageError
from cnnzoo.layers import Add, Concat, DropPath, LocalResponseNorm

if TYPE_CHECKING:
    import graphviz

# (kind, fill colour); one palette for every diagram and the HTML report.
PALETTE = {
    "input": "#ffffff",
    "conv": "#9ecae1",
    "pool": "#fdd0a2",
    "norm": "#dadaeb",
    "activation": "#c7e9c0",
    "linear": "#fcbba1",
    "merge": "#ffeda0",
    "regularization": "#f0f0f0",
    "shape": "#f0f0f0",
    "block": "#d9d9d9",
    "other": "#ffffff",
}

_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (nn.modules.conv._ConvNd, "conv"),
    (
        (
            nn.modules.pooling._MaxPoolNd,
            nn.modules.pooling._AvgPoolNd,
            nn.modules.pooling._AdaptiveAvgPoolNd,
            nn.modules.pooling._AdaptiveMaxPoolNd,
        ),
        "pool",
    ),
    (
        (
            nn.modules.batchnorm._NormBase,
            nn.LocalResponseNorm,
            LocalResponseNorm,
            nn.GroupNorm,
            nn.LayerNorm,
        ),
        "norm",
    ),
    (nn.Linear, "linear"),
    ((Add, Concat), "merge"),
    ((nn.modules.dropout._DropoutNd, DropPath), "regularization"),
    ((nn.Flatten, nn.Identity, nn.Unflatten), "shape"),
)
_FUNCTION_KINDS = {"add": "merge", "cat": "merge", "mul": "other"}


def layer_kind(module: nn.Module | None) -> str:
    """The colour family of a layer, by its type (never by its class name)."""
    if module is None:
        return "other"
    for types, kind in _KINDS:
        if isinstance(module, types):
            return kind
    if type(module).__module__ == nn.modules.activation.__name__:
        return "activation"
    return "block" if module._modules else "other"


@dataclass(frozen=True)
class Node:
    """One box of the diagram.

    Attributes:
        id: Graphviz node id.
        name: qualified module name (a block's, when collapsed), "input" or "output".
        type: module class or operation.
        kind: colour family (see `PALETTE`).
        label: the text in the box.
        layers: how many analyzer layers the node stands for.
    """

    id: str
    name: str
    type: str
    kind: str
    label: str
    layers: int = 1


@dataclass(frozen=True)
class Diagram:
    """A network's dataflow graph; `save` renders it with Graphviz."""

    model: str
    input_size: tuple[int, ...]
    depth: int | None
    focus: str | None
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def successors(self, name: str) -> list[str]:
        by_id = {n.id: n.name for n in self.nodes}
        return [by_id[b] for a, b in self.edges if by_id[a] == name]

    def predecessors(self, name: str) -> list[str]:
        by_id = {n.id: n.name for n in self.nodes}
        return [by_id[a] for a, b in self.edges if by_id[b] == name]

    def branches(self) -> list[Node]:
        """Nodes whose output feeds more than one node (forks)."""
        return [n for n in self.nodes if len(self.successors(n.name)) > 1]

    def merges(self) -> list[Node]:
        """Nodes with more than one input (residual adds, concatenations)."""
        return [n for n in self.nodes if len(self.predecessors(n.name)) > 1]

    def to_graphviz(self) -> graphviz.Digraph:
        """The graph as a `graphviz.Digraph` (top to bottom, with a colour legend)."""
        import graphviz

        size = "x".join(map(str, self.input_size))
        depth = f", depth {self.depth}" if self.depth is not None else ""
        depth += f", inside {self.focus}" if self.focus else ""
        graph = graphviz.Digraph(self.model, format="svg")
        graph.attr(rankdir="TB", nodesep="0.25", ranksep="0.3", fontname="Helvetica")
        graph.attr(label=_legend(f"{self.model}, input {size}{depth}"), labelloc="t")
        graph.attr(
            "node",
            shape="box",
            style="rounded,filled",
            fontname="Helvetica",
            fontsize="10",
            margin="0.08,0.04",
            height="0.3",
        )
        graph.attr("edge", arrowsize="0.6", color="#555555")
        for n in self.nodes:
            extra = {"penwidth": "2"} if n.kind == "block" else {}
            graph.node(n.id, n.label, fillcolor=PALETTE[n.kind], tooltip=n.name, **extra)
        for a, b in self.edges:
            graph.edge(a, b)
        return graph

    @property
    def source(self) -> str:
        """The Graphviz dot source."""
        return self.to_graphviz().source

    def svg(self) -> str:
        """The rendered SVG text."""
        return _render(self.to_graphviz(), "svg").decode()

    def save(self, path: str | Path) -> Path:
        """Render to `path`; the format follows its suffix (.svg, .png or .pdf)."""
        path = Path(path)
        fmt = path.suffix.lstrip(".").lower()
        if fmt not in ("svg", "png", "pdf"):
            raise UsageError(f"the diagram is written as .svg, .png or .pdf, not {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_render(self.to_graphviz(), fmt))
        return path


def _render(graph, fmt: str) -> bytes:
    """Graphviz's output; a missing `dot` program is the user's to install, not a bug."""
    import graphviz

    try:
        return graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise UsageError(
            "drawing needs the Graphviz program `dot`, which is not installed here: install "
            "Graphviz (apt install graphviz, brew install graphviz or conda install graphviz)"
        ) from None


def _legend(title: str) -> str:
    cells = "".join(
        f'<td bgcolor="{colour}" border="1"> {kind} </td>'
        for kind, colour in PALETTE.items()
        if kind not in ("input", "other", "shape")
    )
    return (
        f'<<table border="0" cellspacing="2"><tr><td colspan="9"><b>{title}</b></td></tr>'
        f"<tr>{cells}</tr></table>>"
    )


def draw(
    model_or_name: nn.Module | str,
    input_size: tuple[int, ...] | None = None,
    *,
    depth: int | None = None,
    focus: str | None = None,
) -> Diagram:
    """The dataflow graph of a network.

    Args:
        model_or_name: a registered name or an `nn.Module`.
        input_size: one input (C, H, W); defaults to the spec's.
        depth: collapse modules nested deeper than this into their enclosing block (as
            `cnnzoo.summary(depth=...)` does); None draws every layer.
        focus: draw only the layers inside this module (e.g. ``"layer1.0"``), with the nodes
            that feed it and that it feeds.

    Returns:
        A `Diagram`; `.save("net.svg")` renders it.
    """
    from cnnzoo.analysis import summary
    from cnnzoo.meta import meta_model

    report = summary(model_or_name, input_size, depth=depth)
    if report.failure is not None:
        f = report.failure
        raise UsageError(f"{report.model} does not run at this input: {f.layer}: {f.message}")
    module = meta_model(model_or_name) if isinstance(model_or_name, str) else model_or_name
    modules = dict(module.named_modules())
    rows = report.layers  # rows[i].index == i; a block's producers are rows outside it
    size = "x".join(map(str, report.input_size))
    nodes = {INPUT: Node("n0", "input", "input", "input", f"input\n{size}", 0)}
    for r in rows:
        # The module a row calls; a repeated call is named `name@2` (read as `bench.profile` does).
        layer = modules.get(r.name.split("@")[0]) if r.kind == "module" else None
        if r.kind == "block":
            nodes[r.index] = _block_node(f"n{len(nodes)}", r)
        elif not isinstance(layer, nn.Identity):
            nodes[r.index] = _layer_node(f"n{len(nodes)}", r, layer)

    def feeding(i: int) -> list[int]:
        """The nodes standing for row `i`'s output: itself, or what a left-out row passes on."""
        return [i] if i in nodes else [n for p in rows[i].producers for n in feeding(p)]

    edges: dict[tuple[str, str], None] = {}
    for r in rows:
        if r.index in nodes:
            for p in r.producers:
                edges.update(((nodes[n].id, nodes[r.index].id), None) for n in feeding(p))
    output = Node(f"n{len(nodes)}", "output", "output", "input", "output", 0)
    read = {p for r in rows for p in r.producers}
    for r in rows:
        if r.index not in read:
            edges.update(((nodes[n].id, output.id), None) for n in feeding(r.index))
    kept = [*nodes.values(), output]
    if focus is not None:
        kept, edges = _focused(kept, edges, focus)
    return Diagram(report.model, report.input_size, depth, focus, tuple(kept), tuple(edges))


def _focused(
    nodes: list[Node], edges: dict[tuple[str, str], None], focus: str
) -> tuple[list[Node], dict[tuple[str, str], None]]:
    inside = {n.id for n in nodes if n.name == focus or n.name.startswith(focus + ".")}
    if not inside:
        raise UsageError(f"no layer inside {focus!r} (names look like {nodes[1].name!r})")
    keep = inside | {a for a, b in edges if b in inside} | {b for a, b in edges if a in inside}
    kept_edges = {(a, b): None for a, b in edges if a in inside or b in inside}
    return [n for n in nodes if n.id in keep], kept_edges


def _shape(shape: tuple[int, ...] | None) -> str:
    return "\u00d7".join(map(str, shape[1:])) if shape else ""


def _layer_node(node_id: str, record: LayerRecord, module: nn.Module | None) -> Node:
    op = record.type.rsplit(".", 1)[-1]
    kind = layer_kind(module) if record.kind == "module" else _FUNCTION_KINDS.get(op, "other")
    lines = [record.name, op]
    w = record.window
    if w is not None:
        geometry = f"{'x'.join(map(str, w.kernel))} /{'x'.join(map(str, w.stride))}"
        if w.groups and w.groups > 1:
            geometry += f", {_grouped(w.groups, module)}"
        lines[1] += f" {geometry}"
    elif isinstance(module, nn.Linear):
        lines[1] += f" {module.in_features}\u2192{module.out_features}"
    lines.append(_shape(record.output_shape))
    return Node(node_id, record.name, record.type, kind, "\n".join(lines))


def _grouped(groups: int, module: nn.Module | None) -> str:
    """A grouped convolution, whatever network it is in: AlexNet's two towers are 2 groups,
    ResNeXt's cardinality 32 groups, a depthwise convolution one group per channel."""
    channels = getattr(module, "in_channels", None), getattr(module, "out_channels", None)
    if None in channels:
        return f"{groups} groups"
    cin, cout = channels
    if groups == cin:
        return f"depthwise, {groups} groups"
    return f"{groups} groups of {cin // groups}\u2192{cout // groups}"


def _block_node(node_id: str, record: LayerRecord) -> Node:
    label = f"{record.name}\n{record.type} ({record.layers} layers)\n{_shape(record.output_shape)}"
    return Node(node_id, record.name, record.type, "block", label, record.layers)
