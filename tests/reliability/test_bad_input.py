"""Every bad name, option and input gets an answer that says what to do, before any work starts.

The rows of docs/failures.md point at these tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.train import fit, loop
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.recipes import resolve_config


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """stderr of a command that must exit with status 2 (argparse's or cnnzoo's own errors)."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    assert code == 2
    return capsys.readouterr().err


def test_unknown_model_suggests_the_closest(capsys: pytest.CaptureFixture) -> None:
    err = _cli_error(["train", "resnet20cifar", "--data", "synthetic:8"], capsys)
    assert "unknown model 'resnet20cifar'. Did you mean: resnet20_cifar" in err
    assert "Run `cnnzoo list` to see all models." in err


def test_unknown_recipe_suggests_the_closest(capsys: pytest.CaptureFixture) -> None:
    err = _cli_error(["train", "lenet5", "--recipe", "resnet_cifar"], capsys)
    assert "unknown recipe 'resnet_cifar'. Did you mean: resnet-cifar, " in err


def test_unknown_data_spec_suggests_the_closest(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    err = _cli_error(["train", "lenet5", "--data", "cifar:/data", "--out", str(out)], capsys)
    assert "unknown data set 'cifar' in data spec 'cifar:/data'. Did you mean" in err
    assert not out.exists()  # the run directory made for the run is removed again


def test_unknown_precision_lists_the_valid_ones(capsys: pytest.CaptureFixture) -> None:
    err = _cli_error(["train", "lenet5", "--precision", "bf61"], capsys)
    choices = "(choose from 'fp32', 'bf16', 'fp16', 'auto')"
    assert f"invalid choice: 'bf61' {choices}. Did you mean: bf16" in err
    # The same mistake from Python: no silent fp32 run.
    with pytest.raises(
        ValueError, match=r"precision='bf61' is not valid. Did you mean: bf16, fp16\?"
    ):
        TrainConfig(model="lenet5", precision="bf61")
    with pytest.raises(ValueError, match=r"optimizer='adma' is not valid. Did you mean: adam"):
        resolve_config("lenet5", optimizer="adma")


def test_unknown_subcommand_and_option_suggest_the_closest(capsys: pytest.CaptureFixture) -> None:
    assert "invalid choice: 'trian'" in (err := _cli_error(["trian", "lenet5"], capsys))
    assert "Did you mean: train?" in err
    err = _cli_error(["train", "lenet5", "--bach-size", "8"], capsys)
    assert "unrecognized arguments: --bach-size 8 (did you mean --batch-size" in err
    err = _cli_error(["summary", "lenet5", "--fromat", "csv"], capsys)
    assert "(did you mean --format instead of --fromat?)" in err


def test_unknown_model_option_lists_the_valid_ones(capsys: pytest.CaptureFixture) -> None:
    err = _cli_error(["train", "lenet5_modern", "--model-opt", "in_chan=3"], capsys)
    assert "unknown override(s) in_chan. Did you mean: in_chans? Valid overrides:" in err


def test_wrong_number_of_channels_names_the_fix(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the summary wraps its notes at the terminal's width
    assert main(["summary", "lenet5_modern", "--input", "3x32x32"]) == 1
    out = capsys.readouterr().out
    assert "lenet5_modern expects 1 input channel(s)" in out
    assert "create the model with in_chans=3" in out


def test_too_small_input_names_the_layer_and_the_smallest_size(
    capsys: pytest.CaptureFixture,
) -> None:
    assert main(["summary", "lenet5_modern", "--input", "1x8x8"]) == 1
    out = capsys.readouterr().out
    assert "FAILED at features.3 (Conv2d, conv2d) on input 1x6x2x2: input too small" in out
    assert "Hint: the smallest input that passes is 1x32x32" in out


def test_too_small_input_stops_training_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model given inputs smaller than it needs (here: its spec shrunk to 8x8) fails at the
    start with the analyzer's message, and leaves no half-made run behind."""
    real = cnnzoo.get_spec("lenet5_modern")
    monkeypatch.setattr(
        loop, "get_spec", lambda name: dataclasses.replace(real, input_size=(1, 8, 8))
    )
    out = tmp_path / "run"
    config = resolve_config("lenet5_modern", data="synthetic:64", epochs=1, out=str(out))
    with pytest.raises(ValueError) as info:
        fit(config)
    message = str(info.value)
    assert message.startswith("lenet5_modern cannot train on 1x8x8 inputs:")
    assert "FAILED at features.3 (Conv2d, conv2d)" in message and "input too small" in message
    assert "Hint: the smallest input that passes is 1x32x32" in message
    assert not out.exists()  # nothing half-made: the same --out can be used again


def test_max_memory_refuses_to_start_and_shows_the_estimate(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    argv = ["train", "lenet5_modern", "--data", "synthetic:64", "--epochs", "1"]
    too_much = [*argv, "--batch-size", "32", "--max-memory", "1.5MiB", "--out", str(out)]
    err = _cli_error(too_much, capsys)
    assert "the training memory estimate 2.05 MiB (lenet5_modern, adam, batch 32 per" in err
    assert "exceeds --max-memory 1.5MiB; the run was not started." in err
    assert "Lower --batch-size (the largest batch that fits is 16)" in err
    assert not out.exists()
    err = _cli_error([*argv, "--max-memory", "lots", "--out", str(out)], capsys)
    assert "memory size must look like 8GiB or 512MB, got 'lots'" in err and not out.exists()

    # Within the budget the run starts, and says what it estimated.
    assert main([*argv, "--batch-size", "16", "--max-memory", "1.5MiB", "--out", str(out)]) == 0
    shown = "training memory estimate (analyzer; adam, batch 16 per process, float32): 1.50 MiB"
    assert shown in capsys.readouterr().out
    assert (out / "results.json").exists()
