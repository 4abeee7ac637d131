"""The `cnnzoo` command line, in process and as the installed console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import cnnzoo
from cnnzoo.cli import main


def test_list_prints_measured_parameters_and_macs(capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "resnet*_cifar", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "model,family,paper,year,input,params,macs"
    rows = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    assert set(rows) == set(cnnzoo.list_models("resnet*_cifar"))
    spec = cnnzoo.get_spec("resnet20_cifar")
    assert rows["resnet20_cifar"][4:] == ["3x32x32", str(spec.num_params), str(spec.macs)]


def test_list_markdown_and_table(capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "lenet*", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| lenet5 | lenet | LeCun et al. | 1998 | 1x32x32 | 60,000 | 326K |" in out
    assert main(["list", "vgg16"]) == 0
    out = capsys.readouterr().out
    assert "vgg16" in out and "138,357,544" in out and "15.5G" in out


def test_list_with_no_match_fails(capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "nothing*"]) == 1
    assert "no model matches" in capsys.readouterr().err


def test_info_shows_paper_deviations_and_results(capsys: pytest.CaptureFixture) -> None:
    assert main(["info", "zfnet"]) == 0
    out = capsys.readouterr().out
    assert "arXiv 1311.2901" in out and "62,357,608" in out
    assert "imagenet_val_top1_err = 38.4" in out
    assert "deviations from the paper" in out and "110, 55, 26, 13 and 6" in out


def test_unknown_model_exits_2_with_suggestions(capsys: pytest.CaptureFixture) -> None:
    assert main(["info", "resnet5"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'resnet5'" in err and "resnet50" in err


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "cnnzoo"  # installed beside this interpreter
    assert exe.exists(), "the cnnzoo console script is not installed (pip install -e .)"
    done = subprocess.run([exe, "info", "lenet5"], capture_output=True, text=True, check=True)
    assert "60,000" in done.stdout
