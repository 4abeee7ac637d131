"""Writing files so that nothing a user saved is lost or left half-written.

One place for the atomic write (temporary file, fsync, rename, directory fsync) that every file the
project writes goes through, and for the fsynced append that metrics lines use.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in `path` survive a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_synced(path: Path, data: bytes) -> None:
    """Write and fsync a file (not atomic by itself; callers rename it into place)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def append_synced(path: Path, line: str) -> None:
    """Append one line and fsync it, so the metrics an epoch's checkpoint follows survive a
    power loss as the checkpoint does (a resume keeps the lines up to the checkpoint's epoch)."""
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically: readers see the old or the new file, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write_file_synced(tmp, data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` for text (UTF-8)."""
    atomic_write(path, text.encode("utf-8"))
