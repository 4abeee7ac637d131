"""The one "did you mean" helper behind the registry, recipes, experiments, data sets, config
fields and the command line."""

from __future__ import annotations

import ast
from pathlib import Path

import cnnzoo
from cnnzoo.suggest import closest, did_you_mean


def test_prefixes_first_then_near_spellings() -> None:
    names = ["resnet18", "resnet50", "resnet56_cifar", "resnet152", "vgg16", "alexnet"]
    assert closest("resnet5", names, 3) == ["resnet50", "resnet56_cifar", "resnet152"]
    assert closest("alexnte", names) == ["alexnet"]
    assert closest("zzz", names) == []
    assert did_you_mean("vgg61", names) == "Did you mean: vgg16?"
    assert did_you_mean("zzz", names) == ""


def test_no_other_module_calls_difflib() -> None:
    """A second copy of the suggestion logic is a finding: only cnnzoo/suggest.py uses difflib."""
    root = Path(cnnzoo.__file__).parent
    users = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                named = [a.name for a in node.names] + [getattr(node, "module", None)]
                if "difflib" in named:
                    users.append(path.relative_to(root).as_posix())
    assert users == ["suggest.py"]
