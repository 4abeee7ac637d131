"""The dataflow diagrams show the structures the lecture draws: towers, branches, shortcuts,
dense connectivity."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from torch import nn

from cnnzoo.viz import PALETTE, draw, layer_kind

pytest.importorskip("graphviz", reason="the viz extra is not installed")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is absent")


def test_alexnet_two_towers_are_grouped_convolutions():
    d = draw("alexnet")
    # input, 8 weight layers, 5 ReLUs, 3 pools, 2 LRNs, flatten, 2 dropouts, output
    assert (len(d.nodes), len(d.edges)) == (25, 24)
    assert not d.branches() and not d.merges()  # one chain: the towers are conv groups
    towers = [n.name for n in d.nodes if ", 2 groups of " in n.label]
    assert towers == ["features.conv2", "features.conv4", "features.conv5"]
    # the label is generic: conv2 of the paper is two towers of 48 -> 128 channels
    assert "5x5 /1x1, 2 groups of 48\u2192128" in d.node("features.conv2").label
    assert "Conv2d 11x11 /4x4" in d.node("features.conv1").label
    assert "96\u00d755\u00d755" in d.node("features.conv1").label


def test_googlenet_inception_module_has_four_branches():
    d = draw("googlenet", depth=2)
    assert (len(d.nodes), len(d.edges)) == (63, 89)
    branches = [f"inception3a.branch{i}" for i in range(1, 5)]
    assert d.successors("maxpool2") == branches
    assert d.predecessors("inception3a.concat") == branches
    assert d.node("inception3a.concat").kind == "merge"
    assert {n.kind for n in d.nodes if n.name in branches} == {"block"}
    assert len(d.merges()) == 9  # one concatenation per inception module


def test_resnet50_bottleneck_with_its_shortcut():
    d = draw("resnet50", focus="layer1.0")
    assert (len(d.nodes), len(d.edges)) == (15, 15)
    assert d.successors("maxpool") == ["layer1.0.conv1", "layer1.0.downsample.0"]
    assert sorted(d.predecessors("layer1.0.add")) == ["layer1.0.bn3", "layer1.0.downsample.1"]
    assert [n.name for n in d.merges()] == ["layer1.0.add"]
    full = draw("resnet50")
    assert len(full.merges()) == 16  # 3 + 4 + 6 + 3 bottlenecks, one add each


def test_densenet121_dense_block_connects_every_layer_to_every_later_one():
    d = draw("densenet121", depth=3, focus="features.denseblock1")
    layers = [f"features.denseblock1.denselayer{i}" for i in range(1, 7)]
    for i, name in enumerate(layers):
        assert sorted(d.predecessors(name)) == sorted(["features.pool0", *layers[:i]])
    concat = "features.denseblock1.concat"
    assert sorted(d.predecessors(concat)) == sorted(["features.pool0", *layers])
    # pool0 and the 6 layers feed every later layer and the concat: 7 + 6 + ... + 1, plus the
    # concat's edge out to the transition
    assert (len(d.nodes), len(d.edges)) == (9, 28 + 1)


def test_function_calls_are_nodes_and_bookkeeping_is_not():
    d = draw("lenet5")  # C3's connection table is index_select / mul / add in a forward
    assert any(n.type == "Tensor.index_select" for n in d.nodes)
    assert "c3.concat" in {n.name for n in d.merges()}


def test_kinds_come_from_types_and_colours_are_fixed():
    import torch.nn as nn

    from cnnzoo.layers import Concat

    assert layer_kind(nn.Conv2d(1, 1, 1)) == "conv"
    assert layer_kind(nn.ReLU()) == "activation"
    assert layer_kind(Concat()) == "merge"
    assert layer_kind(nn.Sequential(nn.ReLU())) == "block"
    assert set(PALETTE) >= {n.kind for n in draw("googlenet", depth=2).nodes}


@needs_dot
def test_save_renders_svg_png_pdf(tmp_path):
    d = draw("lenet5")
    for suffix, magic in ((".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF")):
        assert d.save(tmp_path / f"lenet{suffix}").read_bytes().startswith(magic)
    with pytest.raises(ValueError, match="svg, .png or .pdf"):
        d.save(tmp_path / "lenet.jpg")


@needs_dot
def test_cli_draw(tmp_path, capsys):
    from cnnzoo.cli import main

    out = tmp_path / "g.svg"
    assert main(["draw", "googlenet", "--depth", "1", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert "inception3a" in out.read_text()


def test_diagram_reads_the_records_not_a_second_trace():
    import ast

    import cnnzoo.viz.diagram as diagram

    tree = ast.parse(Path(diagram.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {
        f"{n.module}.{a.name}" if n.module else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom)
        for a in n.names
    }
    assert not [m for m in imported if m == "torch.fx" or m.startswith("torch.fx.")]


class _Branch(nn.Module):
    """stem -> (left | right: conv, identity) -> x + y -> relu."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.left = nn.Conv2d(8, 8, 3, padding=1)
        self.right = nn.Sequential(nn.Conv2d(8, 8, 1), nn.Identity())
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.stem(x)
        return self.relu(self.left(x) + self.right(x))


def _named_edges(d) -> list[tuple[str, str]]:
    by_id = {n.id: n.name for n in d.nodes}
    return [(by_id[a], by_id[b]) for a, b in d.edges]


def test_edges_are_the_records_producers():
    d = draw(_Branch(), (3, 8, 8))
    # the identity is left out: the add reads the 1x1 convolution through it
    assert [n.name for n in d.nodes] == [
        "input", "stem", "left", "right.0", "add()", "relu", "output"
    ]  # fmt: skip
    assert _named_edges(d) == [
        ("input", "stem"),
        ("stem", "left"),
        ("stem", "right.0"),
        ("left", "add()"),
        ("right.0", "add()"),
        ("add()", "relu"),
        ("relu", "output"),
    ]
    assert d.node("add()").kind == "merge"
    blocks = draw(_Branch(), (3, 8, 8), depth=1)
    assert "(2 layers)" in blocks.node("right").label  # the conv and the identity
    assert _named_edges(blocks)[1:5] == [
        ("stem", "left"),
        ("stem", "right"),
        ("left", "add()"),
        ("right", "add()"),
    ]
