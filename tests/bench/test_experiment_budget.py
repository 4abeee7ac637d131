"""Smoke test of benchmarks/experiment_budget.py (the estimate itself is measured alone)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from cnnzoo.train.experiments import Arm, Experiment

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "experiment_budget.py"


def test_estimate_adds_up() -> None:
    spec = importlib.util.spec_from_file_location("experiment_budget", SCRIPT)
    budget = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = budget  # dataclasses look their module up there
    spec.loader.exec_module(budget)
    tiny = Experiment("tiny", "q", "c", "lenet-digits", (Arm("a", "lenet5_modern"),), epochs=4)
    result = budget.estimate(tiny, data="synthetic:64", steps=1, jobs=2, seeds=3)
    assert result.steps_per_epoch == 2 and result.val_batches == 1  # 64 / 32, 8 validation
    step = result.step_seconds["a"]
    assert step > 0
    per_epoch = (step * (2 + budget.EVAL_STEP_SHARE) + budget.EPOCH_OVERHEAD) * 3 / 2
    assert result.seconds_per_epoch == pytest.approx(per_epoch)
    assert result.total_seconds == pytest.approx(4 * per_epoch)
    assert result.epochs_within(10 * per_epoch + 1e-9) == 10
