"""Checkpoints that survive interruption.

Layout of a run directory's `checkpoints/` folder::

    step-00001234/            one complete checkpoint
        model.safetensors     weights (safetensors: loading never runs code)
        state.pt              optimizer, schedule, RNG and progress (loaded with weights_only=True)
        meta.json             format version, model name, step, library and torch versions
    last.json                 {"dir": "step-00001234"}: the newest complete checkpoint
    best.json                 {"dir": ..., "val_error": ...}: the best so far

A checkpoint is written into a temporary folder, every file fsynced, then renamed into place,
and only then does `last.json` (itself replaced atomically) point to it. A crash at any moment
leaves `last.json` pointing at a complete checkpoint.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from cnnzoo import fileio
from cnnzoo.errors import CheckpointError
from cnnzoo.fileio import atomic_write, fsync_dir

FORMAT_VERSION = 1


class CheckpointWriteError(CheckpointError, OSError):
    """Writing a checkpoint failed (a full disk, a lost mount); the previous one is kept."""


class CheckpointStore:
    """The checkpoints of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.root = Path(run_dir) / "checkpoints"

    def _pointer(self, which: str) -> Path:
        return self.root / f"{which}.json"

    def _point(self, which: str, folder: str, **extra: Any) -> None:
        atomic_write(self._pointer(which), json.dumps({"dir": folder, **extra}).encode())

    def exists(self, which: str = "last") -> bool:
        return self._pointer(which).exists()

    def save(
        self,
        tag: str,
        model_state: dict[str, torch.Tensor],
        state: dict[str, Any],
        meta: dict[str, Any],
        *,
        best: dict[str, Any] | None = None,
    ) -> Path:
        """Write a complete checkpoint and point `last` (and `best` when given) at it.

        Raises:
            CheckpointWriteError: the write failed (a full disk, a lost mount); the previous
                checkpoint is untouched and `last` still points at it.
        """
        with self._explained(tag):
            if not self.root.is_dir():
                self.root.mkdir(parents=True, exist_ok=True)
                fsync_dir(self.root.parent)  # the new folder's entry survives a power loss
            final = self._unreferenced_folder(tag)
            tmp = self.root / f".tmp-{tag}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            try:
                tensors = {k: v.detach().contiguous().cpu() for k, v in model_state.items()}
                fileio.write_file_synced(tmp / "model.safetensors", save(tensors))
                buffer = io.BytesIO()
                torch.save(state, buffer)
                fileio.write_file_synced(tmp / "state.pt", buffer.getvalue())
                meta = {"format": FORMAT_VERSION, **meta}
                fileio.write_file_synced(tmp / "meta.json", json.dumps(meta, indent=2).encode())
                fsync_dir(tmp)
                if final.exists():  # left by a crash before its pointer was written: not referenced
                    shutil.rmtree(final)
                os.rename(tmp, final)
                fsync_dir(self.root)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            self._point("last", final.name)
            if best is not None:
                self._point("best", final.name, **best)
            self._prune()
            return final

    def _unreferenced_folder(self, tag: str) -> Path:
        """`tag`, or `tag-2`, `tag-3`, ... when a pointer names a checkpoint called `tag` (a stop
        after an epoch's last step saves the step that the epoch's end saves again): the
        checkpoint a pointer names stays whole until the new one is in place."""
        referenced = self._referenced()
        if referenced is None:  # a pointer is unreadable: any existing folder may be the one
            referenced = {p.name for p in self.root.iterdir()}
        name, copy = tag, 1
        while name in referenced:
            copy += 1
            name = f"{tag}-{copy}"
        return self.root / name

    @contextlib.contextmanager
    def _explained(self, tag: str) -> Iterator[None]:
        """Turn an OSError while writing checkpoint `tag` into advice that names what is kept."""
        try:
            yield
        except OSError as err:
            raise CheckpointWriteError(
                f"could not write checkpoint {self.root / tag}: {err.strerror or err}. The "
                f"previous checkpoint is kept: {self.describe_last()}. Free space (or fix the "
                f"folder) and resume with: cnnzoo train --resume {self.root.parent}"
            ) from err

    def _referenced(self) -> set[str] | None:
        """The folders the pointers name; None when a pointer cannot be read."""
        names = set()
        for which in ("last", "best"):
            if self.exists(which):
                try:
                    names.add(self.read_pointer(which)["dir"])
                except CheckpointError:
                    return None
        return names

    def recover_last(self) -> Path | None:
        """Point `last` at the newest complete checkpoint when its pointer is gone (deleted
        after it was reported corrupt). Checkpoints are renamed into place only once whole, so
        every folder here is one; each is loaded before it is trusted."""
        if self.exists("last") or not self.root.is_dir():
            return None
        found = []
        for folder in self.root.iterdir():
            if folder.is_dir() and not folder.name.startswith("."):
                try:
                    found.append((load_checkpoint_dir(folder)[2].get("step", -1), folder))
                except CheckpointError:
                    continue
        if not found:
            return None
        newest = max(found, key=lambda item: (item[0], item[1].name))[1]
        self._point("last", newest.name)
        return newest

    def _prune(self) -> None:
        """Delete checkpoints no pointer references, and the temporary files and folders of
        writes that a killed process left (the run lock means no other process is writing)."""
        keep = self._referenced()
        if keep is None:
            return  # a pointer cannot be read: delete nothing it might name
        for path in self.root.iterdir():
            stale_tmp = ".tmp-" in path.name and not path.name.endswith(f"-{os.getpid()}")
            if path.name.startswith(".") and not stale_tmp:
                continue
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
            elif stale_tmp:
                path.unlink(missing_ok=True)

    def read_pointer(self, which: str) -> dict[str, Any]:
        path = self._pointer(which)
        try:
            pointer = json.loads(path.read_text())
            name = pointer["dir"]
        except FileNotFoundError:
            raise CheckpointError(f"no {which!r} checkpoint in {self.root}") from None
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise CheckpointError(
                f"{path} is corrupt ({err}); delete it and resume: the newest complete "
                "checkpoint is then used"
            ) from err
        if Path(name).name != name or name.startswith("."):
            raise CheckpointError(f"{path} points outside the checkpoint folder: {name!r}")
        return pointer

    def describe_last(self) -> str:
        """The path of the `last` checkpoint, or "none yet" (for messages)."""
        return str(self.path("last")) if self.exists("last") else "none yet"

    def path(self, which: str = "last") -> Path:
        return self.root / self.read_pointer(which)["dir"]

    def load(self, which: str = "last") -> tuple[dict[str, torch.Tensor], dict[str, Any], dict]:
        """Weights, training state and metadata of the `last` or `best` checkpoint."""
        return load_checkpoint_dir(self.path(which))


def load_checkpoint_dir(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict]:
    """Read one checkpoint folder; never executes code from it."""
    path = Path(path)
    try:
        meta = json.loads((path / "meta.json").read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is not a checkpoint: meta.json is missing") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path / 'meta.json'} is corrupt: {err}") from err
    version = meta.get("format")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}; this cnnzoo reads format "
            f"{FORMAT_VERSION} and older. Upgrade cnnzoo to load it."
        )
    try:
        weights = load_file(path / "model.safetensors")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"{path / 'model.safetensors'} is truncated or corrupt: {err}"
        ) from err
    try:
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path / 'state.pt'} is missing") from None
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"{path / 'state.pt'} could not be loaded safely (truncated, corrupt, or it holds "
            f"objects other than tensors and plain data): {err}"
        ) from err
    return weights, state, meta
