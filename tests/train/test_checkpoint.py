"""Checkpoint atomicity, safe loading, and run-directory protection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnzoo import fileio
from cnnzoo.train import checkpoint as ckpt
from cnnzoo.train.checkpoint import CheckpointError, CheckpointStore, load_checkpoint_dir
from cnnzoo.train.rundir import RunDirError, RunLock, prepare_run_dir, read_lock


def _weights(value: float) -> dict[str, torch.Tensor]:
    return {"layer.weight": torch.full((3, 2), value), "layer.bias": torch.zeros(3)}


def _save(store: CheckpointStore, step: int, value: float, **kw) -> Path:
    state = {"progress": {"global_step": step}, "rng": torch.get_rng_state()}
    return store.save(f"step-{step:08d}", _weights(value), state, {"model": "toy"}, **kw)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    _save(store, 10, 1.5)
    weights, state, meta = store.load("last")
    assert torch.equal(weights["layer.weight"], torch.full((3, 2), 1.5))
    assert state["progress"] == {"global_step": 10}
    assert meta["model"] == "toy" and meta["format"] == ckpt.FORMAT_VERSION


def test_old_checkpoints_are_pruned_but_best_is_kept(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    _save(store, 1, 1.0, best={"val_error": 0.1})
    _save(store, 2, 2.0)
    _save(store, 3, 3.0)
    kept = sorted(p.name for p in store.root.iterdir() if p.is_dir())
    assert kept == ["step-00000001", "step-00000003"]
    assert store.load("best")[0]["layer.weight"][0, 0] == 1.0


def test_a_write_interrupted_by_an_exception_leaves_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(tmp_path)
    _save(store, 1, 1.0)
    real_write = fileio.write_file_synced

    def failing_write(path: Path, data: bytes) -> None:
        if path.name == "state.pt":
            real_write(path, data[: len(data) // 2])  # half written, then the "crash"
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(fileio, "write_file_synced", failing_write)
    with pytest.raises(OSError, match="No space"):
        _save(store, 2, 2.0)
    monkeypatch.undo()
    weights, state, _ = store.load("last")
    assert weights["layer.weight"][0, 0] == 1.0 and state["progress"]["global_step"] == 1
    assert not any(p.name.startswith(".tmp") for p in store.root.iterdir())


def test_a_crash_between_rename_and_pointer_keeps_the_old_pointer(tmp_path: Path) -> None:
    """A process killed while saving: its new folder exists, last.json still names the old one."""
    store = CheckpointStore(tmp_path)
    _save(store, 1, 1.0)
    script = f"""
import os, sys
sys.path.insert(0, {str(Path(ckpt.__file__).parents[2])!r})
import torch
from cnnzoo.train import checkpoint as c
real = c.atomic_write
def die(path, data):
    os._exit(9)  # killed after the checkpoint folder was renamed, before the pointer moved
c.atomic_write = die
store = c.CheckpointStore({str(tmp_path)!r})
store.save("step-00000002", {{"w": torch.ones(1)}}, {{}}, {{"model": "toy"}})
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert done.returncode == 9, done.stderr.decode()
    assert (store.root / "step-00000002").exists()
    assert store.read_pointer("last")["dir"] == "step-00000001"
    assert store.load("last")[0]["layer.weight"][0, 0] == 1.0


def test_a_corrupt_last_pointer_deleted_as_advised_resumes_from_the_newest(tmp_path: Path):
    store = CheckpointStore(tmp_path)
    _save(store, 1, 1.0, best={"val_error": 0.1})
    _save(store, 2, 2.0)
    _save(store, 3, 3.0)
    (store.root / "last.json").write_text('{"dir": "step-000')  # cut short
    with pytest.raises(CheckpointError, match="corrupt .*delete it and resume: the newest"):
        store.load("last")
    (store.root / "last.json").unlink()
    assert store.recover_last() == store.root / "step-00000003"
    assert store.load("last")[0]["layer.weight"][0, 0] == 3.0


def test_a_corrupt_best_pointer_stops_pruning_not_saving(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    _save(store, 1, 1.0, best={"val_error": 0.1})
    _save(store, 2, 2.0)
    (store.root / "best.json").write_text("{")
    _save(store, 3, 3.0)  # which folder best names is unknown: none is deleted
    assert sorted(p.name for p in store.root.iterdir() if p.is_dir()) == [
        "step-00000001", "step-00000002", "step-00000003"
    ]  # fmt: skip
    assert store.load("last")[0]["layer.weight"][0, 0] == 3.0


def test_truncated_weights_are_reported(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    path = _save(store, 1, 1.0)
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="model.safetensors is truncated or corrupt"):
        store.load()


def test_newer_format_is_refused_with_advice(tmp_path: Path) -> None:
    path = _save(CheckpointStore(tmp_path), 1, 1.0)
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "format": ckpt.FORMAT_VERSION + 1}))
    with pytest.raises(CheckpointError, match="Upgrade cnnzoo"):
        load_checkpoint_dir(path)


class _Payload:
    """Unpickling this would create a file: the attack a checkpoint must not be able to run."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_state_file_with_a_code_payload_is_refused_and_not_run(tmp_path: Path) -> None:
    path = _save(CheckpointStore(tmp_path), 1, 1.0)
    target = tmp_path / "pwned"
    torch.save({"progress": _Payload(target)}, path / "state.pt", pickle_protocol=2)
    with pytest.raises(CheckpointError, match="could not be loaded safely"):
        load_checkpoint_dir(path)
    assert not target.exists()
    # the same file really is an attack when loaded unsafely (so the test above can fail)
    torch.load(path / "state.pt", weights_only=False)
    assert target.exists()


def test_pointer_cannot_escape_the_checkpoint_folder(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    _save(store, 1, 1.0)
    (store.root / "last.json").write_text(json.dumps({"dir": "../../etc"}))
    with pytest.raises(CheckpointError, match="outside the checkpoint folder"):
        store.load()


def test_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "notes.txt").write_text("my notes")
    with pytest.raises(RunDirError, match="--resume"):
        prepare_run_dir(run, resume=False, force=False)
    prepare_run_dir(run, resume=False, force=True)
    backups = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert len(backups) == 1 and (backups[0] / "notes.txt").read_text() == "my notes"
    assert run.exists() and not any(run.iterdir())


def test_force_does_not_move_a_live_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "run.lock").write_text(str(os.getpid()))  # a live owner: this process
    with pytest.raises(RunDirError, match=f"in use by a running process \\({os.getpid()}\\)"):
        prepare_run_dir(run, resume=False, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (run / "config.json").exists()


def test_resume_needs_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="holds no run"):
        prepare_run_dir(tmp_path, resume=True, force=False)


def test_lock_refuses_a_live_owner_and_takes_over_a_stale_one(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "run.lock").write_text(str(sleeper.pid))
        with pytest.raises(RunDirError, match=f"process {sleeper.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()
    with RunLock(tmp_path):  # the owner is gone: stale, taken over
        assert read_lock(tmp_path / "run.lock").pid == os.getpid()
    assert not (tmp_path / "run.lock").exists()
