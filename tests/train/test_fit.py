"""The training loop end to end on the embedded digits: CLI, exact resume, NaN stop,
distributed equivalence, evaluation and prediction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cnnzoo.cli import main
from cnnzoo.train import TrainingDiverged, fit
from cnnzoo.train.checkpoint import CheckpointStore
from cnnzoo.train.loop import training_loss
from cnnzoo.train.recipes import resolve_config

CLI = [sys.executable, "-m", "cnnzoo.cli"]


def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(CheckpointStore(run_dir).path("last") / "model.safetensors")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`cnnzoo train lenet5 --data digits --epochs 2` through the CLI."""
    out = tmp_path_factory.mktemp("runs") / "lenet5"
    assert main(["train", "lenet5", "--data", "digits", "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_cli_training_writes_a_complete_run(
    trained_run: Path, capsys: pytest.CaptureFixture
) -> None:
    saved = json.loads((trained_run / "config.json").read_text())
    assert saved["config"]["model"] == "lenet5" and saved["config"]["recipe"] == "lenet-digits"
    assert saved["environment"]["torch"] == torch.__version__
    assert len(saved["data"]["classes"]) == 10
    records = [json.loads(x) for x in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[1]["train_loss"] < records[0]["train_loss"]
    assert (trained_run / "curves.png").stat().st_size > 5_000
    results = json.loads((trained_run / "results.json").read_text())
    assert results["test_accuracy"] > 0.8  # two epochs already learn the digits
    meta = json.loads((CheckpointStore(trained_run).path("last") / "meta.json").read_text())
    assert meta["model"] == "lenet5" and meta["torch"] == torch.__version__


def test_existing_run_is_refused_without_resume_or_force(trained_run: Path, capsys) -> None:
    assert main(["train", "lenet5", "--epochs", "1", "--out", str(trained_run)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_evaluate_reports_accuracy_and_confusion(trained_run: Path, capsys) -> None:
    assert main(["evaluate", str(trained_run)]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "per-class accuracy" in out
    report = json.loads((trained_run / "evaluation" / "test.json").read_text())
    confusion = np.array(report["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == report["count"]
    assert report["top1"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert report["top5"] >= report["top1"]
    assert (trained_run / "evaluation" / "test-confusion.png").exists()
    assert main(["evaluate", str(trained_run)]) == 0  # an earlier evaluation is replaced


def test_evaluate_leaves_a_users_file_alone(trained_run: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "test.json").write_text('{"mine": 1}')
    assert main(["evaluate", str(trained_run), "--out", str(tmp_path)]) == 2
    assert "is not an earlier cnnzoo evaluation; it is left as it is" in capsys.readouterr().err
    assert (tmp_path / "test.json").read_text() == '{"mine": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.json"]


def test_predict_classifies_image_files(trained_run: Path, tmp_path: Path, capsys) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    index = int(np.flatnonzero(digits.target == 7)[0])
    pixels = (digits.images[index] * 255 / 16).astype(np.uint8)
    path = tmp_path / "seven.png"
    Image.fromarray(pixels, mode="L").resize((64, 64)).save(path)
    assert main(["predict", str(trained_run), str(path), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(path) and len(lines) == 4
    assert all(line.strip().endswith(tuple("0123456789")) for line in lines[1:])


def test_aux_losses_are_weighted() -> None:
    logits, labels = torch.randn(4, 10), torch.tensor([1, 2, 3, 4])
    aux = (torch.randn(4, 10), torch.randn(4, 10))
    ce = torch.nn.functional.cross_entropy
    expected = ce(logits, labels) + 0.3 * (ce(aux[0], labels) + ce(aux[1], labels))
    assert torch.allclose(training_loss(logits, aux, labels, 0.3), expected)
    assert torch.allclose(training_loss(logits, (), labels, 0.3), ce(logits, labels))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    # epoch 1 trains at a sane warm-up rate, then the rate explodes
    config = resolve_config(
        "lenet5_modern", epochs=3, out=str(tmp_path / "run"), schedule="constant",
        lr=1e30, warmup_lr=0.01, warmup_steps=39, warmup_until_error=0.0, batch_size=32,
    )  # fmt: skip
    with pytest.raises(TrainingDiverged, match=r"at epoch 2, step \d+ \(global step \d+\)"):
        fit(config)
    store = CheckpointStore(tmp_path / "run")
    weights, state, _ = store.load("last")
    assert state["progress"]["epoch"] == 1
    assert all(torch.isfinite(w).all() for w in weights.values())


def _wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_interrupted_and_resumed_run_ends_bitwise_equal(tmp_path: Path) -> None:
    """SIGINT mid-run saves a checkpoint; --resume continues to exactly the same weights."""
    args = ["train", "lenet5", "--epochs", "4", "--seed", "3"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight = tmp_path / "straight"
    subprocess.run([*CLI, *args, "--out", str(straight)], check=True, env=env,
                   capture_output=True)  # fmt: skip

    interrupted = tmp_path / "interrupted"
    proc = subprocess.Popen([*CLI, *args, "--out", str(interrupted)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for(interrupted / "checkpoints" / "last.json")  # after epoch 1, mid-epoch 2 soon
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert f"cnnzoo train --resume {interrupted}" in err
    state = CheckpointStore(interrupted).load("last")[1]
    assert 0 < state["progress"]["global_step"] < 4 * 39

    subprocess.run([*CLI, "train", "--resume", str(interrupted)], check=True, env=env,
                   capture_output=True)  # fmt: skip
    a, b = _final_weights(straight), _final_weights(interrupted)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    metrics = (interrupted / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in metrics] == [1, 2, 3, 4]
    assert metrics == (straight / "metrics.jsonl").read_text().splitlines() or all(
        json.loads(x)["train_loss"] == json.loads(y)["train_loss"]
        for x, y in zip(metrics, (straight / "metrics.jsonl").read_text().splitlines(),
                        strict=True)
    )  # fmt: skip


def test_two_process_torchrun_equals_one_process(tmp_path: Path) -> None:
    """DDP over 2 gloo processes with batch 16 each == 1 process with batch 32."""
    common = ["train", "lenet5_modern", "--data", "synthetic:256", "--epochs", "2",
              "--batch-size", "32", "--recipe", "lenet-digits", "--augment", "none",
              "--weight-decay", "0"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = tmp_path / "single"
    subprocess.run([*CLI, *common, "--out", str(single)], check=True, env=env,
                   capture_output=True)  # fmt: skip
    double = tmp_path / "double"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2", "-m", "cnnzoo.cli"]  # fmt: skip
    done = subprocess.run([*torchrun, *common, "--out", str(double)], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    a, b = _final_weights(single), _final_weights(double)
    # Same images, same updates; only the order of float additions differs (all-reduce).
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-5), key
    assert not torch.equal(a["classifier.4.weight"], torch.zeros_like(a["classifier.4.weight"]))


def test_a_stop_after_an_epochs_last_step_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread
) -> None:
    """A signal caught after the last step of an epoch saves a checkpoint with no step left in
    that epoch; the resume finishes the epoch (evaluation, metrics, the epoch's checkpoint under
    a fresh name, since the stop's checkpoint has its step's) and ends as the straight run."""
    from cnnzoo.train import TrainingInterrupted, loop

    def config(out: Path):
        return resolve_config("lenet5_modern", data="synthetic:96", epochs=2, batch_size=16,
                              seed=1, augment="none", out=str(out))  # fmt: skip

    fit(config(tmp_path / "straight"))
    metrics = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    steps_per_epoch = json.loads(metrics[0])["step"]
    real_loss, calls = loop.training_loss, 0

    def stop_after_the_epochs_last_step(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == steps_per_epoch:
            signal.raise_signal(signal.SIGINT)
        return real_loss(*args, **kwargs)

    stopped = tmp_path / "stopped"
    monkeypatch.setattr(loop, "training_loss", stop_after_the_epochs_last_step)
    with pytest.raises(TrainingInterrupted, match=f"epoch 1, step {steps_per_epoch};"):
        fit(config(stopped))
    monkeypatch.setattr(loop, "training_loss", real_loss)
    store = CheckpointStore(stopped)
    assert store.load("last")[1]["progress"]["step_in_epoch"] == steps_per_epoch
    stop_checkpoint = store.path("last")

    # While each checkpoint is renamed into place, the one `last` names must be whole.
    from cnnzoo.train import checkpoint

    real_rename, broken = os.rename, []

    def rename_checking_last(src, dst):
        if store.exists("last") and not (store.path("last") / "model.safetensors").exists():
            broken.append(store.path("last"))
        return real_rename(src, dst)

    monkeypatch.setattr(checkpoint.os, "rename", rename_checking_last)
    fit(resume=stopped)
    monkeypatch.setattr(checkpoint.os, "rename", real_rename)
    assert not broken
    a, b = _final_weights(tmp_path / "straight"), _final_weights(stopped)
    assert all(torch.equal(a[k], b[k]) for k in a)
    resumed = (stopped / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["train_loss"] for x in resumed] == [
        json.loads(x)["train_loss"] for x in metrics
    ]
    assert store.path("last") != stop_checkpoint and store.load("last")[2]["epoch"] == 2


def test_resume_without_last_pointer_uses_the_newest_checkpoint(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    fit(resolve_config("lenet5_modern", data="synthetic:96", epochs=1, batch_size=16,
                       out=str(run)))  # fmt: skip
    newest = CheckpointStore(run).path("last")
    (run / "checkpoints" / "last.json").unlink()
    fit(resume=run)
    assert f"it now names {newest}, the newest" in capsys.readouterr().out
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1]


def test_steps_wait_for_the_device_only_when_a_line_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread
) -> None:
    """No host sync per step: the values the trainer reads from tensors during an epoch
    (`.item()`, `.tolist()`, `float()`, `int()`, `bool()`) are as many for 32 steps as for 8
    when both log the same two lines (the first step and the last)."""
    from cnnzoo.train import loop, progress

    monkeypatch.setattr(progress, "LINE_INTERVAL", 1e9)
    reads = {"n": 0, "counting": False}
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, **kwargs):
            caller = sys._getframe(1).f_code.co_filename  # the trainer's reads, not torch's
            reads["n"] += reads["counting"] and f"cnnzoo{os.sep}train{os.sep}" in caller
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    real_epoch = loop._Training.train_epoch

    def counted_epoch(self, stop, *, first):
        reads["counting"] = True
        try:
            return real_epoch(self, stop, first=first)
        finally:
            reads["counting"] = False

    monkeypatch.setattr(loop._Training, "train_epoch", counted_epoch)
    counts = {}
    for images in (128, 512):
        reads["n"] = 0
        out = str(tmp_path / f"{images}")
        config = resolve_config("lenet5_modern", data=f"synthetic:{images}", epochs=1,
                                batch_size=16, log_every=10**6, out=out)  # fmt: skip
        assert fit(config).steps == images // 16
        counts[images] = reads["n"]
    assert counts[128] == counts[512] and counts[128] > 0, counts
