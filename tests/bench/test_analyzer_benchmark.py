"""A smoke run of benchmarks/analyzer.py: one repeat, one small model, cnnzoo alone."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "analyzer.py"


def test_the_analyzer_benchmark_writes_rows_with_machine_and_load(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("analyzer_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "analyzer-this-cpu.csv"
    page = tmp_path / "B.md"
    page.write_text(f"# B\n{bench.BEGIN}\nold\n{bench.END}\nafter\n")
    bench.main([
        "--models", "resnet20_cifar", "--repeat", "1", "--no-peers", "--out", str(out),
        "--markdown", str(page),
    ])  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    keys = {(r["tool"], r["input"], r["batch_size"]) for r in rows}
    assert keys == {
        ("cnnzoo", "3x224x224", "1"),
        ("cnnzoo", "3x512x512", "8"),
        ("cnnzoo", "3x1024x1024", "64"),
        ("cnnzoo-first", "3x224x224", "1"),
        ("bookkeeping-off", "3x224x224", "1"),
    }
    for row in rows:
        assert row["cpu"] and row["load_before"] and row["load_after"] and row["torch"]
        assert float(row["min_s"]) <= float(row["median_s"]) <= float(row["max_s"])
    text = page.read_text()
    assert "old" not in text and "#### " in text and "(`analyzer-this-cpu.csv`)" in text
    assert "| resnet20_cifar |" in text and "flat in input size and batch" in text
    assert "faster than torchinfo" not in text  # no peer was timed: no verdict on it
    assert "| bookkeeping off |" in text


def test_the_bookkeeping_off_pass_records_nothing_and_puts_the_tracer_back() -> None:
    spec = importlib.util.spec_from_file_location("analyzer_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model = bench.build("resnet20_cifar")
    bare = bench.bookkeeping_off(model, (3, 32, 32), 1)
    assert bare.failure is None and bare.rows == ()
    traced = bench.trace_module.trace(model, (1, 3, 32, 32))
    assert len(traced.rows) > 50
