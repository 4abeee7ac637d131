"""The one "did you mean" helper: it names the closest valid spellings of a mistyped
name.

Used by the registry, recipes, experiments, data-set specs, config fields and the command line,
so every suggestion reads the same. Imports nothing of cnnzoo.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean"]


def closest(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """The candidates a user most likely meant: prefix matches first (shortest first), then near
    spellings (`difflib`'s ratio of at least 0.5), at most `n`."""
    pool = sorted(dict.fromkeys(str(c) for c in candidates))
    query = str(name).lower()
    prefixed = sorted((c for c in pool if c.lower().startswith(query)), key=lambda c: (len(c), c))
    near = difflib.get_close_matches(query, pool, n=n, cutoff=0.5)
    return list(dict.fromkeys(prefixed[:n] + near))[:n]


def did_you_mean(name: str, candidates: Iterable[str], n: int = 5) -> str:
    """``"Did you mean: a, b?"`` naming the closest candidates, or ``""`` when none is close."""
    close = closest(name, candidates, n)
    return f"Did you mean: {', '.join(close)}?" if close else ""
