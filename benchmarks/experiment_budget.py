"""Estimate an experiment's wall time from a few timed training steps, to choose its epochs.

    python benchmarks/experiment_budget.py degradation [--steps 5] [--jobs 2] [--seeds 3]
        [--budget-minutes 40]

For every distinct network of the experiment: one thread, the experiment's digits settings
(batch, recipe augmentation), one warm-up step, then `--steps` timed training steps (transform,
forward, backward, SGD step); the median is the per-step time. An epoch costs its training steps
plus its validation forward passes (counted as a third of a training step per batch) and the
per-epoch bookkeeping (checkpoint, curves: `EPOCH_OVERHEAD` seconds). Runs go `--jobs` at a time;
the estimate is the total over every arm and seed divided by the jobs (it assumes the runs share
out evenly, which slightly flatters uneven arms). It prints the estimate at the experiment's
default epochs and the most epochs that fit in `--budget-minutes`.

Measure on an otherwise idle machine: under load the per-step time is noise.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnzoo.data.datasets import open_dataset
from cnnzoo.data.transforms import make_transform
from cnnzoo.registry import create_model, get_spec
from cnnzoo.train.experiments import Experiment, experiment_configs, get_experiment

EPOCH_OVERHEAD = 1.0  # seconds an epoch spends on its checkpoint, metrics line and curves PNG
EVAL_STEP_SHARE = 1 / 3  # a forward-only batch, against a training step (forward + backward)


@dataclass(frozen=True)
class Estimate:
    experiment: str
    step_seconds: dict[str, float]  # per arm label
    steps_per_epoch: int
    val_batches: int
    seconds_per_epoch: float  # all arms and seeds, divided over the jobs
    epochs: int

    @property
    def total_seconds(self) -> float:
        return self.seconds_per_epoch * self.epochs

    def epochs_within(self, seconds: float) -> int:
        return max(0, math.floor(seconds / self.seconds_per_epoch))


def step_seconds(config, steps: int) -> float:
    """Median seconds of one training step of `config`'s network on its data, one thread."""
    spec = get_spec(config.model)
    splits = open_dataset(config.data, input_size=spec.input_size, validation=config.validation)
    transform = make_transform(splits, spec.input_size, train=True, augment=config.augment)
    model = create_model(
        config.model, num_classes=splits.num_classes, **dict(config.model_options)
    ).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    generator = torch.Generator().manual_seed(0)
    batch = min(config.batch_size, len(splits.train))
    times = []
    for step in range(steps + 1):
        index = torch.randperm(len(splits.train), generator=generator)[:batch].tolist()
        images = torch.stack([torch.as_tensor(splits.train[i][0]) for i in index])
        labels = torch.tensor([int(splits.train[i][1]) for i in index])
        started = time.perf_counter()
        loss = F.cross_entropy(model(transform(images, generator)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:  # the first step is a warm-up
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def estimate(
    experiment: Experiment,
    *,
    data: str = "digits",
    steps: int = 5,
    jobs: int = 2,
    seeds: int = 3,
    epochs: int | None = None,
) -> Estimate:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        configs = experiment_configs(
            experiment, data=data, out=Path("unused"), epochs=epochs, seeds=[0]
        )
        per_arm = {arm.label: step_seconds(config, steps) for arm, config in configs}
    finally:
        torch.set_num_threads(threads)
    config = configs[0][1]
    splits = open_dataset(data, input_size=get_spec(config.model).input_size)
    steps_per_epoch = len(splits.train) // config.batch_size
    val_batches = math.ceil(len(splits.val) / config.batch_size) if splits.val else 0
    per_run_epoch = {
        label: t * (steps_per_epoch + EVAL_STEP_SHARE * val_batches) + EPOCH_OVERHEAD
        for label, t in per_arm.items()
    }
    return Estimate(
        experiment.name,
        per_arm,
        steps_per_epoch,
        val_batches,
        sum(per_run_epoch.values()) * seeds / jobs,
        config.epochs,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget-minutes", type=float, default=40)
    args = parser.parse_args()
    result = estimate(
        get_experiment(args.experiment), data=args.data, steps=args.steps, jobs=args.jobs,
        seeds=args.seeds,
    )  # fmt: skip
    for label, seconds in result.step_seconds.items():
        print(f"{label}: {1000 * seconds:.0f} ms per training step (one thread)")
    print(
        f"{result.steps_per_epoch} steps + {result.val_batches} validation batches per epoch; "
        f"all {args.seeds} seeds of every arm over {args.jobs} jobs: "
        f"{result.seconds_per_epoch:.0f} s per epoch"
    )
    fits = result.epochs_within(60 * args.budget_minutes)
    print(
        f"{result.experiment} at its default {result.epochs} epochs: about "
        f"{result.total_seconds / 60:.0f} min; at most {fits} epochs fit in "
        f"{args.budget_minutes:g} min"
    )


if __name__ == "__main__":
    main()
