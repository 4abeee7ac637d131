"""The one number formatter: counts with K/M/G/T, bytes with KiB/MiB/GiB/TiB.

MACs are multiply-accumulates (the papers' and the lecture's "operations"); FLOPs = 2 x MACs.
Callers name the unit next to the number; these functions only scale it.
"""

from __future__ import annotations

_COUNT_UNITS = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3))
_BYTE_UNITS = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def format_count(n: float, digits: int = 3) -> str:
    """1_981_356_834_816 -> '1.98T'; 105_415_200 -> '105M'; keeps `digits` significant figures;
    numbers under 1,000 as they are."""
    for unit, scale in _COUNT_UNITS:
        if abs(n) >= scale:
            return f"{n / scale:.{digits}g}{unit}"
    return f"{n:g}" if isinstance(n, float) else str(n)


def format_bytes(n: float) -> str:
    """Binary units: 1_161_600 -> '1.11 MiB'; 3 significant figures."""
    for unit, scale in _BYTE_UNITS:
        if abs(n) >= scale:
            value = n / scale
            places = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{places}f} {unit}"
    return f"{int(n)} B"
