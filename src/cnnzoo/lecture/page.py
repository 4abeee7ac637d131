"""The lecture companion's machinery: cells that run, and the page and notebook made from them.

A page is a list of cells. `Text` is prose; `Shell` is a `cnnzoo ...` command line (optionally
piped through `head`, `tail` or `grep`), run in-process through `cnnzoo.cli.main`; `Python` is a
few lines run in one namespace per page, as a notebook kernel would. Every output on the page comes
from running its cell: `build` runs them all and writes `lecture.md`, `lecture.ipynb` (the same
cells, with their outputs) and `lecture_outputs.json` (the outputs alone, which the test compares
with a fresh run of the notebook). Nothing on the page is typed by hand except the prose.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from cnnzoo.errors import UsageError

#: Tables are rendered for this terminal width, so the page reads the same everywhere.
PAGE_COLUMNS = 80
#: The folder (relative to the page) that commands write figures into.
FIGURES = "lecture_files"


@dataclass(frozen=True)
class Text:
    """Prose in Markdown."""

    markdown: str


@dataclass(frozen=True)
class Shell:
    """A `cnnzoo` command line, optionally piped through head/tail/grep."""

    command: str


@dataclass(frozen=True)
class Python:
    """Lines of Python run in the page's namespace; what they print is the output."""

    code: str


Cell = Text | Shell | Python


@dataclass(frozen=True)
class Section:
    title: str
    cells: tuple[Cell, ...]


# -- running ---------------------------------------------------------------------------------


def _pipe(text: str, stage: list[str]) -> str:
    """Apply one `head`/`tail`/`grep` stage to `text` (the subset of their flags the page uses)."""
    lines = text.splitlines()
    name, args = stage[0], stage[1:]
    if name in ("head", "tail"):
        n = 10
        if args and args[0] == "-n":
            n = int(args[1])
        elif args and re.fullmatch(r"-\d+", args[0]):
            n = int(args[0][1:])
        return "\n".join(lines[:n] if name == "head" else lines[-n:])
    if name == "grep":
        after = 0
        while args and args[0].startswith("-"):
            flag = args.pop(0)
            if re.fullmatch(r"-A\d+", flag):
                after = int(flag[2:])
            elif flag == "-A":
                after = int(args.pop(0))
            elif flag != "-E":
                raise UsageError(f"the lecture's grep takes -A N and -E, not {flag}")
        (pattern,) = args
        keep: list[str] = []
        until = -1
        for i, line in enumerate(lines):
            if re.search(pattern, line):
                until = i + after
            if i <= until:
                keep.append(line)
        return "\n".join(keep)
    raise UsageError(f"the lecture pipes only through head, tail or grep, not {name!r}")


def run(command: str) -> None:
    """Run a `cnnzoo ...` command line in this process and print its output (stdout and stderr,
    in order) the way a terminal of `PAGE_COLUMNS` columns shows it."""
    from cnnzoo import cli

    stages = [shlex.split(part) for part in command.split(" | ")]
    argv = stages[0]
    if argv[0] != "cnnzoo":
        raise UsageError(f"the lecture runs cnnzoo commands only, not {argv[0]!r}")
    buffer = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(PAGE_COLUMNS)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer), _as_terminal():
            code = cli.main(argv[1:])
    finally:
        if old is None:
            os.environ.pop("COLUMNS")
        else:
            os.environ["COLUMNS"] = old
    text = buffer.getvalue().rstrip("\n")
    for stage in stages[1:]:
        text = _pipe(text, stage)
    print(text)
    if code:
        print(f"(exit status {code})")


#: Set by notebook kernels to make programs write colour codes; a pipe has none of them.
_COLOUR_FORCING = ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


