"""The command line's argument types: every flag is checked when it is parsed, before any work
starts, and a bad value is answered with what was expected (never an internal function's name).

Each function takes the flag's text and returns the value, or raises
`argparse.ArgumentTypeError`, which argparse prints as ``argument --batch: <message>`` with exit
status 2.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = [
    "device",
    "existing_dir",
    "existing_file",
    "float_list",
    "input_size",
    "non_negative_int",
    "output_dir",
    "output_file",
    "positive_int",
    "positive_int_list",
]


def _whole(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """1, 2, ...: sizes, counts, batches, repetitions."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """0, 1, ...: depths, warm-up calls."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_int_list(text: str) -> tuple[int, ...]:
    """'1,16' -> (1, 16): comma-separated whole numbers, each 1 or more."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}")
    try:
        return tuple(positive_int(p) for p in parts)
    except argparse.ArgumentTypeError as err:
        where = f" (in {text!r})" if len(parts) > 1 else ""
        raise argparse.ArgumentTypeError(f"{err}{where}") from None


def float_list(text: str) -> tuple[float, ...]:
    """'0.1,0.01' -> (0.1, 0.01): comma-separated numbers."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0.5,0.25, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return values


def input_size(text: str) -> tuple[int, int, int]:
    """'3x224x224' -> (3, 224, 224): one input as CxHxW."""
    from cnnzoo.analysis.loading import parse_input_size
    from cnnzoo.errors import UsageError

    try:
        return parse_input_size(text)
    except UsageError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def existing_file(text: str) -> Path:
    """A file that exists and can be read."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be read (permission denied)")
    return path


def existing_dir(text: str) -> Path:
    """A folder that exists (a run directory, a checkpoint folder)."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist (no such folder)")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return path


def _writable_place(path: Path, text: str) -> None:
    """The nearest existing folder at or above `path` must be a writable directory."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: {probe} is not writable")


def output_dir(text: str) -> Path:
    """A folder to write into: it exists and is writable, or can be created."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    _writable_place(path.absolute(), text)
    return path


def output_file(text: str) -> Path:
    """A file to write: not a folder, in a place that is (or can be made) writable."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; name the file to write")
    _writable_place(path.absolute().parent, text)
    return path


def device(text: str) -> str:
    """'cpu', 'cuda' or 'cuda:N' (also 'mps'), present on this machine."""
    import torch

    try:
        chosen = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError("no CUDA device here; use --device cpu")
        count = torch.cuda.device_count()
        if chosen.index is not None and chosen.index >= count:
            raise argparse.ArgumentTypeError(
                f"there is no {text} here ({count} CUDA device(s): cuda:0..cuda:{count - 1})"
            )
    elif chosen.type == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError("no MPS device here; use --device cpu")
    elif chosen.type != "cpu":
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")
    return text
