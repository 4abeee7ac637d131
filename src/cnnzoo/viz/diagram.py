"""A network's dataflow graph: layers (or blocks, at a depth) as nodes, tensors as edges.

The edges come from `torch.fx` (every zoo model traces), with a module that has no children as a
leaf, which is exactly what the analyzer calls a layer; shapes, kernels, strides and groups come
from the analyzer's records of the same layers (`cnnzoo.summary`), matched by qualified name. A
functional call in a `forward` (LeNet-5's C3 connection table) is matched to the analyzer's
function record of the same owner and operation; calls with no record (non-tensor bookkeeping such
as FractalNet's column sampling) are left out and their edges pass through.

Nodes are coloured by what they compute, the same colour in every diagram: convolution, pooling,
normalization, activation, linear, merge (add / concatenate), regularization, shape, block.
Graphviz lays the graph out and renders it (the `graphviz` Python package and the Graphviz `dot`
binary).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch.fx as fx
from torch import nn

from cnnzoo.analysis.records import LayerRecord
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


class _LayerTracer(fx.Tracer):
    """Leaves are modules without children: the analyzer's layers."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return not m._modules


def draw(
    model_or_name: nn.Module | str,
    input_size: tuple[int, ...] | None = None,
    *,
    depth: int | None = None,
    focus: str | None = None,
) -> Diagram:
    """The dataflow graph of a network.

    Args:
        model_or_name: a registered name or an `nn.Module` that `torch.fx` can trace.
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
    graph = _LayerTracer().trace(module)
    modules = dict(module.named_modules())
    records = {r.name: r for r in report.all_layers}
    blocks = {r.name: r for r in report.layers if r.kind == "block"}
    functions = _function_records(report.all_layers)

    group_of: dict[fx.Node, str | None] = {}  # fx node -> diagram node name (None: elided)
    nodes: dict[str, Node] = {}
    calls: dict[str, int] = {}
    for fx_node in graph.nodes:
        name, kind, record = _layer_of(fx_node, modules, records, functions, calls)
        if name is None or isinstance(modules.get(str(fx_node.target)), nn.Identity):
            group_of[fx_node] = None  # bookkeeping, or a placeholder layer that does nothing
            continue
        group = _group(name, depth) if record is not None else name
        group_of[fx_node] = group
        if group in nodes:
            nodes[group] = replace(nodes[group], layers=nodes[group].layers + 1)
        elif group in blocks:
            nodes[group] = _block_node(len(nodes), blocks[group])
        else:
            nodes[group] = _layer_node(
                len(nodes), name, kind, record, report.input_size, modules.get(str(fx_node.target))
            )
    edges: dict[tuple[str, str], None] = {}
    for fx_node in graph.nodes:
        dst = group_of[fx_node]
        if dst is None:
            continue
        for src in _sources(fx_node, group_of):
            if src != dst:
                edges[(nodes[src].id, nodes[dst].id)] = None
    if focus is not None:
        nodes, edges = _focused(nodes, edges, focus)
    # A block's box says how many layers it stands for.
    ordered = tuple(
        replace(n, label=n.label.replace("{layers}", str(n.layers))) for n in nodes.values()
    )
    return Diagram(report.model, report.input_size, depth, focus, ordered, tuple(edges))


def _focused(
    nodes: dict[str, Node], edges: dict[tuple[str, str], None], focus: str
) -> tuple[dict[str, Node], dict[tuple[str, str], None]]:
    inside = {n.id for name, n in nodes.items() if name == focus or name.startswith(focus + ".")}
    if not inside:
        raise UsageError(f"no layer inside {focus!r} (names look like {list(nodes)[1]!r})")
    keep = inside | {a for a, b in edges if b in inside} | {b for a, b in edges if a in inside}
    kept_edges = {(a, b): None for a, b in edges if a in inside or b in inside}
    return {k: n for k, n in nodes.items() if n.id in keep}, kept_edges


def _function_records(rows: Iterable[LayerRecord]) -> dict[str, list[LayerRecord]]:
    """Function records by owner (the module whose forward made the call), in order."""
    out: dict[str, list[LayerRecord]] = {}
    for r in rows:
        if r.kind == "function":
            owner = r.name.rsplit(".", 1)[0] if "." in r.name.split("(")[0] else ""
            out.setdefault(owner, []).append(r)
    return out


def _layer_of(
    fx_node: fx.Node,
    modules: dict[str, nn.Module],
    records: dict[str, LayerRecord],
    functions: dict[str, list[LayerRecord]],
    calls: dict[str, int],
) -> tuple[str | None, str, LayerRecord | None]:
    """(diagram name, kind, analyzer record) of an fx node; name None for nodes left out."""
    if fx_node.op == "placeholder":
        return "input", "input", None
    if fx_node.op == "output":
        return "output", "input", None
    if fx_node.op == "call_module":
        target = str(fx_node.target)
        calls[target] = calls.get(target, 0) + 1
        name = target if calls[target] == 1 else f"{target}@{calls[target]}"
        return name, layer_kind(modules[target]), records.get(name)
    if fx_node.op in ("call_function", "call_method"):
        op = fx_node.target if fx_node.op == "call_method" else _op_name(fx_node.target)
        stack = list(fx_node.meta.get("nn_module_stack", {}).values())
        owner = stack[-1][0] if stack else ""
        queue = functions.get(owner, [])
        if queue and queue[0].type.rsplit(".", 1)[-1] == op:
            record = queue.pop(0)
            return record.name, _FUNCTION_KINDS.get(str(op), "other"), record
    return None, "other", None


def _op_name(target: object) -> str:
    known = {operator.add: "add", operator.mul: "mul", operator.iadd: "add"}
    return known.get(target, getattr(target, "__name__", str(target)))  # type: ignore[arg-type]


def _group(name: str, depth: int | None) -> str:
    parts = name.split("(")[0].split(".")
    if depth is None or len(parts) <= depth:
        return name
    return ".".join(parts[:depth])


def _sources(fx_node: fx.Node, group_of: dict[fx.Node, str | None]) -> list[str]:
    """The diagram nodes feeding `fx_node`, looking through nodes that were left out."""
    out: list[str] = []
    for parent in fx_node.all_input_nodes:
        group = group_of.get(parent)
        if group is not None:
            out.append(group)
        else:
            out.extend(_sources(parent, group_of))
    return out


def _shape(shape: tuple[int, ...] | None) -> str:
    return "\u00d7".join(map(str, shape[1:])) if shape else ""


def _layer_node(
    index: int,
    name: str,
    kind: str,
    record: LayerRecord | None,
    input_size: tuple[int, ...],
    module: nn.Module | None,
) -> Node:
    if record is None:  # the input or output
        text = f"input\n{'x'.join(map(str, input_size))}" if name == "input" else "output"
        return Node(f"n{index}", name, name, "input", text, 0)
    kind_type = record.type.rsplit(".", 1)[-1]
    lines = [name, kind_type]
    w = record.window
    if w is not None:
        geometry = f"{'x'.join(map(str, w.kernel))} /{'x'.join(map(str, w.stride))}"
        if w.groups and w.groups > 1:
            geometry += f", {_grouped(w.groups, module)}"
        lines[1] += f" {geometry}"
    elif isinstance(module, nn.Linear):
        lines[1] += f" {module.in_features}\u2192{module.out_features}"
    lines.append(_shape(record.output_shape))
    return Node(f"n{index}", name, record.type, kind, "\n".join(lines))


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


def _block_node(index: int, record: LayerRecord) -> Node:
    label = f"{record.name}\n{record.type} ({{layers}} layers)\n{_shape(record.output_shape)}"
    return Node(f"n{index}", record.name, record.type, "block", label)
