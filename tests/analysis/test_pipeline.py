"""The analyzer's structure: a one-way import graph, a report that is data, producers per row."""

from __future__ import annotations

import ast
import dataclasses
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.analysis import INPUT, summary
from cnnzoo.analysis.records import Analysis

SRC = Path(cnnzoo.__file__).parent
# Each module of the pipeline imports only modules of lower rank.
RANKS = {
    "receptive_field": 0,
    "formulas": 1,
    "records": 2,
    "trace": 3,
    "input_search": 4,
    "render": 4,
    "explain": 5,
    "report": 6,
    "counts": 7,
}


def _imports(path: Path) -> set[str]:
    """Every cnnzoo module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnnzoo"):
            if node.module == "cnnzoo.analysis":  # `from cnnzoo.analysis import render`
                found.update(f"{node.module}.{a.name}" for a in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cnnzoo"))
    return found


# Modules above the analyzer: nothing in it may import them.
ABOVE = ("cnnzoo", "cnnzoo.analysis", "cnnzoo.cli", "cnnzoo.viz", "cnnzoo.zoo", "cnnzoo.bench",
         "cnnzoo.train", "cnnzoo.comparison", "cnnzoo.export", "cnnzoo.interop")  # fmt: skip


def _above(target: str) -> bool:
    return target in ABOVE[:2] or any(target.startswith(a) for a in ABOVE[2:])


def test_the_pipeline_imports_one_way() -> None:
    for name, rank in RANKS.items():
        for target in _imports(SRC / "analysis" / f"{name}.py"):
            parts = target.split(".")
            if parts[:2] == ["cnnzoo", "analysis"] and len(parts) > 2 and parts[2] in RANKS:
                assert RANKS[parts[2]] < rank, f"analysis.{name} imports {target}"
            assert not _above(target), f"analysis.{name} imports {target}"


def test_no_import_cycle_in_the_analyzer() -> None:
    """Lazy and type-checking imports included: a cycle of any kind is a tangle to a reader."""
    paths = {f"cnnzoo.analysis.{p.stem}": p for p in (SRC / "analysis").glob("*.py")}
    paths["cnnzoo.meta"] = SRC / "meta.py"
    graph = {
        name: {t for t in _imports(path) if t in paths and t != name}
        for name, path in paths.items()
    }
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        assert name not in chain, " -> ".join((*chain, name))
        if name not in done:
            for target in graph[name]:
                visit(target, (*chain, name))
            done.add(name)

    for name in graph:
        visit(name, ())


def test_renderers_and_explain_read_records_only() -> None:
    for name in ("render", "explain"):
        for target in _imports(SRC / "analysis" / f"{name}.py"):
            assert target.split(".")[-1] not in ("report", "counts", "trace", "input_search"), (
                name,
                target,
            )


def test_meta_model_lives_beside_the_registry() -> None:
    assert _imports(SRC / "meta.py") <= {"cnnzoo.registry", "cnnzoo.registry.create_model"}
    from cnnzoo.analysis import meta_model
    from cnnzoo.meta import meta_model as beside

    assert meta_model is beside
    assert all(p.is_meta for p in meta_model("lenet5").parameters())


def test_a_report_is_data() -> None:
    report = summary("resnet18", (3, 64, 64), depth=2, find_exact_inputs=True)
    assert isinstance(report, Analysis)
    for f in dataclasses.fields(report):
        value = getattr(report, f.name)
        assert not callable(value) and not isinstance(value, nn.Module), f.name
    copy = pickle.loads(pickle.dumps(report))
    assert copy == report and copy.to_csv() == report.to_csv()


def test_explain_without_the_search_says_how_to_run_it() -> None:
    report = summary("zfnet")
    assert report.exact is None
    assert "find_exact_inputs=True" in report.explain()
    with pytest.raises(ValueError, match="find_exact_inputs"):
        report.exact_inputs()
    exact, _ = summary("zfnet", find_exact_inputs=True).exact_inputs()
    assert exact["features.conv1"] == (3, 225, 225)


def _row(report, name):
    (row,) = [r for r in report.all_layers if r.name == name]
    return row


def test_producers_of_a_residual_block() -> None:
    report = summary("resnet18")
    rows = report.all_layers
    add = _row(report, "layer1.0.add")
    # The add reads the block's last batch norm and the shortcut: the block's input.
    assert [rows[i].name for i in add.producers] == ["layer1.0.bn2", "maxpool"]
    down = _row(report, "layer2.0.add")
    assert {rows[i].name for i in down.producers} == {"layer2.0.bn2", "layer2.0.downsample.1"}
    assert rows[0].producers == (INPUT,)
    for row in rows:
        assert row.producers and all(INPUT <= p < row.index for p in row.producers)


def test_producers_of_an_inception_module_are_its_branches() -> None:
    report = summary("googlenet")
    rows = report.all_layers
    concat = _row(report, "inception3a.concat")
    assert [rows[i].name for i in concat.producers] == [
        "inception3a.branch1.act",
        "inception3a.branch2.1.act",
        "inception3a.branch3.1.act",
        "inception3a.branch4.1.act",
    ]
    # Every branch starts from the module's input.
    starts = ["branch1.conv", "branch2.0.conv", "branch3.0.conv", "branch4.0"]
    assert {rows[_row(report, f"inception3a.{s}").producers[0]].name for s in starts} == {
        "maxpool2"
    }


def test_producers_at_a_depth_point_to_blocks() -> None:
    report = summary("resnet18", depth=1)
    names = [r.name for r in report.layers]
    assert names[:6] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2"]
    for row in report.layers:
        assert all(INPUT <= p < row.index for p in row.producers)
    assert report.layers[names.index("layer2")].producers == (names.index("layer1"),)


class _Branchy(nn.Module):
    """A functional merge: producers of `cat()` and of `add()` are the rows that fed them."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.a(x), self.b(x)], dim=1)
        return y + x.mean(dim=1, keepdim=True)


