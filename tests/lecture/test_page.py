"""docs/lecture.md and docs/lecture.ipynb can never drift from the tool: the committed page and
notebook are what their cells and recorded outputs render to, and running the notebook afresh
reproduces every recorded output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnzoo.lecture import page
from cnnzoo.lecture.content import INTRO, SECTIONS, TITLE

DOCS = Path(__file__).resolve().parents[2] / "docs"
REGENERATE = "regenerate with `python -m cnnzoo.lecture --out docs`"


def _outputs() -> list[str]:
    return json.loads((DOCS / "lecture_outputs.json").read_text())


def test_page_and_notebook_are_rendered_from_the_cells() -> None:
    outputs = _outputs()
    page_text = page.render_markdown(TITLE, INTRO, SECTIONS, outputs)
    assert (DOCS / "lecture.md").read_text() == page_text, REGENERATE
    book = page.render_notebook(TITLE, INTRO, SECTIONS, outputs)
    assert (DOCS / "lecture.ipynb").read_text() == book, REGENERATE


def test_the_notebook_runs_end_to_end_and_reproduces_the_page(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")  # dev extra: installed by `make test`
    from nbclient import NotebookClient

    # A fresh docs/ beside the committed results the cells read (never written to).
    work = tmp_path / "docs"
    work.mkdir()
    shutil.copy(DOCS / "lecture.ipynb", work / "lecture.ipynb")
    (work / page.FIGURES).mkdir()
    (work / "reproductions").symlink_to(DOCS / "reproductions")
    (tmp_path / "benchmarks").symlink_to(DOCS.parent / "benchmarks")
    book = nbformat.read(work / "lecture.ipynb", as_version=4)
    for cell in book.cells:
        cell.get("outputs", []).clear()
    NotebookClient(book, timeout=300, kernel_name="python3", resources={
        "metadata": {"path": str(work)}}).execute()  # fmt: skip
    code = [cell for cell in book.cells if cell.cell_type == "code"][1:]  # after the setup cell
    fresh = [
        "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream"
                and o.name == "stdout").rstrip("\n")
        for cell in code
    ]  # fmt: skip
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    recorded = _outputs()
    assert len(fresh) == len(recorded)
    for i, (now, then) in enumerate(zip(fresh, recorded, strict=True)):
        assert now == then, f"cell {i} ({page.notebook_source(page._code_cells(SECTIONS)[i])!r})"


def test_a_pipe_stage_the_page_cannot_run_is_refused() -> None:
    from cnnzoo.errors import UsageError

    with pytest.raises(UsageError, match="head, tail or grep"):
        page.run("cnnzoo list | sort")
    with pytest.raises(UsageError, match="cnnzoo commands only"):
        page.run("ls docs")


def test_grep_and_head_stages_behave_like_the_tools() -> None:
    text = "a1\nb2\nc3\na4\nd5"
    assert page._pipe(text, ["head", "-2"]) == "a1\nb2"
    assert page._pipe(text, ["tail", "-n", "2"]) == "a4\nd5"
    assert page._pipe(text, ["grep", "-A1", "^a"]) == "a1\nb2\na4\nd5"
    assert page._pipe(text, ["grep", "-E", "^(b|c)"]) == "b2\nc3"
