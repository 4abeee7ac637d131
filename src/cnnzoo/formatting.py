"""The one number formatter: counts with K/M/G/T, bytes with KiB/MiB/GiB/TiB.

MACs are multiply-accumulates (the papers' and the lecture's "operations"); FLOPs = 2 x MACs.
Callers name the unit next to the number; these functions only scale it.
"""

from __future__ import annotations

_COUNT_UNITS = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3))
_BYTE_UNITS = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def format_count(n: float, digits: int = 3) -> str:
    """1_981_356_834_816 -> '1.98T'; 105_415_200 -> '105M'; 60_965_224 -> '61.0M'.

    Keeps `digits` significant figures, trailing zeros included; numbers under 1,000 as they
    are. A value that rounds up to the next unit is written in it (999_999 -> '1.00M').
    """
    units = (("", 1.0), *reversed(_COUNT_UNITS))
    if abs(n) < 1000:
        return f"{n:g}" if isinstance(n, float) else str(n)
    for i, (unit, scale) in enumerate(units):
        last = i == len(units) - 1
        if last or abs(n) < units[i + 1][1]:
            value = n / scale
            if last and abs(value) >= 10**digits:
                return f"{value:,.0f}{unit}"
            text = f"{value:#.{digits}g}".rstrip(".")
            if not last and abs(float(text)) >= 1000:
                continue  # rounded up to 1000 of this unit: the next one says it
            return text + unit
    raise AssertionError("unreachable")


def format_bytes(n: float) -> str:
    """Binary units: 1_161_600 -> '1.11 MiB'; 3 significant figures."""
    for unit, scale in _BYTE_UNITS:
        if abs(n) >= scale:
            value = n / scale
            places = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{places}f} {unit}"
    return f"{int(n)} B"
