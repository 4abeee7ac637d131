"""The bench runner, `cnnzoo bench`, `cnnzoo.compare` and `cnnzoo compare`: structure only, no
timing assertions (the machine is shared)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.bench.machine import Load
from cnnzoo.bench.runner import Case, Timing, append_csv, bench, measure, speedups, train_case
from cnnzoo.cli import main
from cnnzoo.comparison import published_cifar10, published_top1
from cnnzoo.errors import UsageError


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


def test_bench_is_like_for_like_by_default_and_csv(tmp_path):
    pytest.importorskip("torchvision")
    run = bench(
        "squeezenet1_1",
        batch_sizes=(1,),
        against="torchvision",
        repeat=1,
        warmup=1,
        input_size=(3, 32, 32),
        device="cpu",
        gemm_size=64,
    )
    ours, peer = run.timings
    assert [ours.label, peer.label] == ["cnnzoo", "torchvision"]
    # Both sides eager fp32 contiguous, batch norms kept, and the row says so.
    assert ours.case == peer.case == "fp32, contiguous, BN folded 0, eager, torch"
    assert not ours.settings["optimized"] and not peer.settings["optimized"]
    assert ours.settings["source"] == "cnnzoo" and peer.settings["source"] == "torchvision"
    assert ours.flops == 2 * cnnzoo.summary("squeezenet1_1", (3, 32, 32)).totals.macs
    assert all(ours.case in line for line in run.lines()[:1])
    assert run.fraction_of_gemm(ours) == pytest.approx(ours.flops_per_s / run.ceilings.gemm["fp32"])
    path = append_csv(run, tmp_path / "r.csv")
    append_csv(run.timings[:1], path)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 3
    for key in ("cpu", "cpu_count", "torch", "dtype", "memory_format", "batch_size", "date"):
        assert rows[0][key] != ""
    for key in ("case", "gflops_per_s", "fraction_of_gemm", "load_before", "load_counts"):
        assert rows[0][key] != ""
    assert rows[2]["load_before"] == ""  # a bare timing row has no run around it


def test_optimize_applies_to_both_sides_and_notes_say_so():
    pytest.importorskip("torchvision")
    run = bench(
        "resnet18",
        batch_sizes=(1,),
        against="torchvision,channels-last",
        optimize="fp32",
        repeat=1,
        warmup=1,
        input_size=(3, 32, 32),
        device="cpu",
        ceilings=False,
    )
    ours, peer, cl = run.timings
    assert ours.settings["bn_folded"] == peer.settings["bn_folded"] == 20
    assert ours.case == peer.case == "fp32, channels_last, BN folded 20, eager, torch"
    assert cl.label == "torchvision channels-last" and not cl.settings["optimized"]
    assert cl.case == "fp32, channels_last, BN folded 0, eager, torch"
    assert any("cnnzoo: fp32 channels_last, 20 batch norms folded" in n for n in run.notes)
    assert run.ceilings is None and run.fraction_of_gemm(ours) is None


def test_torchvision_name_mapping_is_explicit():
    with pytest.raises(UsageError, match="it is cnnzoo's resnet50_tv .*'v1.5'"):
        bench("resnet50", against="torchvision", repeat=1, device="cpu")
    with pytest.raises(UsageError, match="torchvision has no 'resnet20_cifar'"):
        bench("resnet20_cifar", against="torchvision", repeat=1, device="cpu")
    with pytest.raises(UsageError, match="unknown: tensorrt"):
        bench("resnet20_cifar", against="torchvision,tensorrt")


def _timing(label: str, batch: int, seconds: tuple[float, ...]) -> Timing:
    return Timing(label, "toy", batch, "cpu", seconds, None, {"precision": "fp32"}, 10**9)


def test_speedups_are_against_torchvision_per_batch():
    rows = [
        _timing("cnnzoo", 1, (1.0, 2.0, 3.0)),
        _timing("torchvision", 1, (4.0, 4.0, 6.0)),
        _timing("cnnzoo", 8, (2.0,)),
        _timing("onnxruntime", 8, (1.0,)),
    ]
    one, two = speedups(rows)
    assert (one.case.label, one.baseline.label) == ("cnnzoo", "torchvision")
    assert one.medians == pytest.approx(2.0) and one.fastest == pytest.approx(4.0)
    assert (two.case.label, two.baseline.label, two.medians) == ("onnxruntime", "cnnzoo", 2.0)
    assert "2.00x faster (medians)" in one.describe()
    with pytest.raises(UsageError, match="no row labelled 'tv'"):
        speedups(rows, baseline="tv")


def test_load_marks_a_busy_run():
    assert Load(0.4, 2.9, threads=2).counts
    assert not Load(1.6, 2.0, threads=2).counts  # busy before the run
    assert not Load(0.4, 3.6, threads=2).counts  # more than its own threads after
    assert not Load(None, None, threads=2).counts
    assert "DOES NOT COUNT" in Load(1.6, 2.0, threads=2).describe()
    # measured, other processes' CPU decides, not the load average (which includes the run's
    # own earlier work)
    assert Load(2.4, 2.9, threads=2, others=0.1).counts
    assert not Load(0.1, 0.2, threads=2, others=0.9).counts
    assert "other processes kept 0.90 cores busy" in Load(0.1, 0.2, 2, others=0.9).describe()


def test_load_watch_sees_another_process_busy_and_not_its_own_work():
    """A child of this process spinning one core is the run's own work; a process that is not
    its descendant, spinning one core, is another's (started through a detached shell)."""
    import subprocess
    import sys
    import time

    from cnnzoo.bench.machine import LoadWatch

    spin = "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"
    watch = LoadWatch()
    subprocess.run([sys.executable, "-c", spin], check=True)
    own = watch.stop()
    # a grandchild whose parent exits at once is re-parented to init: no longer ours
    subprocess.run(
        ["sh", "-c", f"{sys.executable} -c '{spin}' >/dev/null 2>&1 &"], check=True
    )
    time.sleep(0.1)
    watch = LoadWatch()
    time.sleep(1.2)
    other = watch.stop()
    assert own.others is not None and other.others is not None
    assert other.others > own.others + 0.5, (own, other)


