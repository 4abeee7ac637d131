"""No file runs code, and paths read from data sets and checkpoints never make cnnzoo write
outside the run directory.

The rows of docs/failures.md point at these tests."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.train import fit
from cnnzoo.train.evaluate import evaluate, load_trained, write_evaluation
from cnnzoo.train.recipes import resolve_config

SRC = Path(cnnzoo.__file__).parent
# The one place allowed to unpickle: the restricted unpickler that resolves only numpy's array
# globals (tests/data/test_safe_pickle.py proves a code payload is refused there).
UNPICKLER = SRC / "data" / "safe_pickle.py"
# The one place allowed to exec: the lecture runs its own cells, string constants written in
# cnnzoo/lecture/content.py, as the notebook's kernel runs them; it never reads code from a file.
LECTURE_CELLS = SRC / "lecture" / "page.py"


def _dangerous_calls(text: str, path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(text, str(path))):
        if not isinstance(node, ast.Call):
            continue
        func, where = node.func, f"{path.name}:{node.lineno}"
        name = ast.unparse(func)
        if isinstance(func, ast.Name) and func.id in ("eval", "exec", "__import__"):
            if not (func.id == "exec" and path == LECTURE_CELLS):
                found.append(f"{where} {func.id}()")
        elif name in ("pickle.load", "pickle.loads", "pickle.Unpickler") and path != UNPICKLER:
            found.append(f"{where} {name}()")
        elif name in ("numpy.load", "np.load") and any(
            k.arg == "allow_pickle" for k in node.keywords
        ):
            found.append(f"{where} {name}(allow_pickle=...)")
        elif name == "torch.load" and not any(
            k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in node.keywords
        ):
            found.append(f"{where} torch.load() without weights_only=True")
    return found


def test_source_never_unpickles_or_evaluates_file_contents() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 40 and UNPICKLER in files
    found = [hit for path in files for hit in _dangerous_calls(path.read_text(), path)]
    assert found == [], "code that can run a file's contents:\n" + "\n".join(found)


def test_the_scanner_catches_each_pattern() -> None:
    text = (
        "import pickle, torch\n"
        "pickle.load(f)\npickle.loads(b)\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
        "eval(s)\nexec(s)\ntorch.load(p, weights_only=True)\n"
    )
    hits = _dangerous_calls(text, SRC / "probe.py")
    assert [h.split(" ", 1)[1] for h in hits] == [
        "pickle.load()",
        "pickle.loads()",
        "torch.load() without weights_only=True",
        "torch.load() without weights_only=True",
        "eval()",
        "exec()",
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    fit(resolve_config("lenet5_modern", data="synthetic:32", batch_size=16, epochs=1, out=str(out)))
    return out


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_crafted_class_names_and_out_never_write_outside_the_run(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A run folder from someone else whose config.json names classes like '../../x' and
    another `out`: evaluate and resume write only inside the run folder."""
    crafted = tmp_path / "area" / "run"
    shutil.copytree(run, crafted)
    saved = json.loads((crafted / "config.json").read_text())
    n = len(saved["data"]["classes"])
    saved["data"]["classes"] = [f"../../escaped-{i}" for i in range(n)]
    saved["config"]["out"] = str(tmp_path / "elsewhere")
    saved["config"]["epochs"] = 2
    (crafted / "config.json").write_text(json.dumps(saved))
    outside = _files(tmp_path) - _files(crafted)

    assert main(["evaluate", str(crafted)]) == 0
    assert (crafted / "evaluation" / "test.json").exists()
    fit(resume=crafted)
    assert (crafted / "results.json").exists() and not (tmp_path / "elsewhere").exists()
    assert _files(tmp_path) - _files(crafted) == outside  # nothing new outside the run
    assert not list(tmp_path.rglob("escaped-*"))
    capsys.readouterr()


def test_evaluation_split_name_cannot_be_a_path(run: Path, tmp_path: Path) -> None:
    trained = load_trained(run)
    result = evaluate(trained, trained.config.data)
    with pytest.raises(ValueError, match="split must be one of test, val, train"):
        write_evaluation(result, tmp_path / "eval", "../../escaped", "x")
    assert not list(tmp_path.rglob("escaped*"))
