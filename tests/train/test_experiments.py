"""The experiments' plumbing on a tiny synthetic set (the real runs are experiments, not tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnzoo.cli import main
from cnnzoo.train.experiments import EXPERIMENTS, first_conv_gradient_scale, get_experiment
from cnnzoo.train.recipes import resolve_config


def test_degradation_trains_every_arm_and_writes_figure_and_table(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "degradation"
    args = [
        "experiment",
        "degradation",
        "--data",
        "synthetic:64",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    table = capsys.readouterr().out
    for arm in get_experiment("degradation").arms:
        assert f"| {arm.label} |" in table
        assert (out / arm.label.lower() / "metrics.jsonl").exists()
    saved = json.loads((out / "degradation.json").read_text())
    assert [r["model"] for r in saved["results"]] == [
        "plain20_cifar",
        "plain56_cifar",
        "resnet20_cifar",
        "resnet56_cifar",
    ]
    assert all(r["gradient_scale"] > 0 for r in saved["results"])
    assert (out / "degradation.png").stat().st_size > 10_000
    # the same recipe and seed for every arm
    configs = [
        json.loads((Path(r["run_dir"]) / "config.json").read_text())["config"]
        for r in saved["results"]
    ]
    assert len({(c["recipe"], c["seed"], c["lr"], c["batch_size"]) for c in configs}) == 1


def test_unknown_experiment_suggests(capsys: pytest.CaptureFixture) -> None:
    assert main(["experiment", "degradatoin"]) == 2
    assert "Did you mean: degradation?" in capsys.readouterr().err
    assert set(EXPERIMENTS) == {"degradation", "stochastic-depth"}


def test_plain56_first_conv_gradient_explodes_at_initialization(one_thread) -> None:
    """Why plain-56 stalls on the digits: its first convolution's gradient is hundreds of times
    its weights at initialization, where plain-20's and ResNet-56's are of order 1."""
    scale = {
        name: first_conv_gradient_scale(
            resolve_config(name, data="digits", recipe="resnet-cifar", batch_size=32), batches=3
        )
        for name in ("plain20_cifar", "plain56_cifar", "resnet56_cifar")
    }
    assert scale["plain56_cifar"] > 100
    assert scale["plain20_cifar"] < 10 and scale["resnet56_cifar"] < 10
