"""The papers' experiments, rerun: several networks trained with one recipe, each with several
seeds; their curves in one figure (each network's mean and min-max band over the seeds), their
errors in one table (mean ± std, min and max), and the paper's claims checked on the means.

Every arm and seed is one `fit` run in `OUT/ARM/seed-N`. Runs may go in parallel processes
(`jobs`), one thread each. After a run, its final weights are evaluated on the un-augmented
training images in eval mode: the training error the loop logs is measured on augmented images
in training mode, and measures the augmentation as much as the fit.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import math
import multiprocessing
import os
import platform
import shlex
import statistics
import subprocess
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnzoo.data.datasets import open_dataset
from cnnzoo.data.transforms import make_transform
from cnnzoo.errors import UnknownNameError, UsageError
from cnnzoo.fileio import atomic_write, atomic_write_text
from cnnzoo.registry import create_model, get_spec
from cnnzoo.suggest import did_you_mean
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.plots import new_figure
from cnnzoo.train.recipes import RESNET_CIFAR_WARMUP, get_recipe, resolve_config
from cnnzoo.train.rundir import RunDir, environment, prepare_run_dir

METRICS = ("final_train_error", "test_error", "best_val_error")
METRIC_NAMES = {
    "final_train_error": "final training error",
    "test_error": "test error",
    "best_val_error": "best validation error",
    "training_curve": "training error per epoch (the loop's: augmented images, training mode)",
}
OUTCOMES = ("holds", "partly", "does not hold")


@dataclass(frozen=True)
class Arm:
    """One network of an experiment."""

    label: str
    model: str
    model_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """One comparison the paper makes: `worse` ends with a higher `metric` than `better`.

    With `ties`, "at or below" is claimed: equal within the seeds' spread holds. The metric
    "training_curve" compares the arms' mean training error at every epoch ("throughout").
    """

    text: str
    metric: str
    worse: str
    better: str
    ties: bool = False

    def check(self, summaries: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict:
        """The claim's outcome on the measured `summaries` (arm -> metric -> summary).

        Without `ties`: holds when every seed of `worse` is above every seed of `better`,
        partly when only the means are in that order, else does not hold. With `ties`: holds
        when `better`'s mean is at or below `worse`'s, partly when it is above but the seeds'
        ranges overlap, else does not hold.
        """
        w, b = summaries[self.worse][self.metric], summaries[self.better][self.metric]
        if self.metric == "training_curve":
            return self._check_curve(w, b)
        means = f"{self.worse} {_pct(w['mean'])} vs {self.better} {_pct(b['mean'])}"
        ranges = f"ranges {_pct(w['min'])}-{_pct(w['max'])} and {_pct(b['min'])}-{_pct(b['max'])}"
        overlap = w["min"] <= b["max"] and b["min"] <= w["max"]
        if self.ties:
            if b["mean"] <= w["mean"]:
                outcome = "holds"
            else:
                outcome = "partly" if overlap else "does not hold"
        elif w["min"] > b["max"]:
            outcome = "holds"
        else:
            outcome = "partly" if w["mean"] > b["mean"] else "does not hold"
        return {
            "text": self.text,
            "outcome": outcome,
            "why": f"{METRIC_NAMES[self.metric]}: {means} (means; {ranges})",
        }

    def _check_curve(self, w: Mapping[str, list], b: Mapping[str, list]) -> dict:
        """Holds when `worse`'s mean is above `better`'s at every epoch both logged, partly
        when at more than half of them, else does not hold."""
        common = sorted(set(w["epochs"]) & set(b["epochs"]))
        mean_w = dict(zip(w["epochs"], w["mean"], strict=True))
        mean_b = dict(zip(b["epochs"], b["mean"], strict=True))
        above = sum(mean_w[e] > mean_b[e] for e in common)
        if common and above == len(common):
            outcome = "holds"
        else:
            outcome = "partly" if above > len(common) / 2 else "does not hold"
        last = common[-1] if common else None
        end = f"; at epoch {last}: {_pct(mean_w[last])} vs {_pct(mean_b[last])}" if common else ""
        return {
            "text": self.text,
            "outcome": outcome,
            "why": f"{METRIC_NAMES[self.metric]}: {self.worse}'s mean above {self.better}'s at "
            f"{above} of {len(common)} epochs{end}",
        }


@dataclass(frozen=True)
class Experiment:
    name: str
    question: str
    claim: str  # the paper's claim, with its figure or table
    recipe: str
    arms: tuple[Arm, ...]
    # Default on the embedded digits: 3 seeds, 2 jobs, estimated to fit ~40 minutes on 2 cores
    # (benchmarks/experiment_budget.py on the idle 2-core Intel Xeon, 2026-12-06: at most 26
    # epochs of degradation and 36 of stochastic depth fit; construction takes degradation's
    # runs when given them, `reuse`).
    epochs: int
    claims: tuple[Claim, ...] = ()
    # Recipe changes for the embedded digits only: 1,259 training images make an epoch of 9
    # steps at the papers' batch of 128, too few updates to see anything in minutes. The
    # learning rate and warm-up follow the batch by the linear scaling rule (resolve_config).
    digits_settings: Mapping[str, Any] = field(default_factory=dict)
    # Settings added to the recipe at its own batch size (they scale with it).
    recipe_additions: Mapping[str, Any] = field(default_factory=dict)
    deviations: tuple[str, ...] = ()  # from the paper's setup, besides data, batch and epochs
    construct: bool = False  # also build plain-56 from each plain-20 (`construction`)


CONSTRUCTED = "constructed plain-56"  # the construction's built (not trained) arm
DIGITS_DEVIATION = (
    "the embedded 8x8 digits (1,259 training / 179 validation / 359 test images, upsampled to "
    "the 32x32 input) instead of CIFAR-10's 45k/5k/10k"
)

# He et al. warm up ResNet-110 only (Sec. 4.2); the 20- and 56-layer networks of Fig. 6 start
# at the full lr. The recipe's warm-up (until the training error is below 80%) would hold
# plain-56, which stays above 80% for long, at a tenth of the others' lr: not like for like.
NO_WARMUP = {"warmup_lr": 0.0}
# Degradation and construction train the same networks the same way, so that construction can
# take degradation's finished runs (`reuse`) instead of training them again.
PLAIN_VS_RESIDUAL_EPOCHS = 26

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "degradation",
            "He et al. 2015, Fig. 6: do deeper plain networks train worse, and do shortcuts fix "
            "it?",
            "He et al. 2015 (arXiv 1512.03385), Sec. 4.2 and Fig. 6: the deeper plain network "
            "has higher training error throughout training (plain-56 above plain-20); with "
            "shortcuts the deeper network is at least as good (ResNet-56 at or below "
            "ResNet-20).",
            "resnet-cifar",
            (
                Arm("plain-20", "plain20_cifar"),
                Arm("plain-56", "plain56_cifar"),
                Arm("ResNet-20", "resnet20_cifar"),
                Arm("ResNet-56", "resnet56_cifar"),
            ),
            epochs=PLAIN_VS_RESIDUAL_EPOCHS,
            claims=(
                Claim(
                    "plain-56 has higher training error than plain-20 throughout training "
                    "(Fig. 6, left)",
                    "training_curve",
                    "plain-56",
                    "plain-20",
                ),
                Claim(
                    "plain-56 ends with higher training error than plain-20 (Fig. 6, left)",
                    "final_train_error",
                    "plain-56",
                    "plain-20",
                ),
                Claim(
                    "ResNet-56 ends with training error at or below ResNet-20's (Fig. 6, middle)",
                    "final_train_error",
                    "ResNet-20",
                    "ResNet-56",
                    ties=True,
                ),
                Claim(
                    "ResNet-56 ends with test error at or below ResNet-20's (Table 6)",
                    "test_error",
                    "ResNet-20",
                    "ResNet-56",
                    ties=True,
                ),
            ),
            digits_settings={"batch_size": 32},
            recipe_additions=NO_WARMUP,
        ),
        Experiment(
            "stochastic-depth",
            "Huang et al. 2016, Fig. 3: one ResNet with constant depth and with stochastic "
            "depth (linear decay to p_L = 0.5). ResNet-56 rather than the paper's 110 keeps it "
            "to minutes on a CPU; `cnnzoo train resnet110_sd_cifar` is the paper's network.",
            "Huang et al. 2016 (arXiv 1603.09382), Fig. 3 and Table 1: stochastic depth "
            "(p_L = 0.5) ends with lower test error than constant depth (ResNet-110 on CIFAR-10: "
            "5.25% against 6.41%), while its training loss stays higher.",
            "stochastic-depth-cifar",
            (
                Arm("constant depth", "resnet56_cifar"),
                Arm("stochastic depth", "resnet56_cifar", {"drop_path_rate": 0.5}),
            ),
            epochs=36,
            claims=(
                Claim(
                    "stochastic depth ends with test error at or below constant depth's (Table 1)",
                    "test_error",
                    "constant depth",
                    "stochastic depth",
                    ties=True,
                ),
                Claim(
                    "stochastic depth ends with higher training error than constant depth "
                    "(Fig. 3: it regularizes)",
                    "final_train_error",
                    "stochastic depth",
                    "constant depth",
                ),
            ),
            digits_settings={"batch_size": 32},
            # The ResNet paper's warm-up (Sec. 4.2), stated at batch 128: at the paper's lr
            # from the first step both arms blew up on the digits (loss 4.3, validation loss
            # 8e4); stochastic depth was still at 72% training error after 30 epochs.
            recipe_additions=RESNET_CIFAR_WARMUP,
            deviations=(
                "ResNet-56 instead of ResNet-110",
                "the ResNet paper's warm-up (lr / 10 until the training error is below 80%) "
                "added to the stochastic-depth recipe",
            ),
        ),
        Experiment(
            "construction",
            "He et al. 2015, Sec. 1: a deeper model built from a shallower one, its extra "
            "layers identity mappings, is exactly as good, so a deeper plain net that trains "
            "worse has an optimization problem, not a capacity one.",
            "He et al. 2015 (arXiv 1512.03385), Sec. 1: 'There exists a solution by "
            "construction to the deeper model: the added layers are identity mapping, and the "
            "other layers are copied from the learned shallower model.' A deeper model should "
            "then produce no higher training error than its shallower counterpart; plain "
            "networks trained from scratch do not find such a solution (Fig. 1, Fig. 6).",
            "resnet-cifar",
            (
                Arm("plain-20", "plain20_cifar"),
                Arm("plain-56 from scratch", "plain56_cifar"),
                Arm("ResNet-56 from scratch", "resnet56_cifar"),
            ),
            epochs=PLAIN_VS_RESIDUAL_EPOCHS,
            claims=(
                Claim(
                    "plain-56 from scratch ends with higher training error than the "
                    "constructed plain-56 (SGD does not find the constructed solution)",
                    "final_train_error",
                    "plain-56 from scratch",
                    CONSTRUCTED,
                ),
                Claim(
                    "ResNet-56 from scratch ends with training error at or below the "
                    "constructed plain-56's (shortcuts let SGD find a solution as good)",
                    "final_train_error",
                    CONSTRUCTED,
                    "ResNet-56 from scratch",
                    ties=True,
                ),
            ),
            digits_settings={"batch_size": 32},
            recipe_additions=NO_WARMUP,
            deviations=("the identity layers are placed after the copied blocks of each stage",),
            construct=True,
        ),
    )
}


@dataclass(frozen=True)
class ArmResult:
    """One arm trained with one seed."""

    label: str
    model: str
    seed: int
    run_dir: str
    final_train_error: float  # final weights, un-augmented training images, eval mode
    logged_train_error: float  # the loop's last epoch: augmented images, training mode
    test_error: float | None
    best_val_error: float | None
    seconds: float
    gradient_scale: float | None  # see first_conv_gradient_scale
    max_logit_difference: float | None = None  # constructed arms only


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        hint = did_you_mean(name, EXPERIMENTS)
        raise UnknownNameError(
            f"unknown experiment {name!r}."
            + (f" {hint}" if hint else "")
            + f" Experiments: {', '.join(sorted(EXPERIMENTS))}."
        ) from None


def experiment_configs(
    experiment: Experiment,
    *,
    data: str,
    out: Path,
    epochs: int | None,
    seeds: Sequence[int],
    **overrides: Any,
) -> list[tuple[Arm, TrainConfig]]:
    """The resolved config of every arm and seed, in run order (seed-major)."""
    settings = {**(experiment.digits_settings if data == "digits" else {}), **overrides}
    return [
        (
            arm,
            resolve_config(
                arm.model,
                data=data,
                recipe=experiment.recipe,
                recipe_additions=experiment.recipe_additions,
                epochs=epochs or experiment.epochs,
                seed=seed,
                model_options=tuple(sorted(arm.model_options.items())),
                out=str(out / _slug(arm.label) / f"seed-{seed}"),
                **settings,
            ),
        )
        for seed in seeds
        for arm in experiment.arms
    ]


def run_experiment(
    name: str | Experiment,
    *,
    data: str = "digits",
    out: str | Path | None = None,
    epochs: int | None = None,
    seeds: int = 3,
    seed: int = 0,
    jobs: int = 1,
    force: bool = False,
    command: str | None = None,
    from_run: str | Path | None = None,
    reuse: str | Path | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Train every arm with seeds `seed`, `seed + 1`, ... (`seeds` of them); write the figure
    (OUT/NAME.png), the table (OUT/NAME.md) and the record (OUT/NAME.json) to `out`.

    Args:
        name: a name in `EXPERIMENTS`, or an `Experiment`.
        jobs: runs in parallel, each in its own process with one thread (its output goes to
            OUT/logs/); 1 runs them one after the other in this process.
        command: the command line to record (default: the equivalent `cnnzoo experiment`).
        from_run: (construction) a finished plain20_cifar run to build plain-56 from, instead
            of training plain-20 with every seed; the other arms still run every seed.
        reuse: a folder of finished runs (another experiment's output): an arm and seed whose
            resolved config equals one of them (its output folder aside) takes that run instead
            of training again. Construction trains what degradation trains, the same way.
        overrides: recipe fields for every arm (e.g. ``batch_size``, ``lr``).

    Returns:
        The record, as written to OUT/NAME.json (`reproduction_record`).

    Raises:
        ConstructionError: (construction) a constructed network's logits differ from its
            plain-20's by more than 1e-5.
    """
    experiment = name if isinstance(name, Experiment) else get_experiment(name)
    name = experiment.name
    if seeds < 1 or jobs < 1:
        raise UsageError(f"--seeds and --jobs must be at least 1 (got {seeds} and {jobs})")
    if epochs is not None and epochs < 1:
        raise UsageError(f"--epochs {epochs} trains nothing: give 1 or more")
    if jobs > (cores := len(os.sched_getaffinity(0))):
        raise UsageError(
            f"--jobs {jobs} is more than the {cores} cores available; each job takes one core"
        )
    if from_run is not None and not experiment.construct:
        raise UsageError(f"--from applies to the construction experiment, not {name}")
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    commit = git_commit()  # now: the sources may change on disk while the experiment runs
    out = prepare_run_dir(Path(out or f"runs/experiment-{name}"), resume=False, force=force)
    seed_list = list(range(seed, seed + seeds))
    configs = experiment_configs(
        experiment, data=data, out=out, epochs=epochs, seeds=seed_list, **overrides
    )
    given: list[ArmResult] = []  # finished runs taken instead of trained
    reused: list[ArmResult] = []  # ... of them, those taken by `reuse`
    to_train = configs
    if from_run is not None:
        given = [finished_run("plain-20", from_run, "plain20_cifar")]
        to_train = [(arm, c) for arm, c in to_train if arm.model != "plain20_cifar"]
    if reuse is not None:
        found = {id(c): run for _, c in to_train if (run := same_finished_run(c, reuse))}
        reused = [
            finished_run(arm.label, found[id(c)], arm.model, measure=c)
            for arm, c in to_train
            if id(c) in found
        ]
        for r in reused:
            print(f"{r.label}, seed {r.seed}: taken from {r.run_dir} (same config)")
        given += reused
        to_train = [(arm, c) for arm, c in to_train if id(c) not in found]
    for line in _setup_lines(configs[0][1]):
        print(line)
    if jobs == 1:
        results = [_train_arm(arm, config) for arm, config in to_train]
    else:
        results = _train_in_parallel(to_train, jobs, out / "logs")
    results = given + results
    if experiment.construct:
        results += [constructed_result(r) for r in results if r.model == "plain20_cifar"]
    curves = _curves(results)
    record = reproduction_record(
        experiment,
        results,
        configs=[c for _, c in configs],
        seeds=seed_list,
        wall_seconds=time.perf_counter() - started,
        jobs=jobs,
        curves=curves,
        command=command
        or _command(
            name, data, epochs, seeds, seed, jobs, {**overrides, "from": from_run, "reuse": reuse}
        ),
        commit=commit,
    )
    record["reused_runs"] = [r.run_dir for r in reused]
    # Whether it ran alone: the one-minute load average before, and at the end (which
    # includes the experiment's own `jobs` busy threads).
    record["machine"]["load_average"] = {"start": load_at_start, "end": os.getloadavg()[0]}
    plot_seed_bands(curves, out / f"{name}.png", title=experiment.question)
    record["figure"] = f"{name}.png"
    atomic_write_text(out / f"{name}.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(out / f"{name}.md", results_table(record) + "\n")
    return record


def _train_arm(arm: Arm, config: TrainConfig) -> ArmResult:
    """Train one arm with one seed, then measure its final weights' training error."""
    from cnnzoo.train.loop import fit

    print(f"\n== {arm.label} ({arm.model}), seed {config.seed} ==")
    gradient_scale = first_conv_gradient_scale(config)
    print(f"first conv at initialization: grad norm / weight norm = {gradient_scale:.3g}")
    result = fit(config)
    records = _metrics(result.run_dir)
    final_train_error = clean_train_error(result.run_dir)
    print(
        f"final training error (final weights, un-augmented training images, eval mode): "
        f"{_pct(final_train_error)}"
    )
    return ArmResult(
        label=arm.label,
        model=arm.model,
        seed=config.seed,
        run_dir=str(result.run_dir),
        final_train_error=final_train_error,
        logged_train_error=records[-1]["train_error"],
        test_error=None if result.test_accuracy is None else 1 - result.test_accuracy,
        best_val_error=result.best_val_error,
        seconds=result.seconds,
        gradient_scale=gradient_scale,
    )


def _train_logged(arm: Arm, config: TrainConfig, log: str) -> ArmResult:
    """A worker process: one thread, output to `log`."""
    torch.set_num_threads(1)
    with (
        open(log, "w", buffering=1) as stream,  # a live text log, not a result file
        contextlib.redirect_stdout(stream),
        contextlib.redirect_stderr(stream),
    ):
        return _train_arm(arm, config)


def _train_in_parallel(
    configs: list[tuple[Arm, TrainConfig]], jobs: int, logs: Path
) -> list[ArmResult]:
    logs.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")  # no forked copy of this process's threads
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = []
        for arm, config in configs:
            log = logs / f"{_slug(arm.label)}-seed-{config.seed}.log"
            print(f"{arm.label}, seed {config.seed}: started, log in {log}")
            futures.append(pool.submit(_train_logged, arm, config, str(log)))
        results = []
        for future in futures:  # in submission order; a failed run raises here
            results.append(future.result())
            r = results[-1]
            print(
                f"{r.label}, seed {r.seed}: final training error {_pct(r.final_train_error)}, "
                f"test error {_pct(r.test_error)} ({r.seconds:.0f} s)"
            )
    return results


def finished_run(
    label: str, run_dir: str | Path, model: str, measure: TrainConfig | None = None
) -> ArmResult:
    """A finished run (`--from RUN_DIR`, `--reuse DIR`) as one seed of the arm `label`; with
    `measure` (the run's config) the first conv's gradient scale is measured as for a trained arm.

    Raises:
        UsageError: the run is not of `model`, or it did not finish.
    """
    run_dir = Path(run_dir)
    try:
        config = json.loads((run_dir / "config.json").read_text())["config"]
        finished = json.loads((run_dir / "results.json").read_text())
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise UsageError(f"{run_dir} is not a finished training run ({err})") from err
    if config["model"] != model:
        raise UsageError(f"--from needs a {model} run; {run_dir} trained {config['model']}")
    accuracy = finished["test_accuracy"]
    return ArmResult(
        label=label,
        model=model,
        seed=config["seed"],
        run_dir=str(run_dir),
        final_train_error=clean_train_error(run_dir),
        logged_train_error=_metrics(run_dir)[-1]["train_error"],
        test_error=None if accuracy is None else 1 - accuracy,
        best_val_error=finished["best_val_error"],
        seconds=finished["seconds"],
        gradient_scale=None if measure is None else first_conv_gradient_scale(measure),
    )


def same_finished_run(config: TrainConfig, folder: str | Path) -> Path | None:
    """A finished run under `folder` whose config equals `config`, its output folder aside."""
    wanted = {**asdict(config), "out": None}
    for saved in sorted(Path(folder).rglob("config.json")):
        run = RunDir(saved.parent)
        if not run.has_results():
            continue
        try:
            theirs = run.read_config()
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a run of this cnnzoo's config format: not the same config
        if {**asdict(theirs), "out": None} == wanted:
            return run.path
    return None


def clean_train_error(run_dir: str | Path) -> float:
    """Top-1 error of a run's final weights on its un-augmented training images, eval mode."""
    from cnnzoo.train.evaluate import evaluate, load_trained

    trained = load_trained(run_dir, which="last")
    return 1.0 - evaluate(trained, trained.config.data, split="train").top1


def constructed_result(plain20: ArmResult) -> ArmResult:
    """Build plain-56 from a trained plain-20 run, verify that its logits are plain-20's on the
    test set (eval mode, max abs difference <= 1e-5; raises ConstructionError if not), and
    measure its errors as the trained arms' are measured. It has no best validation error: that
    is a minimum over a training run's epochs, and this network was built, not trained (its
    validation error is plain-20's final one, not its best)."""
    from cnnzoo.train.construction import LOGIT_TOLERANCE, deepen_plain, verify_construction
    from cnnzoo.train.evaluate import evaluate, load_trained

    trained = load_trained(plain20.run_dir, which="last")
    deep = deepen_plain(trained.model, "plain56_cifar")
    spec = get_spec("plain56_cifar")
    splits = open_dataset(
        trained.config.data, input_size=spec.input_size, validation=trained.config.validation
    )
    transform = make_transform(trained.data, spec.input_size, train=False)
    test = splits.test if splits.test is not None else splits.val
    loader = torch.utils.data.DataLoader(test, batch_size=256)
    difference = verify_construction(
        trained.model, deep, (transform(images) for images, _ in loader)
    )
    print(
        f"constructed plain-56 from {plain20.run_dir}: max abs logit difference to plain-20 on "
        f"the {len(test)} test images {difference:.3g} (allowed {LOGIT_TOLERANCE:g}): equal"
    )
    as_deep = replace(trained, model=deep)
    errors = {
        split: 1.0 - evaluate(as_deep, trained.config.data, split=split).top1
        for split in ("train", "test")
        if getattr(splits, split) is not None
    }
    return ArmResult(
        label=CONSTRUCTED,
        model="plain56_cifar",
        seed=plain20.seed,
        run_dir=plain20.run_dir,
        final_train_error=errors["train"],
        logged_train_error=math.nan,
        test_error=errors.get("test"),
        best_val_error=None,
        seconds=0.0,
        gradient_scale=None,
        max_logit_difference=difference,
    )


def first_conv_gradient_scale(config: TrainConfig, batches: int = 5) -> float:
    """Gradient norm / weight norm of the first convolution of the arm's network at
    initialization (its seed), the median over a few training batches: how far one SGD step at
    learning rate 1 would move it.

    It tells why a network does not train: through a plain network's conv-BN-ReLU layers the
    gradient grows on its way back to the input (He et al. 2015 suspected "exponentially low
    convergence rates"; Balduzzi et al. 2017 and Yang et al. 2019 show the growth), so at any
    usable learning rate the first layers are rewritten by every step. Shortcuts keep it near 1.
    """
    spec = get_spec(config.model)
    splits = open_dataset(
        config.data, seed=config.seed, input_size=spec.input_size, validation=config.validation
    )
    transform = make_transform(splits, spec.input_size, train=True, augment=config.augment)
    with torch.random.fork_rng():  # the seeded initialization leaves the caller's RNG alone
        torch.manual_seed(config.seed)
        model = create_model(
            config.model, num_classes=splits.num_classes, **dict(config.model_options)
        ).train()
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    generator = torch.Generator().manual_seed(config.seed)
    batch = min(config.batch_size, len(splits.train))
    ratios = []
    for _ in range(batches):
        index = torch.randperm(len(splits.train), generator=generator)[:batch].tolist()
        images = torch.stack([torch.as_tensor(splits.train[i][0]) for i in index])
        labels = torch.tensor([int(splits.train[i][1]) for i in index])
        model.zero_grad()
        F.cross_entropy(model(transform(images, generator)), labels).backward()
        ratios.append((first_conv.weight.grad.norm() / first_conv.weight.norm()).item())
    return statistics.median(ratios)


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (0 for one value), min, max and n of `values`."""
    values = [float(v) for v in values]
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def curve_summary(seeds: Sequence[Sequence[Mapping[str, Any]]], key: str) -> dict[str, list]:
    """Per epoch that every seed logged: the mean, min and max of `key` over the seeds."""
    epochs = sorted(
        set.intersection(*({r["epoch"] for r in s if r.get(key) is not None} for s in seeds))
    )
    values = [[next(r[key] for r in s if r["epoch"] == e) for s in seeds] for e in epochs]
    return {
        "epochs": epochs,
        "mean": [statistics.fmean(v) for v in values],
        "min": [min(v) for v in values],
        "max": [max(v) for v in values],
    }


def reproduction_record(
    experiment: Experiment,
    results: Sequence[ArmResult],
    *,
    configs: Sequence[TrainConfig],
    seeds: Sequence[int],
    wall_seconds: float,
    jobs: int,
    command: str,
    curves: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]] | None = None,
    commit: str | None = None,
) -> dict[str, Any]:
    """The experiment's record: the paper's claim, the setup and its deviations, each arm's
    errors over the seeds, the claims checked on them, the command, wall time and machine.
    `docs/reproductions.md` is generated from these records (`cnnzoo.train.reproductions`).

    `curves` (arm -> each seed's metrics records) give the claims about training curves.
    `commit` is the sources' commit when the experiment started (default: now).
    Two fields are left for whoever runs it: `reading` (what the result means, in words) and
    `verdict` (null: the claims' checks decide it)."""
    labels = list(dict.fromkeys(r.label for r in results))
    curves = curves or {}
    arms = []
    summaries: dict[str, dict[str, dict]] = {}
    for label in labels:
        mine = [r for r in results if r.label == label]
        summaries[label] = {
            m: summarize([getattr(r, m) for r in mine])
            for m in METRICS
            if all(getattr(r, m) is not None for r in mine)
        }
        if label in curves:
            summaries[label]["training_curve"] = curve_summary(curves[label], "train_error")
        arm = {"label": label, "model": mine[0].model, "seeds": [r.seed for r in mine]}
        arm.update(summaries[label])
        arm["seconds"] = summarize([r.seconds for r in mine])
        if all(r.gradient_scale is not None for r in mine):
            arm["gradient_scale"] = summarize([r.gradient_scale for r in mine])
        if mine[0].max_logit_difference is not None:
            arm["max_logit_difference"] = summarize([r.max_logit_difference for r in mine])
        arms.append(arm)
    checks = [
        c.check(summaries)
        for c in experiment.claims
        if all(c.metric in summaries.get(label, {}) for label in (c.worse, c.better))
    ]
    first = configs[0]
    recipe = get_recipe(first.recipe)
    env = environment()
    return {
        "schema": 1,
        "experiment": experiment.name,
        "question": experiment.question,
        "paper_claim": experiment.claim,
        "data": first.data,
        "setup": {
            "recipe": f"{first.recipe} ({recipe.citation})",
            "epochs": first.epochs,
            "batch_size": first.batch_size,
            "lr": first.lr,
            "lr_rule": first.lr_rule,
            "warmup_rule": first.warmup_rule,
            "augment_applied": first.augment_applied,
            "seeds": list(seeds),
            "final_train_error": "final weights on the un-augmented training images, eval mode",
        },
        "deviations": deviations(experiment, first),
        "arms": arms,
        "claims": checks,
        "computed_verdict": overall_verdict(checks),
        "verdict": None,
        "reading": "",
        "runs": [asdict(r) for r in results],
        "command": command,
        "wall_seconds": wall_seconds,
        "jobs": jobs,
        "machine": {"cpu": env["cpu"], "cores": os.cpu_count(), "platform": platform.platform()},
        "torch": env["torch"],
        "cnnzoo": env["cnnzoo"],
        "git_commit": commit or git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def deviations(experiment: Experiment, config: TrainConfig) -> list[str]:
    """Every way the run departs from the paper: data, batch, epochs, and the experiment's own."""
    recipe = get_recipe(config.recipe).settings
    found = []
    if config.data == "digits":
        found.append(DIGITS_DEVIATION)
    elif not config.data.startswith("cifar10:"):
        found.append(f"data {config.data} instead of CIFAR-10")
    if config.batch_size != recipe.get("batch_size"):
        found.append(f"batch {config.batch_size} instead of {recipe.get('batch_size')}")
    for rule in (config.lr_rule, config.warmup_rule):
        if rule:
            found.append(rule)
    if config.epochs != recipe.get("epochs"):
        found.append(f"{config.epochs} epochs instead of {recipe.get('epochs')}")
    if config.augment_applied:
        found.append(f"augmentation {config.augment_applied}")
    return found + list(experiment.deviations)


def overall_verdict(checks: Sequence[Mapping[str, str]]) -> str:
    """holds if every claim holds, does not hold if none holds even partly, else partly."""
    outcomes = {c["outcome"] for c in checks}
    if not outcomes:
        return "partly"
    if outcomes == {"holds"}:
        return "holds"
    if outcomes == {"does not hold"}:
        return "does not hold"
    return "partly"


def git_commit() -> str | None:
    """The commit of the cnnzoo sources (with "+dirty" if they have uncommitted changes), or
    None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "."],
            cwd=here.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def results_table(record: Mapping[str, Any]) -> str:
    """Markdown table of each arm's errors over its seeds: mean ± std [min, max] (%)."""
    lines = [
        "| network | n | final training error | test error | best validation error | time "
        "| first conv grad norm / weight norm at init |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for arm in record["arms"]:
        scale = arm.get("gradient_scale")
        lines.append(
            f"| {arm['label']} | {arm['final_train_error']['n']} | "
            + " | ".join(spread(arm.get(m)) for m in METRICS)
            + f" | {arm['seconds']['mean']:.0f} s | "
            + (f"{scale['mean']:.3g}" if scale else "-")
            + " |"
        )
    return "\n".join(lines)


def spread(summary: Mapping[str, float] | None) -> str:
    """A `summarize` dict in percent: "12.34 ± 0.56% [11.80, 12.90]" (mean ± std [min, max])."""
    if summary is None:
        return "-"
    return (
        f"{100 * summary['mean']:.2f} ± {100 * summary['std']:.2f}% "
        f"[{100 * summary['min']:.2f}, {100 * summary['max']:.2f}]"
    )


def plot_seed_bands(
    runs: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]], path: Path, *, title: str = ""
) -> None:
    """Error (%) per epoch, each arm's mean over its seeds with a min-max band: training error
    as the loop logs it (augmented images, training mode) left, validation error right.

    Args:
        runs: arm label -> one list of metrics records (metrics.jsonl lines) per seed.
    """
    fig = new_figure()
    ax_train, ax_val = fig.subplots(1, 2, sharey=True)
    for index, (label, seeds) in enumerate(runs.items()):
        for ax, key in ((ax_train, "train_error"), (ax_val, "val_error")):
            curve = curve_summary(seeds, key)
            if not curve["epochs"]:
                continue
            color = f"C{index}"
            ax.plot(
                curve["epochs"], [100 * v for v in curve["mean"]], color=color, label=label,
                marker="." if len(curve["epochs"]) < 40 else None,
            )  # fmt: skip
            ax.fill_between(
                curve["epochs"], [100 * v for v in curve["min"]], [100 * v for v in curve["max"]],
                color=color, alpha=0.2, linewidth=0,
            )  # fmt: skip
    n = max((len(s) for s in runs.values()), default=0)
    ax_train.set(
        xlabel="epoch", ylabel="error (%)",
        title="training error (augmented images, training mode)",
    )  # fmt: skip
    ax_val.set(xlabel="epoch", title="validation error")
    for ax in (ax_train, ax_val):
        ax.grid(alpha=0.3)
    ax_train.legend(fontsize=8, title=f"mean and min-max over {n} seed(s)", title_fontsize=8)
    if title:
        fig.suptitle(textwrap.fill(title, 160), fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write(Path(path), buffer.getvalue())


def _curves(results: Sequence[ArmResult]) -> dict[str, list[list[dict]]]:
    curves: dict[str, list[list[dict]]] = {}
    for r in results:
        if r.label != CONSTRUCTED:  # built, not trained: no curve
            curves.setdefault(r.label, []).append(_metrics(r.run_dir))
    return curves


def _metrics(run_dir: str | Path) -> list[dict]:
    text = Path(run_dir, "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line]


def _setup_lines(config: TrainConfig) -> list[str]:
    lines = [f"recipe {config.recipe}: batch {config.batch_size}, lr {config.lr:g}"]
    lines += [rule for rule in (config.lr_rule, config.warmup_rule) if rule]
    if config.augment_applied:
        lines.append(f"augmentation: {config.augment_applied}")
    return lines


def _command(
    name: str, data: str, epochs: int | None, seeds: int, seed: int, jobs: int, overrides: dict
) -> str:
    words = ["cnnzoo", "experiment", name, "--data", data, "--seeds", str(seeds)]
    words += ["--seed", str(seed)] if seed else []
    words += ["--epochs", str(epochs)] if epochs else []
    words += ["--jobs", str(jobs)]
    for key, value in overrides.items():
        if value is not None:
            words += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(words)


def _slug(label: str) -> str:
    return label.lower().replace(" ", "-")


def _pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}%"