def test_producers_of_functional_merges() -> None:
    report = summary(_Branchy(), (3, 8, 8))
    names = [r.name for r in report.layers]
    assert names == ["a", "b", "cat()", "mean()", "add()"]
    by_name = dict(zip(names, report.layers, strict=True))
    assert by_name["cat()"].producers == (0, 1)
    assert by_name["mean()"].producers == (INPUT,)
    assert by_name["add()"].producers == (2, 3)


def test_a_one_layer_model_names_itself_in_its_notes() -> None:
    report = summary(nn.ConvTranspose2d(3, 3, 3), (3, 8, 8))
    (note,) = [n for n in report.notes if "receptive field" in n]
    assert "past the model itself (ConvTranspose2d)" in note and "  (" not in note


def test_a_second_size_reuses_the_twins_and_sees_changes() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
    model[3] = nn.Linear(8 * 6 * 6, 10)
    first = summary(model, (3, 8, 8))
    again = summary(model, (3, 8, 8))
    assert again == first
    assert summary(model, (3, 10, 10)).failure is not None  # the linear layer fixes the size
    model[0] = nn.Conv2d(3, 8, 5)  # a change between calls is seen
    changed = summary(model, (3, 10, 10))
    assert changed.failure is None and changed.totals.params == 8 * 75 + 8 + 8 * 36 * 10 + 10
    model[0].weight.requires_grad_(False)
    assert summary(model, (3, 10, 10)).totals.frozen_params == 8 * 75


class _Fails(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise_here = self.bn(self.conv(x))
        raise RuntimeError(f"stop at {tuple(raise_here.shape)}")


def test_a_failing_forward_leaves_the_model_as_it_was() -> None:
    model = _Fails().train()
    tensors = {n: t for n, t in [*model.named_parameters(), *model.named_buffers()]}
    report = summary(model, (3, 8, 8))
    assert report.failure is not None and "stop at (1, 4, 6, 6)" in report.failure.message
    assert model.training and model.bn.training
    after = dict([*model.named_parameters(), *model.named_buffers()])
    assert after.keys() == tensors.keys()
    assert all(after[n] is t and not t.is_meta for n, t in tensors.items())


def test_the_tracer_walks_modules_in_named_modules_order() -> None:
    from cnnzoo.analysis.trace import _named_modules

    shared = nn.Conv2d(4, 4, 3)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(shared, nn.ReLU()), shared, None)
    for m in (model, cnnzoo.analysis.meta_model("googlenet")):
        assert [(n, id(x)) for n, x in _named_modules(m)] == [
            (n, id(x)) for n, x in m.named_modules()
        ]


def test_training_mode_traces_the_auxiliary_heads_and_restores_the_model() -> None:
    model = cnnzoo.create_model("googlenet").eval()
    train, infer = summary(model, mode="train"), summary(model)
    assert train.mode == "train" and train.totals.macs > infer.totals.macs
    assert any(r.name.startswith("aux") for r in train.all_layers)
    assert not any(r.name.startswith("aux") for r in infer.all_layers)
    assert not model.training and "forward" not in vars(model)


def test_a_summary_leaves_no_global_hook_behind() -> None:
    """The trace's global hooks are removed with everything torch keeps for them: torch's
    `remove` leaves a hook's `with_kwargs` mark, and `torch.compile` then warns about (and
    works around) a global hook for the rest of the process."""
    from torch.nn.modules import module

    summary("lenet5")
    summary(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), (1, 8, 8))
    assert not module._has_any_global_hook()
