"""The package's layers import one way: no import cycle anywhere, lazy imports included.

The graph is read from the source with `ast` (every `import` and `from ... import`, at module
level or inside functions), so an import that only runs when a function is called counts as
much as one at the top; only imports under `if TYPE_CHECKING:`, which never run, are left out.
An edge goes to the module named; `from package import name` goes to
`package.name` when that is a module. The implicit import of a parent package that Python
performs first (`cnnzoo/__init__.py` before `cnnzoo.registry`) is not an edge: the package face
imports only `_version` itself and its public names lazily, by name, on first use.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cnnzoo

ROOT = Path(cnnzoo.__file__).parent


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its __init__.py)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("cnnzoo", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The cnnzoo modules `name` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    for guard in [n for n in ast.walk(tree) if _type_checking_only(n)]:
        guard.body = []  # `if TYPE_CHECKING:` imports never run: annotations only
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in known else base)
    return {t for t in targets if t in known and t != name}


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle() -> None:
    found = cycles(graph())
    assert not found, "import cycles (each line one cycle):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_the_cycle_finder_finds_cycles() -> None:
    """The checker can fail: a planted two- and three-module loop are found, a chain is not."""
    edges = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(cycles(edges)) == [["a", "b"], ["c", "d", "e"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_lazy_imports_are_edges(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import cnnzoo.zoo\n"
        "def f():\n    from cnnzoo import models\n    import cnnzoo.registry\n"
    )
    known = {"cnnzoo", "cnnzoo.models", "cnnzoo.registry", "cnnzoo.m", "cnnzoo.zoo"}
    assert imports("cnnzoo.m", source, known) == {"cnnzoo.models", "cnnzoo.registry"}


def test_specs_and_version_import_only_leaves() -> None:
    """As in torchvision and timm, what a family registers with imports no model: `specs` imports
    of cnnzoo only the error vocabulary, which imports nothing of cnnzoo; the families register
    through it and never through the registry's lookups, which import the families; nothing low
    imports the package face for its version."""
    edges = graph()
    assert edges["cnnzoo.specs"] <= {"cnnzoo.errors"}
    assert edges["cnnzoo.errors"] == edges["cnnzoo.suggest"] == edges["cnnzoo._version"] == set()
    assert "cnnzoo.models" in edges["cnnzoo.registry"]
    families = [n for n in edges if n.startswith("cnnzoo.models.")]
    assert len(families) >= 14
    for family in families:
        assert "cnnzoo.registry" not in edges[family], family
    face = [name for name, targets in edges.items() if "cnnzoo" in targets]
    assert face == [], f"modules importing the package face: {face}"


def test_the_package_face_imports_no_torch() -> None:
    """`import cnnzoo` stays light, so the command line's own code runs before torch is
    imported and can catch a Ctrl-C that comes during that import."""
    import subprocess
    import sys

    probe = "import sys, cnnzoo, cnnzoo.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    probe = (  # the registry sees every family however cnnzoo was imported
        "from cnnzoo.registry import list_models, create_model; "
        "print(len(list_models()), create_model('lenet5').training)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(cnnzoo.list_models())), "True"]
