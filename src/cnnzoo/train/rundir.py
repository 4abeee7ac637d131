"""Run directories: the one place that knows their layout.

    RUN/
        config.json       the resolved config, the environment that ran it, the data's classes
        metrics.jsonl     one fsynced JSON line per finished epoch
        curves.png        training curves, redrawn every epoch
        results.json      the final evaluation (written once the run is complete)
        evaluation/       `cnnzoo evaluate`'s reports
        checkpoints/      see `cnnzoo.train.checkpoint`
        run.lock          pid, host and start time of the process using the folder

A folder is created, never silently overwritten, and locked while a run uses it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnzoo import fileio
from cnnzoo.errors import RunDirError
from cnnzoo.fileio import append_synced, atomic_write, fsync_dir
from cnnzoo.train.checkpoint import CheckpointStore
from cnnzoo.train.config import TrainConfig

__all__ = ["LockOwner", "RunDir", "RunDirError", "RunLock", "default_run_dir", "environment"]


def default_run_dir(model: str, data: str) -> Path:
    data_name = data.split(":", 1)[0]
    return Path("runs") / f"{model}-{data_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(out: Path, *, resume: bool, force: bool) -> Path:
    """Make `out` ready for a run.

    A folder that already holds a run is only continued (`resume`) or, with `force`, moved aside
    to `OUT.replaced-TIMESTAMP` so that nothing is lost; otherwise it is refused.
    """
    out = Path(out)
    holds_run = (out / "config.json").exists()
    if resume:
        if not out.exists():
            raise RunDirError(f"cannot resume: {out} does not exist. Name a run folder (runs/...)")
        if not holds_run:
            raise RunDirError(f"cannot resume: {out} holds no run (config.json is missing)")
        return out
    if out.exists() and any(p.name != "run.lock" or _locked(p) for p in out.iterdir()):
        if not force:
            what = "a run" if holds_run else "files"
            raise RunDirError(
                f"{out} already holds {what}. Continue it with --resume {out}, choose another "
                f"--out, or pass --force to start over (the old folder is kept, renamed)."
            )
        lock = out / "run.lock"
        if lock.exists() and _locked(lock):
            owner = read_lock(lock)
            raise RunDirError(
                f"{out} is in use by a running process ({owner.pid if owner else 'starting'})"
                "; --force does not move a live run. Wait for it to finish or stop it first."
            )
        backup = out.with_name(f"{out.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        out.rename(backup)
        print(f"moved the previous contents of {out} to {backup}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise RunDirError(f"cannot write to run directory {out}: {err.strerror}") from err
    return out


# ---- the lock -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockOwner:
    """Who holds a `run.lock`: one line each of pid, host and start time."""

    pid: int
    host: str
    started: str

    def text(self) -> str:
        return f"{self.pid}\n{self.host}\n{self.started}\n"

    def is_local(self) -> bool:
        return self.host == socket.gethostname()

    def is_live(self) -> bool:
        """Alive as far as this host can tell: a lock of another host always counts as live
        (its process cannot be seen from here, e.g. on shared storage)."""
        return not self.is_local() or _pid_alive(self.pid)


def read_lock(path: Path) -> LockOwner | None:
    """The owner a lock file names; None when there is no lock. A lock of cnnzoo before 0.2
    held only the pid: it was written on this host."""
    try:
        lines = Path(path).read_text().split("\n")
    except FileNotFoundError:
        return None
    try:
        pid = int(lines[0])
    except ValueError:
        raise RunDirError(
            f"{path} is not a cnnzoo lock (it holds {lines[0][:40]!r}); delete it if no run "
            "uses the folder"
        ) from None
    host = lines[1] if len(lines) > 1 and lines[1] else socket.gethostname()
    return LockOwner(pid, host, lines[2] if len(lines) > 2 else "")


def _locked(lock: Path) -> bool:
    """Whether a `run.lock` names a live process (a killed run's lock alone holds nothing)."""
    try:
        owner = read_lock(lock)
    except (OSError, RunDirError):
        return True
    return owner is not None and owner.pid != 0 and owner.is_live()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """`run.lock` names the process using a run directory.

    The lock appears with its contents: they are written to a private file first, which is then
    hard-linked to `run.lock` (a link fails if the name exists, like O_EXCL, but the file it
    makes visible is already complete). A lock whose process is gone on this host is stale; it
    is moved aside under a private name before being deleted, so when several processes find it
    stale only one breaks it. A lock from another host is never judged stale (its process cannot
    be seen from here) unless `force` says so.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "run.lock"
        self.held = False

    def acquire(self, *, force: bool = False) -> None:
        me = LockOwner(os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        mine = self.path.with_name(f".run.lock.{me.pid}.{secrets.token_hex(4)}")
        deadline = time.monotonic() + 10
        try:
            fileio.write_file_synced(mine, me.text().encode())
            while time.monotonic() < deadline:
                try:
                    os.link(mine, self.path)
                except FileExistsError:
                    self._break_if_stale(force)
                    continue
                fsync_dir(self.path.parent)
                self.held = True
                return
        except OSError as err:
            raise RunDirError(
                f"cannot take the lock {self.path}: {err.strerror or err}. Check that the run "
                "folder is writable (permissions, a read-only or full file system)."
            ) from err
        finally:
            mine.unlink(missing_ok=True)
        raise RunDirError(f"could not take the lock {self.path}: other processes keep taking it")

    def _break_if_stale(self, force: bool) -> None:
        """Delete the lock if its owner is gone (or, with `force`, on another host). Breakers
        take turns under `.run.lock.breaking`, and each deletes the lock only if it still names
        the owner judged stale: a lock taken meanwhile is never deleted (none can be taken
        while the stale one is in place)."""
        owner = read_lock(self.path)
        if owner is None:
            return  # released meanwhile: try again
        ours = owner.pid == os.getpid() and owner.is_local()
        if not owner.is_local() and not force:
            raise RunDirError(
                f"{self.path.parent} is locked by process {owner.pid} on host {owner.host} "
                f"(started {owner.started or 'at an unknown time'}), which cannot be checked from "
                f"here; wait for it to finish, or pass --force if you know it is no longer running"
            )
        if owner.is_local() and not ours and _pid_alive(owner.pid):
            raise RunDirError(
                f"{self.path.parent} is in use by another run (process {owner.pid}); wait "
                f"for it to finish or choose another --out"
            )
        breaking = self.path.with_name(".run.lock.breaking")
        try:
            os.close(os.open(breaking, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - breaking.stat().st_mtime > 10:  # its breaker was killed
                    breaking.unlink()
            time.sleep(0.005)
            return
        try:
            if read_lock(self.path) == owner:
                self.path.unlink()
        finally:
            breaking.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# ---- the folder -----------------------------------------------------------------------------


class RunDir:
    """One run directory: its files, its checkpoints and its lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.metrics_path = self.path / "metrics.jsonl"
        self.results_path = self.path / "results.json"
        self.curves_path = self.path / "curves.png"
        self.evaluation_dir = self.path / "evaluation"
        self.checkpoints = CheckpointStore(self.path)
        self.lock = RunLock(self.path)

    def __str__(self) -> str:
        return str(self.path)

    @classmethod
    def create(cls, path: str | Path, *, force: bool = False) -> RunDir:
        """A new (or emptied) run directory; see `prepare_run_dir`."""
        return cls(prepare_run_dir(Path(path), resume=False, force=force))

    @classmethod
    def existing(cls, path: str | Path) -> RunDir:
        """A run directory that holds a run, or RunDirError naming what is missing."""
        return cls(prepare_run_dir(Path(path), resume=True, force=False))

    def holds_run(self) -> bool:
        return self.config_path.exists()

    # config.json
    def write_config(self, config: TrainConfig, data: dict[str, Any]) -> None:
        saved = {"config": json.loads(config.to_json()), "environment": environment(), "data": data}
        with self.explained(self.config_path):
            atomic_write(self.config_path, json.dumps(saved, indent=2).encode())

    def read_saved(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError:
            raise RunDirError(f"{self.path} holds no run (config.json is missing)") from None
        except json.JSONDecodeError as err:
            raise RunDirError(f"{self.config_path} is corrupt: {err}") from err

    def read_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.read_saved()["config"])

    # metrics.jsonl
    def append_metrics(self, record: dict[str, Any]) -> None:
        new = not self.metrics_path.exists()
        with self.explained(self.metrics_path):
            append_synced(self.metrics_path, json.dumps(record))
            if new:
                fsync_dir(self.path)  # the new file's entry survives a power loss too

    def read_metrics(self) -> list[dict[str, Any]]:
        """The complete epoch records (a line cut short by a kill is skipped)."""
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if isinstance(record, dict) and "epoch" in record:
                    records.append(record)
        return records

    def keep_metrics_until(self, epochs: int) -> None:
        """Keep the metrics of the first `epochs` epochs (those a checkpoint holds)."""
        if not self.metrics_path.exists():
            return
        lines = [line for line in self.metrics_path.read_text().splitlines() if line.strip()]
        kept = []
        for line in lines:
            try:
                if json.loads(line)["epoch"] <= epochs:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                pass  # a line cut short by a kill
        if kept != lines:
            with self.explained(self.metrics_path):
                atomic_write(self.metrics_path, "".join(line + "\n" for line in kept).encode())

    # results.json
    def write_results(self, results: dict[str, Any]) -> None:
        with self.explained(self.results_path):
            atomic_write(self.results_path, json.dumps(results, indent=2).encode())

    def has_results(self) -> bool:
        return self.results_path.exists()

    @contextlib.contextmanager
    def explained(self, path: Path) -> Iterator[None]:
        """Turn an OSError while writing `path` (a full disk, no permission, a read-only file
        system) into advice that says what is kept."""
        try:
            yield
        except OSError as err:
            raise RunDirError(
                f"could not write {path}: {err.strerror or err}. Nothing saved before is lost "
                f"(last checkpoint: {self.checkpoints.describe_last()}). Free space or fix the "
                f"folder's permissions, then resume with: cnnzoo train --resume {self.path}"
            ) from err

    def remove_if_only_started(self, made_here: bool) -> bool:
        """After a run stopped before its first checkpoint: delete what it wrote (config.json,
        metrics, curves) and the folder if it made it, so no half-started run is left behind.
        Returns whether anything was removed."""
        if self.checkpoints.root.exists():
            return False
        removed = False
        for path in (self.config_path, self.metrics_path, self.curves_path):
            if path.exists():
                path.unlink(missing_ok=True)
                removed = True
        if made_here and self.path.is_dir() and not any(self.path.iterdir()):
            with contextlib.suppress(FileNotFoundError):  # another process of the run did it
                self.path.rmdir()
            removed = True
        return removed


def environment() -> dict[str, Any]:
    """What produced a run: library, torch, Python and the machine (`cnnzoo.provenance`)."""
    from cnnzoo.provenance import environment as machine_record

    return machine_record()
