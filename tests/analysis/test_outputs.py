"""Exports, golden snapshots of the text output, and the `cnnzoo summary` command."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import cnnzoo
from cnnzoo.cli import main


def test_golden_alexnet_table(golden) -> None:
    golden("alexnet_table.txt", cnnzoo.summary("alexnet").to_table())


def test_golden_alexnet_explain(golden) -> None:
    golden("alexnet_explain.txt", cnnzoo.summary("alexnet").explain())


def test_golden_zfnet_explain(golden) -> None:
    golden("zfnet_explain.txt", cnnzoo.summary("zfnet", find_exact_inputs=True).explain())


def test_golden_resnet18_blocks_markdown(golden) -> None:
    golden("resnet18_depth2.md", cnnzoo.summary("resnet18", depth=2).to_markdown())


def test_golden_lenet5_csv(golden) -> None:
    golden("lenet5.csv", cnnzoo.summary("lenet5").to_csv())


def test_csv_and_json_carry_every_layer_and_the_totals() -> None:
    report = cnnzoo.summary("googlenet")
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert [r["name"] for r in rows] == [r.name for r in report.layers]
    assert sum(int(r["macs"]) for r in rows) == report.totals.macs
    conv1 = rows[0]
    assert (conv1["kernel"], conv1["stride"], conv1["output_shapes"]) == (
        "7x7",
        "2x2",
        "1x64x112x112",
    )
    data = json.loads(report.to_json())
    assert data["totals"]["macs"] == report.totals.macs == cnnzoo.get_spec("googlenet").macs
    assert data["totals"]["params"] == report.totals.params
    assert data["totals"]["unused_params"] > 0  # the auxiliary heads
    assert len(data["layers"]) == len(report.layers)
    assert data["layers"][0]["rf_size"] == [7, 7]
    concat = next(r for r in data["layers"] if r["name"] == "inception3a.concat")
    assert concat["flops"] == 0 and concat["output_shapes"] == [[1, 256, 28, 28]]


def test_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    frame = cnnzoo.summary("vgg11").to_dataframe()
    assert isinstance(frame, pd.DataFrame) and frame["macs"].sum() == cnnzoo.get_spec("vgg11").macs


def test_cli_summary_formats(capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", "alexnet", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("0,features.conv1,Conv2d,2,module")
    assert main(["summary", "alexnet", "--format", "json", "--batch", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["macs"] == 2 * 724_406_816
    assert main(["summary", "resnet18", "--depth", "1", "--format", "markdown"]) == 0
    assert "| layer1 | Sequential | 64x56x56 |" in capsys.readouterr().out
    assert main(["summary", "alexnet", "--explain"]) == 0
    assert "(227 + 2*0 - 11) / 4 + 1 = 55" in capsys.readouterr().out
    assert main(["summary", "resnet18", "--fit", "8GiB"]) == 0
    assert "Largest batch whose training estimate (adam) fits in 8GiB" in capsys.readouterr().out


def test_cli_summary_of_a_users_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "mynet.py"
    source.write_text(
        "from torch import nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2))\n"
    )
    assert main(["summary", f"{source}:build", "--input", "3x32x32"]) == 0
    out = capsys.readouterr().out
    assert "8x15x15" in out and "224" in out  # 3*3*3*8 + 8 = 224 parameters


def test_cli_summary_failure_exits_1(capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", "vgg16", "--input", "3x16x16"]) == 1
    out = capsys.readouterr().out
    assert "FAILED at features.30" in out and "smallest input that passes is 3x32x32" in out


def test_cli_summary_bad_input_size(capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", "alexnet", "--input", "big"]) == 2
    assert "input size must look like 3x224x224" in capsys.readouterr().err
