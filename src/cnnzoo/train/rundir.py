"""Run directories: created, never silently overwritten, locked while a run uses them."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from cnnzoo.errors import RunDirError


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
            raise RunDirError(
                f"{out} is in use by a running process ({lock.read_text().strip() or 'starting'})"
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


def _locked(lock: Path) -> bool:
    """Whether a `run.lock` names a live process (a killed run's lock alone holds nothing)."""
    try:
        owner = int(lock.read_text().strip() or "0")
    except (OSError, ValueError):
        return True
    return owner != 0 and _pid_alive(owner)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """`run.lock` holds the pid of the process using a run directory; a lock left by a process
    that no longer exists is stale and taken over."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "run.lock"
        self.held = False

    def acquire(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    owner = int(self.path.read_text().strip() or "0")
                except (OSError, ValueError):
                    owner = 0
                if owner and owner != os.getpid() and _pid_alive(owner):
                    raise RunDirError(
                        f"{self.path.parent} is in use by another run (process {owner}); wait "
                        f"for it to finish or choose another --out"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.held = True
            return
        raise RunDirError(f"could not take the lock {self.path}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def environment() -> dict[str, Any]:
    """What produced a run: library, torch, Python and the machine (`cnnzoo.provenance`)."""
    from cnnzoo.provenance import environment as machine_record

    return machine_record()
