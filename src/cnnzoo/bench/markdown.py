"""Generated tables in hand-written pages: the text between two marker comments is replaced."""

from __future__ import annotations

from pathlib import Path

from cnnzoo.errors import UsageError
from cnnzoo.fileio import atomic_write_text

__all__ = ["rewrite_between"]


def rewrite_between(path: str | Path, begin: str, end: str, text: str) -> None:
    """Replace what lies between the `begin` and `end` markers of the file with `text`.

    The markers stay; everything outside them is kept byte for byte.
    """
    path = Path(path)
    page = path.read_text()
    if page.count(begin) != 1 or page.count(end) != 1 or page.index(begin) > page.index(end):
        raise UsageError(f"{path} needs exactly one {begin} followed by one {end}")
    head, rest = page.split(begin, 1)
    _, tail = rest.split(end, 1)
    atomic_write_text(path, f"{head}{begin}\n{text}\n{end}{tail}")
