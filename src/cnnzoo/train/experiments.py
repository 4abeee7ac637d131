"""The papers' experiments, rerun: several models trained with one recipe and seed, their curves
in one figure and their final errors in one table."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnzoo.data.datasets import open_dataset
from cnnzoo.data.transforms import make_transform
from cnnzoo.errors import UnknownNameError
from cnnzoo.registry import create_model, get_spec
from cnnzoo.suggest import did_you_mean
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.loop import fit
from cnnzoo.train.plots import plot_training_curves
from cnnzoo.train.recipes import RESNET_CIFAR_WARMUP, resolve_config
from cnnzoo.train.rundir import prepare_run_dir


@dataclass(frozen=True)
class Arm:
    """One trained model of an experiment."""

    label: str
    model: str
    model_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    name: str
    question: str
    recipe: str
    arms: tuple[Arm, ...]
    epochs: int  # default on the embedded digits; the papers train far longer on CIFAR
    # Recipe changes for the embedded digits only: 1,259 training images make an epoch of 9
    # steps at the papers' batch of 128, too few updates to see anything in minutes.
    digits_settings: Mapping[str, Any] = field(default_factory=dict)


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "degradation",
            "He et al. 2015, Fig. 6: do deeper plain networks train worse, and do shortcuts fix "
            "it?",
            "resnet-cifar",
            (
                Arm("plain-20", "plain20_cifar"),
                Arm("plain-56", "plain56_cifar"),
                Arm("ResNet-20", "resnet20_cifar"),
                Arm("ResNet-56", "resnet56_cifar"),
            ),
            epochs=30,
            digits_settings={"batch_size": 32},
        ),
        Experiment(
            "stochastic-depth",
            "Huang et al. 2016, Fig. 3: one ResNet with constant depth and with stochastic "
            "depth (linear decay to p_L = 0.5). ResNet-56 rather than the paper's 110 keeps it "
            "to minutes on a CPU; `cnnzoo train resnet110_sd_cifar` is the paper's network.",
            "stochastic-depth-cifar",
            (
                Arm("constant depth", "resnet56_cifar"),
                Arm("stochastic depth", "resnet56_cifar", {"drop_path_rate": 0.5}),
            ),
            epochs=30,
            # Batch 32 instead of the paper's 128, so the learning rate scales with it (Goyal et
            # al. 2017): 0.025. At the paper's 0.1 the jump after warm-up blew both arms up
            # (loss 4.3, validation loss 8e4); constant depth recovered, stochastic depth was
            # still at 72% training error after 30 epochs. The ResNet paper's warm-up stays.
            digits_settings={"batch_size": 32, "lr": 0.025, **RESNET_CIFAR_WARMUP},
        ),
    )
}


@dataclass(frozen=True)
class ArmResult:
    label: str
    model: str
    run_dir: str
    final_train_error: float
    test_error: float | None
    best_val_error: float | None
    seconds: float
    gradient_scale: float  # see first_conv_gradient_scale


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


def run_experiment(
    name: str,
    *,
    data: str = "digits",
    out: str | Path | None = None,
    epochs: int | None = None,
    seed: int = 0,
    force: bool = False,
    **overrides: Any,
) -> list[ArmResult]:
    """Train every arm with the same recipe and seed; write the figure, table and JSON to `out`.

    Extra keyword arguments override recipe fields for every arm (e.g. ``batch_size``).
    """
    experiment = get_experiment(name)
    out = prepare_run_dir(Path(out or f"runs/experiment-{name}"), resume=False, force=force)
    results: list[ArmResult] = []
    curves: dict[str, list[dict]] = {}
    settings = {**(experiment.digits_settings if data == "digits" else {}), **overrides}
    for arm in experiment.arms:
        config = resolve_config(
            arm.model,
            data=data,
            recipe=experiment.recipe,
            epochs=epochs or experiment.epochs,
            seed=seed,
            model_options=tuple(sorted(arm.model_options.items())),
            out=str(out / arm.label.lower().replace(" ", "-")),
            **settings,
        )
        print(f"\n== {experiment.name}: {arm.label} ({arm.model}) ==")
        gradient_scale = first_conv_gradient_scale(config)
        print(f"first conv at initialization: grad norm / weight norm = {gradient_scale:.3g}")
        result = fit(config)
        records = [
            json.loads(line)
            for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
            if line
        ]
        curves[arm.label] = records
        results.append(
            ArmResult(
                label=arm.label,
                model=arm.model,
                run_dir=str(result.run_dir),
                final_train_error=records[-1]["train_error"],
                test_error=None if result.test_accuracy is None else 1 - result.test_accuracy,
                best_val_error=result.best_val_error,
                seconds=result.seconds,
                gradient_scale=gradient_scale,
            )
        )
    plot_training_curves(curves, out / f"{name}.png", title=experiment.question)
    (out / f"{name}.json").write_text(
        json.dumps(
            {"experiment": name, "data": data, "results": [vars(r) for r in results]}, indent=2
        )  # fmt: skip
    )
    (out / f"{name}.md").write_text(results_table(results) + "\n")
    return results


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


def results_table(results: list[ArmResult]) -> str:
    """Markdown table of final training and test error (%), and the first convolution's
    gradient scale at initialization."""
    lines = [
        "| network | final training error | test error | best validation error | time "
        "| first conv grad norm / weight norm at init |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:

        def pct(v: float | None) -> str:
            return "-" if v is None else f"{100 * v:.2f}%"

        lines.append(
            f"| {r.label} | {pct(r.final_train_error)} | {pct(r.test_error)} | "
            f"{pct(r.best_val_error)} | {r.seconds:.0f} s | {r.gradient_scale:.3g} |"
        )
    return "\n".join(lines)
