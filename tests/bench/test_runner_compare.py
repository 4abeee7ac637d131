"""The bench runner, `cnnzoo bench`, `cnnzoo.compare` and `cnnzoo compare`: structure only, no
timing assertions (the machine is shared)."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.bench.runner import Case, append_csv, bench, measure, train_case
from cnnzoo.cli import main
from cnnzoo.comparison import published_cifar10, published_top1


def test_measure_takes_turns_and_reports_median_min_max():
    calls = []
    cases = [
        Case(label, "toy", 4, lambda label=label: calls.append(label), torch.device("cpu"))
        for label in ("a", "b")
    ]
    a, b = measure(cases, repeat=3, warmup=1)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-ups first, then alternating turns
    assert len(a.seconds) == 3 and a.fastest <= a.median <= a.slowest
    assert a.images_per_s == pytest.approx(4 / a.median)
    assert a.peak_memory_bytes is None or a.peak_memory_bytes >= 0


def test_train_case_updates_the_model():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(5))
    model(torch.zeros(1, 3, 6, 6))
    before = model[0].weight.detach().clone()
    case = train_case("toy", model, "toy", 2, (3, 6, 6), 5, channels_last=True)
    (timing,) = measure([case], repeat=1, warmup=1)
    assert not torch.equal(before, model[0].weight)
    assert timing.settings["memory_format"] == "channels_last"


def test_bench_against_torchvision_and_csv(tmp_path):
    pytest.importorskip("torchvision")
    timings = bench(
        "squeezenet1_1",
        batch_sizes=(1,),
        against="torchvision",
        repeat=1,
        warmup=1,
        input_size=(3, 32, 32),
        device="cpu",
    )
    assert [t.label for t in timings] == ["cnnzoo", "torchvision"]
    assert timings[0].settings["optimized"] and not timings[1].settings["optimized"]
    path = append_csv(timings, tmp_path / "r.csv")
    append_csv(timings[:1], path)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 3
    for key in ("cpu", "cpu_count", "torch", "dtype", "memory_format", "batch_size", "date"):
        assert rows[0][key] != ""


def test_bench_cli_train_mode(tmp_path, capsys):
    out = tmp_path / "b.csv"
    code = main(
        [
            "bench",
            "resnet20_cifar",
            "--mode",
            "train",
            "--batch",
            "2",
            "--input",
            "3x16x16",
            "--repeat",
            "1",
            "--warmup",
            "1",
            "--channels-last",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert "images/s" in capsys.readouterr().out
    (row,) = csv.DictReader(out.open())
    assert row["mode"] == "train" and row["memory_format"] == "channels_last"


def test_published_accuracy_says_which_metric():
    assert published_top1(cnnzoo.get_spec("resnet50_tv"))[:2] == (76.13, "imagenet_top1_acc")
    value, metric, _ = published_top1(cnnzoo.get_spec("alexnet"))
    assert value == pytest.approx(100 - 40.7) and metric == "100 - imagenet_val_top1_err"
    assert published_top1(cnnzoo.get_spec("resnet20_cifar")) is None
    assert published_cifar10(cnnzoo.get_spec("resnet20_cifar"))[:2] == (8.75, "cifar10_test_err")
    assert published_cifar10(cnnzoo.get_spec("densenet_bc100_k12_cifar"))[1] == (
        "cifar10_aug_test_err"
    )


def test_compare_table_exports_and_charts(tmp_path):
    report = cnnzoo.compare(["squeezenet1_1", "resnet20_cifar", "alexnet"], batch_size=8)
    names = [r.model for r in report.rows]
    assert names == ["squeezenet1_1", "resnet20_cifar", "alexnet"]
    squeeze = report.rows[0]
    assert squeeze.params == cnnzoo.get_spec("squeezenet1_1").num_params
    assert squeeze.macs == cnnzoo.summary("squeezenet1_1").totals.macs
    assert squeeze.training_bytes > squeeze.activation_bytes > 0
    assert json.loads(report.to_json())["rows"][1]["cifar10_err"] == 8.75
    assert report.to_csv().count("\n") == 4
    assert "| squeezenet1_1 |" in report.to_markdown()
    written = report.save(tmp_path)
    stems = {p.name for p in written}
    assert {
        "accuracy_vs_macs.png",
        "accuracy_vs_macs.svg",
        "accuracy_per_mparam.png",
        "cifar10_error_vs_macs.svg",
        "compare.csv",
    } <= stems
    assert "accuracy_vs_latency.png" not in stems  # nothing measured


def test_compare_cli_measures_and_draws_latency(tmp_path, capsys):
    code = main(
        [
            "compare",
            "squeezenet1_1",
            "--input",
            "3x32x32",
            "--measure",
            "--repeat",
            "1",
            "--throughput-batch",
            "2",
            "--format",
            "markdown",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "latency b1 (ms)" in text and "Timing: eager fp32" in text
    assert (tmp_path / "accuracy_vs_latency.png").exists()


def test_compare_unknown_pattern_is_an_error():
    with pytest.raises(ValueError, match="no model matches"):
        cnnzoo.compare("nosuchnet*")


def test_peak_says_how_it_was_derived():
    from cnnzoo.bench.peak import peak_flops

    fp32 = peak_flops(torch.float32, "cpu")
    if fp32 is None:
        pytest.skip("no known vector unit or clock here")
    assert fp32.flops_per_s > 0 and "GHz" in fp32.derivation
    bf16 = peak_flops(torch.bfloat16, "cpu")
    assert bf16 is None or bf16.flops_per_s >= fp32.flops_per_s
