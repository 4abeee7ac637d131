"""Smoke runs of the benchmark scripts: they run, write their CSV and rewrite their tables.
No figure they print is checked (the machine running the suite is shared)."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", ROOT / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inference_script_writes_csv_and_rewrites_the_tables(tmp_path, capsys):
    pytest.importorskip("torchvision")
    inference = _script("inference")
    page = tmp_path / "B.md"
    page.write_text(f"# B\n\nbefore\n{inference.BEGIN}\nold table\n{inference.END}\nafter\n")
    out = tmp_path / "inference-this-cpu.csv"
    inference.main(
        [
            "--models",
            "squeezenet1_1",
            "--batch",
            "1",
            "--repeat",
            "1",
            "--warmup",
            "1",
            "--input",
            "3x32x32",
            "--gemm-size",
            "64",
            "--peers",
            "torchvision,channels-last",
            "--no-compile",
            "--out",
            str(out),
            "--markdown",
            str(page),
        ]
    )
    rows = list(csv.DictReader(out.open()))
    labels = [r["label"] for r in rows]
    assert labels[:3] == ["torchvision", "torchvision channels-last", "cnnzoo eager"]
    assert "cnnzoo fp32" in labels
    assert all(r["load_before"] and r["gemm_fp32_gflops"] for r in rows)
    assert all(float(r["other_cpu_cores"]) >= 0 for r in rows)
    text = page.read_text()
    assert "(`" in text and "inference-this-cpu.csv`)" in text  # the machine's section
    assert "other processes' CPU during each model" in text
    assert "old table" not in text and text.startswith("# B\n\nbefore\n") and "after" in text
    assert "| squeezenet1_1 | 1 | torchvision | fp32, contiguous, BN folded 0, eager" in text
    assert "cnnzoo's best fp32 path" in text
    # --tables-only rebuilds the same tables from the CSV without measuring
    first = text
    inference.main(["--tables-only", "--out", str(out), "--markdown", str(page)])
    assert page.read_text() == first


def test_profile_script_writes_csvs_rooflines_and_the_table(tmp_path):
    profile_script = _script("layer_profile")
    page = tmp_path / "B.md"
    page.write_text(f"x\n{profile_script.BEGIN}\n{profile_script.END}\n")
    out = tmp_path / "profile"
    profile_script.main(
        [
            "--models",
            "squeezenet1_1:1,resnet20_cifar:1",
            "--repeat",
            "1",
            "--warmup",
            "1",
            "--input",
            "3x32x32",
            "--gemm-size",
            "64",
            "--out",
            str(out),
            "--markdown",
            str(page),
        ]
    )
    assert (out / "squeezenet1_1_profile.csv").exists()
    assert (out / "resnet20_cifar_roofline.svg").exists()
    text = page.read_text()
    assert "| squeezenet1_1 | 1 |" in text and "| resnet20_cifar | 1 |" in text
    assert "squeezenet1_1: 1x1 convolutions (squeeze, expand1x1) reach a median" in text


def test_markers_must_be_there(tmp_path):
    from cnnzoo.bench.markdown import rewrite_between
    from cnnzoo.errors import UsageError

    page = tmp_path / "p.md"
    page.write_text("no markers\n")
    with pytest.raises(UsageError, match="needs exactly one <a> followed by one <b>"):
        rewrite_between(page, "<a>", "<b>", "t")
    page.write_text("1\n<a>\nold\n<b>\n2\n")
    rewrite_between(page, "<a>", "<b>", "new")
    assert page.read_text() == "1\n<a>\nnew\n<b>\n2\n"
