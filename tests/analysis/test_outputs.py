"""Exports, golden snapshots of the text output, and the `cnnzoo summary` command."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import cnnzoo
from cnnzoo.cli import main

# The terminal table at the widths people have: 80 (a default terminal), 100 and 160 columns.
_TABLES = {
    "alexnet": cnnzoo.summary,
    "googlenet_depth2": lambda name: cnnzoo.summary("googlenet", depth=2),
    "resnet50": cnnzoo.summary,
}
_WIDTHS = (80, 100, 160)


@pytest.fixture(scope="module")
def reports() -> dict[str, cnnzoo.Report]:
    return {key: make(key) for key, make in _TABLES.items()}


@pytest.mark.parametrize("width", _WIDTHS)
@pytest.mark.parametrize("key", list(_TABLES))
def test_golden_tables(golden, reports, key: str, width: int) -> None:
    golden(f"{key}_{width}.txt", reports[key].to_table(width))


@pytest.mark.parametrize("width", (*_WIDTHS, 60))
@pytest.mark.parametrize("key", list(_TABLES))
def test_table_fits_its_width_and_shows_every_name(reports, key: str, width: int) -> None:
    from cnnzoo.analysis.render import passes_through

    report = reports[key]
    lines = report.to_table(width).splitlines()
    assert max(len(line) for line in lines) <= width
    # The layer column starts each row: the tree of the names' last parts, each whole or cut
    # short with an ellipsis, never wrapped onto another line; in execution order.
    first = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    body = lines[first + 2 :]
    body = body[: next(i for i, line in enumerate(body) if line.startswith("─"))]
    cells = [line.strip().split("  ")[0] for line in body]
    position = 0
    for row in (r for r in report.layers if not passes_through(r)):
        name = row.name.split(".")[-1]
        while position < len(cells):
            cell = cells[position]
            position += 1
            if cell == name or (cell.endswith("…") and name.startswith(cell[:-1])):
                break
        else:
            raise AssertionError(f"{row.name} is not in the {width}-column table of {key}")
    assert not any("…" in line for line in body) or width < 100  # 100 columns fit every name


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
    assert "give one input as CxHxW" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--depth", "-1"], "--depth must be 0 or more (1: the model's children), got -1"),
        (["--batch", "0"], "--batch must be at least 1, got 0"),
        (["--columns", "layer,speed"], "unknown column speed; choose from layer, type, output"),
    ],
)
def test_cli_summary_refuses_bad_flags(argv, message, capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", "alexnet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_summary_of_a_factory_without_input_names_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = tmp_path / "mynet.py"
    source.write_text("from torch import nn\ndef build():\n    return nn.Conv2d(3, 8, 3)\n")
    assert main(["summary", f"{source}:build"]) == 2
    err = capsys.readouterr().err
    assert "is not a registered model" in err and "--input CxHxW, e.g. --input 3x224x224" in err


def test_cli_summary_takes_model_overrides(capsys: pytest.CaptureFixture) -> None:
    # The channel-mismatch advice (`--model-opt in_chans=1`) can be followed: the default input
    # follows the channels asked for.
    assert main(["summary", "resnet18", "--model-opt", "in_chans=1", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_size"] == [1, 224, 224]
    assert data["layers"][0]["input_shapes"] == [[1, 1, 224, 224]]
    assert data["totals"]["params"] == cnnzoo.get_spec("resnet18").num_params - 2 * 64 * 7 * 7


def test_cli_summary_columns_and_all_rows(capsys: pytest.CaptureFixture, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["summary", "alexnet", "--columns", "layer,params,rf"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("layer"))
    assert header.split() == ["layer", "params", "RF/stride"]
    assert "dropout6" not in out and "2 layer(s) that pass their input through (Dropout)" in out
    assert main(["summary", "alexnet", "--all-rows"]) == 0
    out = capsys.readouterr().out
    assert "dropout6" in out and "pass their input through" not in out
    assert max(len(line) for line in out.splitlines()) <= 200
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["summary", "alexnet"]) == 0
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 80


def test_markdown_hides_pass_through_rows_unless_asked() -> None:
    report = cnnzoo.summary("alexnet")
    assert "dropout6" not in report.to_markdown()
    assert "| classifier.dropout6 | Dropout |" in report.to_markdown(all_rows=True)
    assert "dropout6" in report.to_csv()  # data formats keep every layer


def test_readme_shows_the_real_80_column_summary(reports) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    shown = readme.split("$ COLUMNS=80 cnnzoo summary alexnet\n", 1)[1].split("\n```", 1)[0]
    assert shown == reports["alexnet"].to_table(80)