@contextlib.contextmanager
def _as_terminal():
    """Show what a pipe from the terminal shows, in a notebook too: inside Jupyter, rich sends its
    tables to the notebook's display instead of the output stream, and the kernel's environment
    asks for colour codes."""
    import rich.console

    detect = rich.console._is_jupyter
    saved = {name: os.environ.pop(name) for name in _COLOUR_FORCING if name in os.environ}
    rich.console._is_jupyter = lambda: False
    try:
        yield
    finally:
        rich.console._is_jupyter = detect
        os.environ.update(saved)


def _execute(cell: Shell | Python, namespace: dict) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        if isinstance(cell, Shell):
            run(cell.command)
        else:
            exec(compile(cell.code, "<lecture>", "exec"), namespace)  # noqa: S102 - our own cells
    return buffer.getvalue().rstrip("\n")


def run_cells(sections: Sequence[Section]) -> list[str]:
    """Every code cell's output, in page order (run in the current directory)."""
    namespace: dict = {"__name__": "__lecture__"}
    exec(SETUP, namespace)  # noqa: S102
    return [
        _execute(cell, namespace)
        for section in sections
        for cell in section.cells
        if not isinstance(cell, Text)
    ]


SETUP = "from cnnzoo.lecture import run\n"


# -- rendering -------------------------------------------------------------------------------

_HEADER = """<!-- Generated from src/cnnzoo/lecture/content.py by
     `python -m cnnzoo.lecture --out docs`. Do not edit: every output below comes from running
     the cell above it. -->
"""


def _code_cells(sections: Sequence[Section]) -> list[Shell | Python]:
    return [c for s in sections for c in s.cells if not isinstance(c, Text)]


def render_markdown(title: str, intro: str, sections: Sequence[Section], outputs: list[str]) -> str:
    """The page: prose, each command or snippet, and its output under it."""
    if len(outputs) != len(_code_cells(sections)):
        raise UsageError(
            "the lecture's outputs do not match its cells; rerun `python -m cnnzoo.lecture`"
        )
    out = iter(outputs)
    parts = [_HEADER, f"# {title}\n", intro.strip() + "\n", "## Contents\n"]
    parts += [f"{i}. [{s.title}](#{_anchor(s.title)})" for i, s in enumerate(sections, 1)]
    parts.append("")
    for section in sections:
        parts.append(f"## {section.title}\n")
        for cell in section.cells:
            if isinstance(cell, Text):
                parts.append(cell.markdown.strip() + "\n")
            elif isinstance(cell, Shell):
                parts.append(f"```console\n$ {cell.command}\n{next(out)}\n```\n")
            else:
                parts.append(f"```python\n{cell.code.strip()}\n```\n")
                parts.append(f"```text\n{next(out)}\n```\n")
    return "\n".join(parts).rstrip("\n") + "\n"


def _anchor(title: str) -> str:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def notebook_source(cell: Shell | Python) -> str:
    """A cell's code as the notebook shows it (a command as a call of `run`, wrapped to stay
    within the project's line length)."""
    if isinstance(cell, Python):
        return cell.code.strip()
    call = f"run({cell.command!r})"
    return call if len(call) <= 100 else f"run(\n    {cell.command!r}\n)"


def render_notebook(title: str, intro: str, sections: Sequence[Section], outputs: list[str]):
    """The same cells as a Jupyter notebook (nbformat 4), with their outputs."""
    import nbformat
    from nbformat import v4

    out = iter(outputs)
    cells = [v4.new_markdown_cell(f"# {title}\n\n{intro.strip()}"), v4.new_code_cell(SETUP.strip())]
    for section in sections:
        cells.append(v4.new_markdown_cell(f"## {section.title}"))
        for cell in section.cells:
            if isinstance(cell, Text):
                cells.append(v4.new_markdown_cell(cell.markdown.strip()))
                continue
            text = next(out)
            code = v4.new_code_cell(notebook_source(cell))
            if text:
                code.outputs = [v4.new_output("stream", name="stdout", text=text + "\n")]
            cells.append(code)
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i:03d}"  # stable ids, so a rebuild changes nothing that did not
    book = v4.new_notebook(cells=cells)
    book.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(book) + "\n"
