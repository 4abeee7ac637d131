"""The one table renderer (`cnnzoo.table`) and the one number formatter (`cnnzoo.formatting`)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from cnnzoo.errors import UsageError
from cnnzoo.formatting import format_bytes, format_count
from cnnzoo.table import Column, Table, ellipsize, render, terminal_width

_TABLE = Table(
    columns=(
        Column("name", elastic=True, min_width=6),
        Column("params", align="right", format="{:,}".format),
        Column("MACs", key="macs", align="right", format=format_count),
        Column("RF", key="rf", align="right", priority=1),
        Column("notes", priority=2, elastic=True, min_width=6, only_if_any=True),
    ),
    rows=(
        ("a_very_long_layer_name_indeed", 37_752_832, 1_981_356_834_816, "355", ""),
        ("fc", 4_097_000, 4_096_000, "355", "shared with a_very_long_layer_name_indeed"),
    ),
    title="A title long enough to need wrapping at a narrow width, at spaces only",
    footer=("A footer line that is also long enough to be wrapped at spaces, never in a word",),
)


@pytest.mark.parametrize("width", [30, 40, 60, 80, 200])
def test_text_fits_the_width_and_never_splits_a_word(width: int) -> None:
    text = render(_TABLE, "table", width)
    lines = text.splitlines()
    assert max(map(len, lines)) <= width
    words = set(" ".join([_TABLE.title, *_TABLE.footer]).split())
    prose = [w for line in lines if not line.startswith(("─", "name", "a_", "fc"))
             for w in line.split()]  # fmt: skip
    assert set(prose) <= words  # wrapped prose: whole words only
    rows = [line for line in lines if line.startswith(("a_", "fc"))]
    assert len(rows) == 2  # one line per row: nothing wraps
    assert rows[0].startswith("a_very_long_layer_name_indeed") or "…" in rows[0].split()[0]


def test_optional_columns_join_as_the_width_allows() -> None:
    def header(width: int) -> list[str]:
        return next(x for x in render(_TABLE, "table", width).splitlines() if x.startswith("name"))

    assert header(45).split() == ["name", "params", "MACs"]
    assert header(60).split() == ["name", "params", "MACs", "RF"]
    assert header(62).split() == ["name", "params", "MACs", "RF", "notes"]  # 6 left for notes
    assert "shared with a_very_long_layer_name_indeed" in render(_TABLE, "table", 200)
    no_notes = Table(columns=_TABLE.columns, rows=tuple((*r[:4], "") for r in _TABLE.rows))
    assert "notes" not in render(no_notes, "table", 200)  # only when some row has one


def test_data_formats_keep_raw_values() -> None:
    rows = list(csv.reader(io.StringIO(render(_TABLE, "csv"))))
    assert rows[0] == ["name", "params", "macs", "rf", "notes"]
    assert rows[1][1:3] == ["37752832", "1981356834816"]
    data = json.loads(render(_TABLE, "json"))
    assert data["rows"][1]["macs"] == 4_096_000 and data["footer"] == list(_TABLE.footer)
    md = render(_TABLE, "markdown")
    assert "| a_very_long_layer_name_indeed | 37,752,832 | 1.98T | 355 |  |" in md
    assert "|---|---:|---:|---:|---|" in md


def test_select_columns_and_unknown_ones() -> None:
    picked = _TABLE.select(["name", "RF"])
    assert [c.header for c in picked.columns] == ["name", "RF"]
    assert "RF" in render(picked, "table", 20)  # chosen columns are shown at any width
    with pytest.raises(UsageError, match="unknown column speed; choose from name, params"):
        _TABLE.select(["speed"])
    with pytest.raises(ValueError, match="unknown format"):
        render(_TABLE, "html")


def test_width_comes_from_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "123")
    assert terminal_width() == 123
    assert ellipsize("features.conv1", 8) == "feature…" and ellipsize("fc6", 8) == "fc6"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (999, "999"),
        (1_000, "1.00K"),
        (60_965_224, "61.0M"),
        (105_415_200, "105M"),
        (999_999, "1.00M"),
        (1_981_356_834_816, "1.98T"),
        (-2_500, "-2.50K"),
        (12_345_678_901_234_567, "12,346T"),
    ],
)
def test_format_count(n: int, text: str) -> None:
    assert format_count(n) == text


def test_format_bytes() -> None:
    assert format_bytes(1_161_600) == "1.11 MiB" and format_bytes(512) == "512 B"


def test_the_zoo_table_fits_80_columns() -> None:
    from cnnzoo import zoo

    rows = zoo.zoo_rows("lenet*") + zoo.zoo_rows("densenet_bc100_k12_cifar")
    text = zoo.render_rows(rows, "table", width=80)
    assert max(map(len, text.splitlines())) <= 80
    assert "densenet_bc100_k12_cifar" in text  # the name column gives width last
    assert "| lenet5 | lenet | LeCun et al. | 1998 | 1x32x32 | 60,000 | 326K |" in (
        zoo.render_rows(rows, "markdown")
    )