def test_onnxruntime_peer_runs_cnnzoos_export():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    run = bench(
        "lenet5",
        batch_sizes=(2,),
        against="onnxruntime",
        repeat=1,
        warmup=1,
        ceilings=False,
        device="cpu",
    )
    ours, ort = run.timings
    assert ort.settings["source"] == "cnnzoo ONNX export"
    assert ort.case.startswith("fp32, contiguous, graph optimized by onnxruntime")
    assert "CPUExecutionProvider" in ort.case and ort.flops == ours.flops


def test_onnxruntime_threads_leave_the_cores_when_a_run_ends(tmp_path):
    """By default onnxruntime's workers spin on after a run and slow whatever is timed next."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from cnnzoo.bench.runner import export_onnx, onnxruntime_case

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # one worker thread besides the caller
    try:
        path = export_onnx("resnet20_cifar", (3, 32, 32), tmp_path)
        case = onnxruntime_case("onnxruntime", path, "resnet20_cifar", 8, (3, 32, 32))
        for _ in range(3):
            case.step()
        start_cpu, start = time.process_time(), time.perf_counter()
        time.sleep(0.03)  # spinning workers keep a whole core busy for about this long
        busy = (time.process_time() - start_cpu) / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    assert busy < 0.4, f"onnxruntime kept {busy:.2f} cores busy after its run"


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
    report = cnnzoo.compare(
        ["squeezenet1_1", "resnet20_cifar", "alexnet", "resnet50", "googlenet"], batch_size=8
    )
    names = [r.model for r in report.rows]
    assert names == ["squeezenet1_1", "resnet20_cifar", "alexnet", "resnet50", "googlenet"]
    squeeze, cifar, alexnet, resnet50, googlenet = report.rows
    assert squeeze.params == cnnzoo.get_spec("squeezenet1_1").num_params
    totals = cnnzoo.summary("squeezenet1_1").totals
    assert squeeze.macs == totals.macs
    # Activation memory is summary's definition: the input plus every new layer output.
    assert squeeze.activation_bytes == totals.input_bytes + totals.activation_bytes
    assert squeeze.activation_bytes - totals.activation_bytes == 3 * 224 * 224 * 4
    assert squeeze.training_bytes > squeeze.activation_bytes > 0
    # Every figure carries its protocol; 10-crop and single-crop are told apart.
    assert squeeze.top1_protocol == "ImageNet top-1, single-crop, torchvision weights"
    assert resnet50.top1_crops == "10-crop" and resnet50.top1_protocol == "ImageNet top-1, 10-crop"
    assert alexnet.top1_crops == "as reported"
    assert googlenet.top1 is None and googlenet.top5 == pytest.approx(100 - 10.07)
    assert googlenet.top5_crops == "single-crop"
    assert cifar.headline[1] == "CIFAR-10 test error, C10, as labelled"
    assert json.loads(report.to_json())["rows"][1]["cifar10_err"] == 8.75
    assert report.to_csv().count("\n") == 6
    markdown = report.to_markdown()
    assert "| squeezenet1_1 |" in markdown and "| ImageNet top-5, single-crop |" in markdown
    assert "activations (forward, input included)" in markdown
    assert "none published" not in markdown  # the CIFAR model shows its CIFAR-10 error
    written = report.save(tmp_path)
    stems = {p.name for p in written}
    assert {
        "accuracy_vs_macs.png",
        "accuracy_vs_macs.svg",
        "accuracy_top5_vs_macs.png",
        "accuracy_per_mparam.png",
        "cifar10_error_vs_macs.svg",
        "compare.csv",
    } <= stems
    assert "accuracy_vs_latency.png" not in stems  # nothing measured
    charts = {c.stem: c for c in report.figures()}
    assert dict(charts["accuracy_vs_macs"].left_out) == {
        "resnet20_cifar": "CIFAR-10 only: in cifar10_error_vs_macs",
        "googlenet": "top-5 only: in accuracy_top5_vs_macs",
    }
    assert "googlenet" not in dict(charts["accuracy_top5_vs_macs"].left_out)
    # The chart itself says what it leaves out, and its markers differ by protocol.
    svg = (tmp_path / "accuracy_vs_macs.svg").read_text()
    assert "Not shown:" in svg and "top-5 only" in svg
    assert "10-crop" in svg and "single-crop" in svg  # the evaluation legend
    assert any("leaves out" in n for n in report.chart_notes())


def test_charts_leave_the_callers_backend_alone(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    cnnzoo.compare(["squeezenet1_1"]).charts(tmp_path)
    assert matplotlib.get_backend() == backend
    assert "matplotlib.use" not in Path(cnnzoo.comparison.__file__).read_text()


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
    captured = capsys.readouterr()
    text = captured.out
    assert "latency b1 (ms)" in text
    assert "Timing: fp32, contiguous, BN folded 0, eager, torch (cnnzoo bench's" in text
    assert (tmp_path / "accuracy_vs_latency.png").exists()
    assert "chart accuracy_vs_macs: every model shown" in captured.err


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


def test_the_compute_roof_is_the_fastest_of_the_dense_kernels():
    """A matmul (BLAS), the same product as a 1x1 convolution and two 3x3 convolutions (oneDNN)
    are all timed; the roof is the fastest, and the others' rates are kept in the description."""
    from cnnzoo.bench.peak import measure_ceilings

    ceilings = measure_ceilings(gemm_size=128, copy_bytes=2**20, repeat=2, warmup=1, bf16=False)
    kernel = ceilings.kernels["fp32"]
    assert kernel.startswith(("128x128 matmul", "1x1 conv 64->64", "3x3 conv"))
    for name in ("matmul", "1x1 conv", "3x3 conv 8->8", "3x3 conv 4->4"):
        assert name in kernel  # the roof's kernel and the others' rates
    others = kernel.split("; ")[1:]
    rates = [float(o.rsplit(": ", 1)[1].split()[0].replace(",", "")) for o in others]
    assert len(others) == 3
    assert ceilings.gemm["fp32"] / 1e9 >= max(rates) - 1  # the fastest (rates print rounded)
    assert "the fastest of a 128x128 matmul" in ceilings.derivation
