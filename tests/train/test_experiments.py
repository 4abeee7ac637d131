"""The experiments' plumbing on tiny synthetic sets (the real runs are experiments, not tests):
seeds and their spread, parallel runs, the clean training error, the claims' checks, the
construction's logit check, and the linear scaling rule."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from cnnzoo.cli import main
from cnnzoo.errors import UsageError
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.evaluate import evaluate, load_trained
from cnnzoo.train.experiments import (
    CONSTRUCTED,
    EXPERIMENTS,
    Arm,
    Claim,
    Experiment,
    clean_train_error,
    first_conv_gradient_scale,
    get_experiment,
    run_experiment,
    summarize,
)
from cnnzoo.train.loop import fit
from cnnzoo.train.recipes import resolve_config

TINY = Experiment(
    "tiny",
    "two small networks",
    "a claim about them (Fig. 0)",
    "lenet-digits",
    (Arm("modern", "lenet5_modern"), Arm("classic", "lenet5")),
    epochs=2,
    claims=(Claim("classic trains worse", "final_train_error", "classic", "modern"),),
)


def test_linear_scaling_of_lr_and_warm_up_with_the_batch() -> None:
    scaled = resolve_config("resnet20_cifar", recipe="resnet-cifar", batch_size=32)
    assert scaled.lr == pytest.approx(0.025) and scaled.recipe_lr == 0.1
    assert scaled.lr_rule == "lr 0.025 = 0.1 x 32/128, linear scaling (Goyal et al. 2017)"
    # the warm-up covers the same images (400 x 128 = 1,600 x 32) at a rate scaled likewise
    assert scaled.warmup_steps == 1600 and scaled.recipe_warmup_steps == 400
    assert scaled.warmup_lr == pytest.approx(0.0025)
    assert "1600 steps = 400 x 128/32" in scaled.warmup_rule
    assert "warm-up lr 0.0025 = 0.01 x 32/128" in scaled.warmup_rule
    paper = resolve_config("resnet20_cifar", recipe="resnet-cifar")
    assert (paper.lr, paper.lr_rule, paper.warmup_steps, paper.warmup_rule) == (0.1, "", 400, "")
    doubled = resolve_config("densenet121", recipe="densenet-cifar", batch_size=128)
    assert doubled.lr == pytest.approx(0.2) and "0.1 x 128/64" in doubled.lr_rule


def test_given_values_are_not_scaled() -> None:
    given = resolve_config(
        "resnet20_cifar", recipe="resnet-cifar", batch_size=32, lr=0.05, warmup_steps=10
    )
    assert (given.lr, given.lr_rule, given.warmup_steps) == (0.05, "", 10)
    assert given.warmup_lr == pytest.approx(0.0025)  # not given: scaled
    assert given.warmup_rule.startswith("warm-up lr 0.0025")
    with pytest.raises(TypeError, match="lr_rule"):
        resolve_config("resnet20_cifar", lr_rule="made up")


def test_experiment_additions_scale_as_the_recipe_does() -> None:
    experiment = get_experiment("stochastic-depth")
    config = resolve_config(
        "resnet56_cifar",
        recipe=experiment.recipe,
        recipe_additions=experiment.recipe_additions,
        **experiment.digits_settings,
    )
    assert config.lr == pytest.approx(0.025) and config.warmup_steps == 1600
    assert config.warmup_lr == pytest.approx(0.0025)


def test_rules_are_recorded_in_config_json(tmp_path: Path) -> None:
    config = resolve_config(
        "lenet5_modern", data="synthetic:32", batch_size=16, epochs=1, out=str(tmp_path / "r")
    )
    assert config.lr_rule == "lr 0.001 = 0.002 x 16/32, linear scaling (Goyal et al. 2017)"
    fit(config)
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert saved["lr"] == pytest.approx(0.001) and saved["recipe_lr"] == 0.002
    assert saved["lr_rule"] == config.lr_rule
    assert TrainConfig.from_dict(saved) == config


def test_seeds_give_spread_and_every_run_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    record = run_experiment(
        TINY, data="synthetic:32", out=tmp_path / "tiny", seeds=2, epochs=1, batch_size=16
    )
    assert "lr 0.001 = 0.002 x 16/32" in capsys.readouterr().out  # printed at the start
    runs = record["runs"]
    assert [(r["label"], r["seed"]) for r in runs] == [
        ("modern", 0), ("classic", 0), ("modern", 1), ("classic", 1),
    ]  # fmt: skip
    for arm in record["arms"]:
        mine = [r for r in runs if r["label"] == arm["label"]]
        values = [r["final_train_error"] for r in mine]
        assert arm["final_train_error"]["n"] == 2
        assert arm["final_train_error"]["mean"] == pytest.approx(statistics.fmean(values))
        assert arm["final_train_error"]["std"] == pytest.approx(statistics.stdev(values))
        assert arm["test_error"]["max"] == max(r["test_error"] for r in mine)
    # different seeds: different initializations, so different weights and results
    first, second = (load_trained(r["run_dir"], "last").model for r in runs[:3:2])
    assert any((a != b).any() for a, b in zip(first.parameters(), second.parameters(), strict=True))
    configs = [json.loads(Path(r["run_dir"], "config.json").read_text())["config"] for r in runs]
    assert {c["seed"] for c in configs} == {0, 1}
    assert len({(c["lr"], c["batch_size"], c["epochs"]) for c in configs}) == 1
    assert record["claims"][0]["outcome"] in ("holds", "partly", "does not hold")
    assert record["computed_verdict"] and record["verdict"] is None and record["reading"] == ""
    assert record["machine"]["cores"] >= 1 and record["torch"] and record["cnnzoo"]
    assert record["machine"]["load_average"]["start"] >= 0
    assert "batch 16 instead of 32" in record["deviations"]
    table = (tmp_path / "tiny" / "tiny.md").read_text()
    assert "| modern | 2 |" in table and " ± " in table
    assert (tmp_path / "tiny" / "tiny.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "tiny" / "tiny.json").read_text())["arms"] == record["arms"]


def test_final_training_error_is_measured_without_augmentation(tmp_path: Path) -> None:
    config = resolve_config(
        "lenet5_modern", data="synthetic:32", batch_size=16, epochs=1, out=str(tmp_path / "r")
    )
    fit(config)
    trained = load_trained(tmp_path / "r", "last")
    expected = 1 - evaluate(trained, "synthetic:32", split="train").top1
    assert clean_train_error(tmp_path / "r") == expected
    assert not trained.model.training


def test_parallel_runs_match_serial_ones(tmp_path: Path) -> None:
    tiny = Experiment("tiny", "q", "c", "lenet-digits", (Arm("modern", "lenet5_modern"),), 1)
    settings = {"data": "synthetic:32", "seeds": 2, "batch_size": 16}
    serial = run_experiment(tiny, out=tmp_path / "serial", **settings)
    parallel = run_experiment(tiny, out=tmp_path / "parallel", jobs=2, **settings)
    assert parallel["jobs"] == 2
    for a, b in zip(serial["runs"], parallel["runs"], strict=True):
        assert (a["seed"], a["test_error"]) == (b["seed"], b["test_error"])
        assert a["final_train_error"] == pytest.approx(b["final_train_error"], abs=1e-9)
    assert (tmp_path / "parallel" / "logs" / "modern-seed-1.log").read_text().count("epoch 1/1")


def _summary(values: list[float]) -> dict:
    return {"final_train_error": summarize(values)}


@pytest.mark.parametrize(
    ("worse", "better", "ties", "outcome"),
    [
        ([0.5, 0.6], [0.1, 0.2], False, "holds"),  # separated
        ([0.3, 0.6], [0.1, 0.4], False, "partly"),  # means in order, ranges overlap
        ([0.1, 0.2], [0.5, 0.6], False, "does not hold"),
        ([0.2, 0.3], [0.2, 0.3], True, "holds"),  # "at or below": equal holds
        ([0.2, 0.3], [0.25, 0.35], True, "partly"),
        ([0.1, 0.2], [0.5, 0.6], True, "does not hold"),
    ],
)
def test_claims_are_checked_on_the_seeds(worse, better, ties, outcome) -> None:
    claim = Claim("w above b", "final_train_error", "w", "b", ties=ties)
    result = claim.check({"w": _summary(worse), "b": _summary(better)})
    assert result["outcome"] == outcome
    assert "w" in result["why"] and "%" in result["why"]


def test_throughout_claims_compare_every_epoch() -> None:
    claim = Claim("w above b throughout", "training_curve", "w", "b")

    def curve(*means: float) -> dict:
        return {"training_curve": {"epochs": [1, 2, 3], "mean": list(means)}}

    assert claim.check({"w": curve(0.9, 0.5, 0.3), "b": curve(0.8, 0.4, 0.2)})["outcome"] == "holds"
    partly = claim.check({"w": curve(0.7, 0.5, 0.3), "b": curve(0.8, 0.4, 0.2)})
    assert partly["outcome"] == "partly" and "at 2 of 3 epochs" in partly["why"]
    reverse = claim.check({"w": curve(0.7, 0.3, 0.3), "b": curve(0.8, 0.4, 0.2)})
    assert reverse["outcome"] == "does not hold"


def test_summary_of_one_seed_has_no_spread() -> None:
    assert summarize([0.25]) == {
        "n": 1, "mean": 0.25, "std": 0.0, "min": 0.25, "max": 0.25, "values": [0.25],
    }  # fmt: skip


def test_constructed_plain56_has_plain20s_logits_and_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The experiment's step: plain-56 built from a trained plain-20 run (here given with
    --from), its logits checked on the test set, its errors measured as the trained arms'."""
    config = resolve_config(
        "plain20_cifar", data="synthetic:32", batch_size=16, epochs=1, out=str(tmp_path / "p20")
    )
    fit(config)
    small = Experiment(
        "construction", "q", "c", "lenet-digits", (Arm("plain-20", "plain20_cifar"),
        Arm("other", "lenet5_modern")), epochs=1, construct=True,
    )  # fmt: skip
    record = run_experiment(
        small, data="synthetic:32", out=tmp_path / "c", seeds=1, batch_size=16,
        from_run=tmp_path / "p20",
    )  # fmt: skip
    assert "max abs logit difference to plain-20 on the 4 test images 0 " in capsys.readouterr().out
    arms = {a["label"]: a for a in record["arms"]}
    assert list(arms) == ["plain-20", "other", CONSTRUCTED]
    built = arms[CONSTRUCTED]
    assert built["model"] == "plain56_cifar" and built["max_logit_difference"]["max"] <= 1e-5
    # the same function, so the same errors; no best validation error (it was not trained)
    for metric in ("final_train_error", "test_error"):
        assert built[metric]["values"] == pytest.approx(arms["plain-20"][metric]["values"])
    assert "best_val_error" not in built
    trained = load_trained(tmp_path / "p20", "last")
    assert built["final_train_error"]["mean"] == clean_train_error(tmp_path / "p20")
    assert built["test_error"]["mean"] == 1 - evaluate(trained, "synthetic:32").top1
    assert "--from" in record["command"]
    with pytest.raises(UsageError, match="needs a plain20_cifar run"):
        run_experiment(small, data="synthetic:32", out=tmp_path / "d", from_run=tmp_path / "c"
                       / "other" / "seed-0")  # fmt: skip


