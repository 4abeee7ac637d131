"""What `cnnzoo train` and `evaluate` say before and around a run: the start banner, progress
lines, inputs that mean nothing, paths that do not exist, and --resume on a finished run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnnzoo.cli import main

TRAIN = ["train", "lenet5_modern", "--data", "synthetic:64", "--batch-size", "16", "--seed", "4"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished one-epoch run, and what its `cnnzoo train` printed."""
    import contextlib
    import io

    run = tmp_path_factory.mktemp("runs") / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*TRAIN, "--epochs", "1", "--log-every", "2", "--out", str(run)]) == 0
    return run, out.getvalue()


def test_the_banner_comes_first_and_names_what_the_run_does(finished) -> None:
    run, out = finished
    lines = out.splitlines()
    assert lines[0] == (
        "training lenet5_modern (61.7K parameters, input 1x32x32) on synthetic: 1 epoch"
    )
    assert lines[1].startswith("  recipe    lenet-digits (")
    config = json.loads((run / "config.json").read_text())["config"]
    rule = config.get("lr_rule") or f"lr {config['lr']:g}"  # once the lr scales with the batch
    assert lines[2] == f"  schedule  {rule}, cosine, adam"
    assert lines[3] == "  batch     16 (16 per process x 1), 4 steps per epoch"
    assert lines[4].startswith("  data      train 64, val 8, test 8 images, 10 classes (")
    assert re.fullmatch(r"  device    cpu, \d+ threads, fp32", lines[5])
    assert lines[6] == f"  run       {run}"
    # then the first step, timed; lines every --log-every steps; one word for quality: error
    assert re.fullmatch(
        r"epoch 1/1 step 1/4  loss \d\.\d{4}  error \d+\.\d\d%  [\d,]+ img/s  lr [\d.e-]+  "
        r"\(first step \d+\.\d\d s\)",
        lines[7],
    )
    steps = [line.split("  ")[0] for line in lines if line.startswith("epoch 1/1 step")]
    assert {"epoch 1/1 step 2/4", "epoch 1/1 step 4/4"} <= set(steps)  # (3/4 if 5 s passed)
    assert all(" acc" not in line for line in lines if line.startswith("epoch "))


def test_the_banner_prints_the_lr_rule_when_the_config_has_one(finished) -> None:
    """The lr-scaling helper records its rule in the config; the banner shows it as given."""
    import dataclasses

    import torch

    from cnnzoo.data import open_dataset
    from cnnzoo.registry import create_model, get_spec
    from cnnzoo.train import distributed
    from cnnzoo.train.loop import banner
    from cnnzoo.train.recipes import resolve_config
    from cnnzoo.train.rundir import RunDir

    config = resolve_config("lenet5_modern", data="synthetic:64")  # the recipe's batch: no rule

    @dataclasses.dataclass(frozen=True)
    class WithRule:  # the fields the config will have once the scaling rule lands
        lr_rule: str

        def __getattr__(self, name):
            return getattr(config, name)

    ctx = distributed.DistContext(0, 1, 0, torch.device("cpu"))
    splits = open_dataset("synthetic:64", input_size=(1, 32, 32))
    model = create_model("lenet5_modern", num_classes=10)
    text = banner(config, get_spec("lenet5_modern"), model, splits, ctx, 4, RunDir("x"))
    assert f"  schedule  lr {config.lr:g}, cosine, adam" in text
    rule = "lr 0.025 = 0.1 x 32/128, linear scaling"
    text = banner(WithRule(rule), get_spec("lenet5_modern"), model, splits, ctx, 4, RunDir("x"))
    assert f"  schedule  {rule}, cosine, adam" in text


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--epochs", "0"], "epochs=0 (--epochs) trains nothing: give 1 or more"),
        (["--batch-size", "0"], "batch_size=0 (--batch-size) must be 1 or more"),
        (["--batch-size", "-8"], "batch_size=-8 (--batch-size) must be 1 or more"),
        (["--lr", "0"], "lr=0.0 (--lr) must be above 0, e.g. the recipe's 0.1"),
        (["--lr", "-0.1"], "lr=-0.1 (--lr) must be above 0"),
        (["--max-steps", "0"], "max_steps=0 (--max-steps) trains nothing: give 1 or more"),
    ],
)
def test_inputs_that_mean_nothing_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture, flags: list[str], said: str
) -> None:
    out = tmp_path / "run"
    argv = [*TRAIN, *flags, "--out", str(out)]
    if "--batch-size" in flags:
        argv = argv[:4] + argv[6:]  # the one batch size given is the bad one
    assert main(argv) == 2
    assert said in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "{p}"],
        ["predict", "{p}", "image.png"],
        ["train", "--resume", "{p}"],
    ],
)
def test_paths_that_do_not_exist_are_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str]
) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    try:  # refused by the flag's type (argparse exits 2) or by the command: both say so
        status = main([a.format(p=missing) for a in argv])
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    err = capsys.readouterr().err
    assert f"{missing} does not exist" in err
    assert "neither a run directory" not in err


def test_resume_of_a_finished_run_trains_nothing_and_keeps_its_results(
    finished, capsys: pytest.CaptureFixture
) -> None:
    run, _ = finished
    results = run / "results.json"
    before = (results.read_bytes(), results.stat().st_mtime_ns)
    assert main(["train", "--resume", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"{run} finished its run (1 epoch); nothing to train" in out
    saved = json.loads(results.read_text())
    assert f"test accuracy: {100 * saved['test_accuracy']:.2f}%" in out
    assert (results.read_bytes(), results.stat().st_mtime_ns) == before  # not rewritten


def test_resume_with_more_epochs_is_refused_with_the_reason(
    finished, capsys: pytest.CaptureFixture
) -> None:
    run, _ = finished
    config = (run / "config.json").read_bytes()
    assert main(["train", "--resume", str(run), "--epochs", "4"]) == 2
    assert capsys.readouterr().err == (
        f"cnnzoo train: {run} finished its 1 epoch; --resume continues a run exactly as it was "
        "configured and does not extend it (its cosine schedule was laid out for 1 epoch). To "
        "train for 4, start a new run: cnnzoo train lenet5_modern --epochs 4 ...\n"
    )
    assert (run / "config.json").read_bytes() == config
    # the same epochs as saved is no change, and any other change is refused too
    assert main(["train", "--resume", str(run), "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--lr", "0.5"]) == 2
    saved = json.loads((run / "config.json").read_text())["config"]["lr"]
    said = f"it cannot change --lr 0.5 (saved: lr {saved}). Drop the flag"
    assert said in capsys.readouterr().err


def test_evaluating_a_run_without_a_checkpoint_says_how_to_get_one(
    finished, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A run killed (SIGKILL) before its first checkpoint holds only its config."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished[0], run)
    shutil.rmtree(run / "checkpoints")
    assert main(["evaluate", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"cnnzoo evaluate: {run} holds no checkpoint yet (its run stopped before one was "
        f"written); resume it with: cnnzoo train --resume {run}\n"
    )
