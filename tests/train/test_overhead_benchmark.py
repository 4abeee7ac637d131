"""A one-step smoke run of the trainer-overhead benchmark (benchmarks/training.py --overhead):
it runs and writes its CSV rows. The numbers themselves are measured on an idle machine."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "training.py"


def test_overhead_benchmark_smoke(tmp_path: Path, one_thread) -> None:
    spec = importlib.util.spec_from_file_location("training_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--overhead", "--epochs", "1", "--max-steps", "1", "--repeat", "1"]
    page = tmp_path / "B.md"
    page.write_text("# B\n" + "\n".join(module.OVERHEAD) + "\n" + "\n".join(module.SPEED) + "\n")
    module.main([*argv, "--out", str(tmp_path), "--markdown", str(page)])
    rows = list(csv.DictReader((tmp_path / "training_overhead.csv").open()))
    assert [(r["model"], r["batch_size"]) for r in rows] == [
        ("resnet20_cifar", "128"),
        ("lenet5", "32"),
    ]
    for row in rows:
        assert float(row["fit_step_ms"]) > 0 and float(row["bare_step_ms"]) > 0
        assert row["fit_steps"] == "1" and len(row["load_before"].split()) == 3
        assert "cpu_flags" in row and "cpu_model" in row
    text = page.read_text()
    assert "| resnet20_cifar (sgd) | 128 |" in text and "| lenet5 (adam) | 32 |" in text
    assert "of a bare step's throughput; target at least 95%" in text
