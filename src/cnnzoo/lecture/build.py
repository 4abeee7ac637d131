"""Run the lecture's cells and write the page, the notebook and their outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cnnzoo.errors import UsageError
from cnnzoo.fileio import atomic_write_text
from cnnzoo.lecture.content import INTRO, SECTIONS, TITLE
from cnnzoo.lecture.page import FIGURES, render_markdown, render_notebook, run_cells


def build(out_dir: Path) -> list[Path]:
    """Run every cell (in `out_dir`, so figures land beside the page) and write the page, the
    notebook and the outputs."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is not a folder; create it or name another")
    (out_dir / FIGURES).mkdir(exist_ok=True)
    here = Path.cwd()
    os.chdir(out_dir)
    try:
        outputs = run_cells(SECTIONS)
    finally:
        os.chdir(here)
    written = {
        "lecture.md": render_markdown(TITLE, INTRO, SECTIONS, outputs),
        "lecture.ipynb": render_notebook(TITLE, INTRO, SECTIONS, outputs),
        "lecture_outputs.json": json.dumps(outputs, indent=1, ensure_ascii=False) + "\n",
    }
    for name, text in written.items():
        atomic_write_text(out_dir / name, text)
    return [out_dir / name for name in written]
