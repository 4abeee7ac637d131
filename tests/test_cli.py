"""The `cnnzoo` command line, in process and as the installed console script."""

from __future__ import annotations

import json
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
    assert main(["list", "lenet55"]) == 1
    assert "no model matches 'lenet55'. Did you mean: lenet5" in capsys.readouterr().err


def test_list_matches_substrings_sorts_naturally_and_writes_json(
    capsys: pytest.CaptureFixture,
) -> None:
    assert main(["list", "resnet1", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    names = [row["model"] for row in rows]
    order = ["resnet18", "resnet101", "resnet110_cifar", "resnet1202_cifar"]
    assert sorted(order, key=names.index) == order  # numbers by value: 18 < 101 < 110 < 1202
    assert all("resnet1" in n for n in names) and "preact_resnet18" in names  # a substring
    row = next(r for r in rows if r["model"] == "resnet110_cifar")
    spec = cnnzoo.get_spec("resnet110_cifar")
    assert row["input"] == [3, 32, 32] and row["params"] == spec.num_params
    assert row["macs"] == spec.macs and row["year"] == spec.paper.year


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"cnnzoo {cnnzoo.__version__}"


def test_a_failing_report_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A report that fails while it writes removes the folder it made, and leaves a folder
    that was there before (with its files) alone."""
    from cnnzoo.errors import UsageError
    from cnnzoo.viz import report

    def fail(name: str) -> str:
        raise UsageError("no page today")

    monkeypatch.setattr(report, "report_html", fail)
    out = tmp_path / "new" / "report"
    assert main(["report", "lenet5", "--out", str(out)]) == 2
    assert "cnnzoo report: no page today" in capsys.readouterr().err
    assert not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("mine")
    assert main(["report", "lenet5", "--out", str(kept)]) == 2
    assert (kept / "mine.txt").read_text() == "mine"


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
