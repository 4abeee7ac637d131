"""Ctrl-C and SIGTERM at any moment of `cnnzoo train`: a real process is signalled at each point
of its life (resolving the config, taking the run folder, loading the data, building and
checking the model, a step, the validation, a checkpoint write, the final evaluation). Each
ends with exit 130 and no traceback, leaving either a run folder that resumes or no folder.

To hit a point exactly, the process is started through a small harness that wraps the function
that runs at that point so that the process signals itself there (`os.kill`), as a terminal's
Ctrl-C or a scheduler's SIGTERM would. The processes run side by side to keep the test short."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnzoo.train import fit
from cnnzoo.train.checkpoint import CheckpointStore

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
# 64 training images / batch 16 = 4 steps an epoch; 8 validation and 8 test images.
TRAIN = ["train", "lenet5_modern", "--data", "synthetic:64", "--batch-size", "16", "--seed", "2"]

HARNESS = r"""
import os, signal, sys
point, sig, argv = sys.argv[1], getattr(signal, sys.argv[2]), sys.argv[3:]

def hit():
    os.kill(os.getpid(), sig)

def on_call(owner, name, n):
    real, calls = getattr(owner, name), [0]
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            hit()
        return real(*args, **kwargs)
    setattr(owner, name, wrapped)

import cnnzoo.cli
from cnnzoo.train import loop, recipes
from cnnzoo.train.checkpoint import CheckpointStore
from cnnzoo.train.rundir import RunLock
owner, name, n = {
    "config": (recipes, "resolve_config", 1),
    "run folder": (RunLock, "acquire", 1),
    "data": (loop, "open_dataset", 1),
    "model": (loop, "create_model", 1),
    "analyzer": (loop, "check_trainable", 1),
    "step": (loop, "training_loss", 3),
    "validation": (loop, "evaluate_model", 1),
    "checkpoint": (CheckpointStore, "save", 1),
    "final evaluation": (loop, "evaluate_model", 3),
}[point]
on_call(owner, name, n)
sys.exit(cnnzoo.cli.main(argv))
"""

# point -> (signal, what stderr says, whether a resumable run folder is left)
POINTS = {
    "config": ("SIGTERM", "cnnzoo train: stopped while starting; no run was started", False),
    "run folder": (
        "SIGINT",
        "SIGINT received before the first training step; {run} was removed",
        False,
    ),
    "data": (
        "SIGTERM",
        "SIGTERM received before the first training step; {run} was removed",
        False,
    ),
    "model": ("SIGINT", "SIGINT received before the first training step; {run} was removed", False),
    "analyzer": (
        "SIGINT",
        "SIGINT received before the first training step; {run} was removed",
        False,
    ),
    "step": ("SIGTERM", "SIGTERM received at epoch 1, step 3; checkpoint saved to", True),
    "validation": ("SIGINT", "SIGINT received while validating epoch 1; checkpoint saved to", True),
    "checkpoint": ("SIGINT", "SIGINT received at epoch 2, step 1; checkpoint saved to", True),
    "final evaluation": (
        "SIGTERM",
        "SIGTERM received during the final evaluation; training is complete and saved",
        True,
    ),
}


def test_a_stop_at_any_moment_ends_cleanly_and_leaves_a_run_or_nothing(
    tmp_path: Path, one_thread
) -> None:
    procs = {}
    for point, (sig, _, _) in POINTS.items():
        run = tmp_path / point.replace(" ", "-")
        argv = [*TRAIN, "--epochs", "2", "--out", str(run)]
        procs[point] = subprocess.Popen(
            [sys.executable, "-c", HARNESS, point, sig, *argv],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        ended = {point: proc.communicate(timeout=600) for point, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.kill()
    for point, (_, said, resumable) in POINTS.items():
        run = tmp_path / point.replace(" ", "-")
        out, err = ended[point]
        assert procs[point].returncode == 130, f"{point}: {out[-1500:]}{err[-3000:]}"
        assert "Traceback" not in err, f"{point}: {err}"
        assert said.format(run=run) in err, f"{point}: {err}"
        if not resumable:
            assert not run.exists(), f"{point}: left {sorted(p.name for p in run.iterdir())}"
            continue
        assert f"Resume with: cnnzoo train --resume {run}" in err or "--resume" in err
        assert not (run / "run.lock").exists()
        CheckpointStore(run).load("last")  # names a complete checkpoint
        assert not (run / "results.json").exists()
        result = fit(resume=run)
        assert result.epochs_completed == 2 and result.steps == 8, point
        assert [
            json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()
        ] == [
            1,
            2,
        ]
        assert json.loads((run / "results.json").read_text())["test_accuracy"] is not None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_in_the_first_half_second_ends_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    """During the imports: `python -m cnnzoo.cli` spends its first seconds in `import torch`
    (2 s on an idle machine); the package face is lazy, so cnnzoo's own code is running by then
    and catches the signal."""
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnzoo.cli", *TRAIN, "--epochs", "1", "--out", str(run)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "stopped while starting" in err, err
    assert not run.exists()