def test_degradation_trains_every_arm_and_writes_figure_and_table(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "degradation"
    args = [
        "experiment", "degradation", "--data", "synthetic:32", "--epochs", "1", "--seeds", "1",
        "--batch-size", "16", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "lr 0.0125 = 0.1 x 16/128, linear scaling" in printed
    for arm in get_experiment("degradation").arms:
        assert f"| {arm.label} | 1 |" in printed
        assert (out / arm.label.lower() / "seed-0" / "metrics.jsonl").exists()
    saved = json.loads((out / "degradation.json").read_text())
    assert [r["model"] for r in saved["runs"]] == [
        "plain20_cifar", "plain56_cifar", "resnet20_cifar", "resnet56_cifar",
    ]  # fmt: skip
    assert all(r["gradient_scale"] > 0 for r in saved["runs"])
    assert saved["command"].startswith("cnnzoo experiment degradation")
    assert (out / "degradation.png").stat().st_size > 10_000
    # the same recipe and seed for every arm, the lr scaled to the batch
    configs = [
        json.loads((Path(r["run_dir"]) / "config.json").read_text())["config"]
        for r in saved["runs"]
    ]
    assert len({(c["recipe"], c["seed"], c["lr"], c["batch_size"]) for c in configs}) == 1
    assert configs[0]["lr"] == pytest.approx(0.0125) and configs[0]["recipe_lr"] == 0.1


def test_bad_counts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="at least 1"):
        run_experiment(TINY, seeds=0, out=tmp_path / "a")
    with pytest.raises(UsageError, match="cores available"):
        run_experiment(TINY, jobs=10_000, out=tmp_path / "b")


def test_unknown_experiment_suggests(capsys: pytest.CaptureFixture) -> None:
    assert main(["experiment", "degradatoin"]) == 2
    assert "Did you mean: degradation?" in capsys.readouterr().err
    assert set(EXPERIMENTS) == {"degradation", "stochastic-depth", "construction"}


def test_plain56_first_conv_gradient_explodes_at_initialization(one_thread) -> None:
    """Why plain-56 stalls on the digits: its first convolution's gradient is hundreds of times
    its weights at initialization, where plain-20's and ResNet-56's are of order 1."""
    scale = {
        name: first_conv_gradient_scale(
            resolve_config(name, data="digits", recipe="resnet-cifar", batch_size=32), batches=3
        )
        for name in ("plain20_cifar", "plain56_cifar", "resnet56_cifar")
    }
    assert scale["plain56_cifar"] > 100
    assert scale["plain20_cifar"] < 10 and scale["resnet56_cifar"] < 10


def test_experiment_refuses_zero_epochs_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "exp"
    assert main(["experiment", "degradation", "--epochs", "0", "--out", str(out)]) == 2
    assert "--epochs 0 trains nothing" in capsys.readouterr().err
    assert not out.exists()


def test_a_stopped_experiment_exits_130_with_the_resume_advice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import cnnzoo.train.experiments as experiments
    from cnnzoo.train import TrainingInterrupted

    def stopped(*args, **kwargs):
        raise TrainingInterrupted("SIGTERM received at epoch 1, step 3; resume with: X")

    monkeypatch.setattr(experiments, "run_experiment", stopped)
    assert main(["experiment", "degradation", "--epochs", "1"]) == 130
    err = capsys.readouterr().err
    assert "resume with: X" in err and "bug" not in err


def test_reuse_takes_finished_runs_of_the_same_config_only(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Construction takes degradation's runs this way: an arm and seed whose config equals a
    finished run's (its folder aside) is not trained again; any other difference trains."""
    first = run_experiment(TINY, data="synthetic:32", out=tmp_path / "a", seeds=1, epochs=1)
    capsys.readouterr()
    again = run_experiment(
        TINY, data="synthetic:32", out=tmp_path / "b", seeds=1, epochs=1, reuse=tmp_path / "a"
    )
    assert "taken from" in capsys.readouterr().out
    assert [r["run_dir"] for r in again["runs"]] == [r["run_dir"] for r in first["runs"]]
    assert sorted(again["reused_runs"]) == sorted(r["run_dir"] for r in first["runs"])
    assert not (tmp_path / "b" / "modern").exists()
    for metric in ("final_train_error", "test_error", "best_val_error"):
        assert [a[metric]["values"] for a in again["arms"]] == [
            a[metric]["values"] for a in first["arms"]
        ]
    assert all(r["gradient_scale"] > 0 for r in again["runs"])
    assert "--reuse" in again["command"]
    other = run_experiment(
        TINY, data="synthetic:32", out=tmp_path / "c", seeds=1, epochs=1, lr=0.005,
        reuse=tmp_path / "a",
    )  # fmt: skip
    assert other["reused_runs"] == []
    assert all(r["run_dir"].startswith(str(tmp_path / "c")) for r in other["runs"])
