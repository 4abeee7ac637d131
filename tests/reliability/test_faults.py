"""Faults during a run lose no work: unwritable folders, a disk that fills mid-checkpoint or while
metrics and plots are written, refused permissions and read-only file systems, checkpoints of
another model, SIGTERM, and SIGKILL at random points of a real training process.

The rows of docs/failures.md point at these tests."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cnnzoo import create_model, fileio
from cnnzoo.cli import main
from cnnzoo.train import fit
from cnnzoo.train.checkpoint import CheckpointStore, CheckpointWriteError
from cnnzoo.train.recipes import resolve_config

CLI = [sys.executable, "-m", "cnnzoo.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
# 128 training images / batch 16 = 8 steps an epoch: tiny, but long enough to be killed in.
STEPS = 8
TRAIN = ["lenet5_modern", "--data", "synthetic:128", "--batch-size", "16", "--seed", "1"]


def _config(out: Path, epochs: int):
    return resolve_config(
        "lenet5_modern", data="synthetic:128", batch_size=16, seed=1, epochs=epochs, out=str(out)
    )


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(CheckpointStore(run_dir).path("last") / "model.safetensors")


def _train_losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["train_loss"] for line in lines]


def _epochs_logged(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line)["epoch"] for line in lines]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "lenet5_modern"
    fit(_config(run, epochs=1))
    return run


def test_run_directory_that_cannot_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    out = blocker / "run"
    assert main(["train", *TRAIN, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write to run directory {out}: Not a directory" in err
    assert blocker.read_text() == "a file where a folder should be"


def test_evaluation_folder_that_cannot_be_written(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    before = _weights(trained)
    assert main(["evaluate", str(trained), "--out", str(blocker / "eval")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the evaluation to {blocker / 'eval'}: Not a directory" in err
    assert "Choose another --out." in err
    after = _weights(trained)
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("failing", ["state.pt", "last.json"])
def test_disk_full_during_a_checkpoint_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, one_thread
) -> None:
    """ENOSPC while writing the epoch-2 checkpoint (its state file, or the `last` pointer):
    the run stops with advice, epoch 1's checkpoint stays `last`, and --resume finishes."""
    run = tmp_path / "run"
    real_write = fileio.write_file_synced
    calls = {"n": 0}

    def write(path: Path, data: bytes) -> None:
        calls["n"] += failing in path.name
        if failing in path.name and calls["n"] == 2:  # the second checkpoint
            real_write(path, data[: len(data) // 3])  # part of it reached the disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, data)

    monkeypatch.setattr(fileio, "write_file_synced", write)
    with pytest.raises(CheckpointWriteError) as info:
        fit(_config(run, epochs=2))
    monkeypatch.undo()
    message = str(info.value)
    assert "No space left on device. The previous checkpoint is kept:" in message
    assert "step-00000008" in message and f"cnnzoo train --resume {run}" in message
    store = CheckpointStore(run)
    _, state, _ = store.load("last")
    assert state["progress"] == {**state["progress"], "epoch": 1, "global_step": STEPS}
    assert not (run / "run.lock").exists()

    result = fit(resume=run)
    assert result.epochs_completed == 2 and result.steps == 2 * STEPS
    assert _epochs_logged(run) == [1, 2]
    assert not [p.name for p in store.root.iterdir() if ".tmp" in p.name]


def test_a_folder_holding_only_a_killed_runs_lock_is_reused(tmp_path: Path) -> None:
    """A run killed during start-up, before it wrote its config, leaves only `run.lock`: the
    same command starts again (a live owner's lock is still refused)."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.lock").write_text(str(dead.pid))
    assert fit(_config(run, epochs=1)).epochs_completed == 1
    assert not (run / "run.lock").exists()


def _foreign_checkpoint(trained: Path, tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the run whose last checkpoint holds LeNet-5 (classic) weights instead."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    folder = CheckpointStore(run).path("last")
    foreign = create_model("lenet5", num_classes=10).state_dict()
    save_file({k: v.contiguous() for k, v in foreign.items()}, folder / "model.safetensors")
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "model": "lenet5"}))
    return run, foreign


@pytest.mark.parametrize("command", ["evaluate", "predict", "resume"])
def test_checkpoint_of_another_model_lists_keys_and_names_the_model_it_fits(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture, command: str
) -> None:
    run, foreign = _foreign_checkpoint(trained, tmp_path)
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.new("L", (32, 32), 128).save(image)
    argv = {
        "evaluate": ["evaluate", str(run)],
        "predict": ["predict", str(run), str(image)],
        "resume": ["train", "--resume", str(run)],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "(saved from 'lenet5') cannot be loaded into the run's model" in err
    assert "the state dict does not fit lenet5_modern:" in err
    assert "missing keys: classifier.0.bias, classifier.0.weight" in err
    assert "unexpected keys:" in err and "it fits: lenet5" in err
    kept = load_file(CheckpointStore(run).path("last") / "model.safetensors")
    assert all(torch.equal(kept[k], foreign[k]) for k in foreign)  # nothing overwritten
    assert _epochs_logged(run) == [1]


def _wait(condition: Callable[[], bool], proc: subprocess.Popen, what: str, timeout=180) -> None:
    """Wait for an observable condition of a running process (bounded)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the process ended (rc {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _lock_holder(run: Path) -> int | None:
    try:
        return int((run / "run.lock").read_text().split("\n")[0])  # pid, host, start time
    except (OSError, ValueError):
        return None


def test_sigterm_saves_a_fresh_checkpoint_first(tmp_path: Path, one_thread) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [*CLI, "train", *TRAIN, "--epochs", "4", "--out", str(run)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = CheckpointStore(run)
    _wait(lambda: store.exists("last"), proc, "the first checkpoint")
    before = json.loads((store.root / "last.json").read_text())["dir"]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "SIGTERM received at epoch" in err
    assert f"Resume with: cnnzoo train --resume {run}" in err
    step = store.load("last")[1]["progress"]["global_step"]
    assert step > int(before.split("-")[1])  # a new checkpoint, written on the signal
    assert f"checkpoint saved to {store.path('last')}" in err
    assert not (run / "run.lock").exists()
    assert fit(resume=run).steps == 4 * STEPS


def test_sigkill_at_random_points_then_resume_continues(tmp_path: Path, one_thread) -> None:
    """Kill a real `cnnzoo train` process three times, at random points (seeded): just after it
    wrote its config (start-up or first epoch), then mid-run twice. Each resume starts from the
    last complete checkpoint, and the run ends with the weights and metrics of a run never
    interrupted."""
    epochs = 10
    rng = random.Random(20261128)
    # (epochs logged before the kill, then a random further delay in seconds)
    points = [(0, rng.uniform(0, 0.5)), (rng.randint(2, 3), rng.uniform(0, 0.2))]
    points.append((rng.randint(5, 6), rng.uniform(0, 0.2)))
    run = tmp_path / "run"
    store = CheckpointStore(run)
    log = tmp_path / "out.txt"
    for i, (logged, delay) in enumerate(points):
        last = store.load("last")[1]["progress"]["global_step"] if store.exists("last") else None
        argv = ["train", "--resume", str(run)] if i else ["train", *TRAIN, "--out", str(run)]
        argv += [] if i else ["--epochs", str(epochs)]
        with log.open("w") as out:
            proc = subprocess.Popen([*CLI, *argv], env=ENV, stdout=out, stderr=subprocess.STDOUT)
            _wait(lambda p=proc: _lock_holder(run) == p.pid, proc, "the run lock")
            _wait(lambda: (run / "config.json").exists(), proc, "the run's config")
            if i:
                _wait(lambda: "resuming" in log.read_text(), proc, "the resume line")
            _wait(lambda n=logged: len(_epochs_logged(run)) >= n, proc, f"epoch {logged}")
            time.sleep(delay)  # the random point; not synchronization
            proc.kill()
            assert proc.wait(timeout=60) == -signal.SIGKILL, "it ended before being killed"
        text = log.read_text()
        if i and last is None:
            assert "no checkpoint was written yet; starting from the beginning" in text
        elif i:
            assert f"resuming {run} at epoch {last // STEPS + 1}, step {last}" in text
        assert (run / "config.json").exists()
        if store.exists("last"):
            store.load("last")  # the pointer names a complete checkpoint

    result = fit(resume=run)  # the stale lock of the killed process is taken over
    assert result.epochs_completed == epochs and result.steps == epochs * STEPS
    assert _epochs_logged(run) == list(range(1, epochs + 1))
    assert not (run / "run.lock").exists()
    assert sorted(p.name for p in store.root.iterdir()) == sorted(
        {"last.json", "best.json", store.path("last").name, store.path("best").name}
    )

    straight = tmp_path / "straight"
    fit(_config(straight, epochs))
    a, b = _weights(straight), _weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _train_losses(run) == _train_losses(straight)


def _fail_on(monkeypatch, owner, name: str, target: str, nth: int, code: int) -> None:
    """Make `owner.name(path, ...)` raise OSError(code) on its `nth` call for a file named
    `target` (after writing part of a line, for appends: a full disk cuts it short)."""
    real, calls = getattr(owner, name), {"n": 0}

    def failing(path, data, *rest):
        if Path(path).name == target:
            calls["n"] += 1
            if calls["n"] == nth:
                if name == "append_synced":
                    with open(path, "a") as f:
                        f.write(data[:10])
                raise OSError(code, os.strerror(code))
        return real(path, data, *rest)

    monkeypatch.setattr(owner, name, failing)


@pytest.mark.parametrize(
    ("where", "owner", "name", "target"),
    [
        ("metrics", "cnnzoo.train.rundir", "append_synced", "metrics.jsonl"),
        ("plot", "cnnzoo.train.plots", "atomic_write", "curves.png"),
    ],
)
def test_disk_full_while_logging_an_epoch_keeps_what_was_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread, where, owner, name, target
) -> None:
    """ENOSPC appending epoch 2's metrics line (part of it reached the disk) or writing its
    curves: the run stops with advice; epoch 1's checkpoint, metrics and plot are intact; the
    resume redoes epoch 2 and ends as a run never stopped."""
    import importlib

    from cnnzoo.errors import RunDirError

    run = tmp_path / "run"
    _fail_on(monkeypatch, importlib.import_module(owner), name, target, 2, errno.ENOSPC)
    with pytest.raises(RunDirError) as info:
        fit(_config(run, epochs=2))
    monkeypatch.undo()
    store = CheckpointStore(run)
    assert str(info.value) == (
        f"could not write {run / target}: No space left on device. Nothing saved before is lost "
        f"(last checkpoint: {store.path('last')}). Free space or fix the folder's permissions, "
        f"then resume with: cnnzoo train --resume {run}"
    )
    assert store.load("last")[1]["progress"]["epoch"] == 1
    assert (run / "curves.png").stat().st_size > 5_000
    assert not (run / "run.lock").exists() and not (run / "results.json").exists()
    fit(resume=run)
    assert _epochs_logged(run) == [1, 2]
    straight = tmp_path / "straight"
    fit(_config(straight, epochs=2))
    assert _train_losses(run) == _train_losses(straight)


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_a_run_folder_that_refuses_writes_is_named_and_left_as_it_was(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, code: int
) -> None:
    """Permission denied, or a read-only file system (root ignores permissions, so the refusal
    is injected where every file is written): `--resume` and `evaluate` stop at the first write
    with the reason, and no file of the run changes."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}

    def refuse(path, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fileio, "write_file_synced", refuse)
    (run / "results.json").unlink()  # so that the resume has something to do
    del before[run / "results.json"]
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"cnnzoo train: cannot take the lock {run / 'run.lock'}: {os.strerror(code)}. Check that "
        "the run folder is writable (permissions, a read-only or full file system).\n"
    )
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the evaluation to {run / 'evaluation'}: {os.strerror(code)}" in err
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before
