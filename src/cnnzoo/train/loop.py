"""The training loop: setup -> data -> model -> optimizer and schedule -> epochs with evaluation,
logging and checkpoints -> final evaluation. Runs unchanged in one process or under `torchrun`.

`_run` is the skeleton, read top to bottom; `_Training` holds what it builds and does one step
(`train_step`), one epoch (`train_epoch`, `end_epoch`) and an evaluation at a time.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from cnnzoo.data import DataSplits, make_transform, open_dataset
from cnnzoo.errors import UsageError
from cnnzoo.registry import ModelSpec, create_model, get_spec
from cnnzoo.train import distributed
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.evaluate import load_trained, load_weights
from cnnzoo.train.plots import new_figure, plot_training_curves
from cnnzoo.train.precision import resolve_auto_precision
from cnnzoo.train.progress import EpochProgress
from cnnzoo.train.rundir import RunDir, default_run_dir, environment
from cnnzoo.train.schedule import LearningRate
from cnnzoo.train.state import TrainState


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class TrainingInterrupted(RuntimeError):
    """SIGINT or SIGTERM arrived; the run folder was left resumable, or removed if the run had
    not started training."""


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    epochs_completed: int
    steps: int
    test_loss: float | None
    test_accuracy: float | None
    best_val_error: float | None
    seconds: float


class _TrainForward(nn.Module):
    """Wraps a model so DistributedDataParallel sees the training forward, auxiliary heads
    included; `forward` of the model itself always returns only the logits."""

    def __init__(self, model: nn.Module, with_aux: bool) -> None:
        super().__init__()
        self.model = model
        self.with_aux = with_aux

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        if self.with_aux:
            return self.model.forward_with_aux(x)
        return self.model(x), ()


class _StopRequested(BaseException):
    """Raised by the signal handler while the run cannot poll (imports, data, model, compile)."""


class _EvaluationStopped(Exception):
    """An evaluation gave up because a stop was requested."""


class _StopSignal:
    """SIGINT/SIGTERM as a flag that the loop polls between steps and evaluation batches.

    While `immediate` is set (start-up: loading data, building and compiling the model, where
    nothing can be lost) the handler raises at once instead.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.immediate = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.received = signum
        if self.immediate:
            raise _StopRequested

    @property
    def name(self) -> str:
        return signal.Signals(self.received or signal.SIGTERM).name

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _loader(
    dataset: Dataset, indices: list[int], batch_size: int, workers: int, drop_last: bool
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=indices,
        num_workers=workers,
        drop_last=drop_last,
        persistent_workers=False,
    )


def _epoch_indices(dataset: Dataset, ctx: distributed.DistContext, seed: int, epoch: int) -> list:
    """This process's shuffled share of the training set for `epoch` (DistributedSampler's
    order, so one process with batch B sees the same images as N processes with B / N each)."""
    sampler = DistributedSampler(
        dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed
    )
    sampler.set_epoch(epoch)
    return list(sampler)


def evaluate_model(
    model: nn.Module,
    dataset: Dataset,
    transform,
    ctx: distributed.DistContext,
    batch_size: int,
    workers: int = 0,
    *,
    channels_last: bool = False,
    autocast_dtype: torch.dtype | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[float, float]:
    """Mean cross-entropy and top-1 error over a data set (sharded across processes).

    Raises:
        _EvaluationStopped: `should_stop()` became true between two batches.
    """
    indices = list(range(ctx.rank, len(dataset), ctx.world_size))
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
    correct = torch.zeros((), dtype=torch.float64, device=ctx.device)
    count = 0
    try:
        with torch.no_grad():
            for images, labels in _loader(dataset, indices, batch_size, workers, drop_last=False):
                if should_stop is not None and should_stop():
                    raise _EvaluationStopped
                x = transform(images, None).to(ctx.device)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                labels = labels.to(ctx.device)
                with _autocast(ctx.device, autocast_dtype):
                    logits = model(x)
                loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum").double()
                correct += (logits.argmax(1) == labels).sum()
                count += len(labels)
    finally:
        model.train(was_training)
    # note: a CPU-GPU sync point, once per evaluation
    loss_sum, correct, count = distributed.sum_across(
        ctx, [loss_sum.item(), correct.item(), float(count)]
    )
    return loss_sum / max(count, 1), 1.0 - correct / max(count, 1)


def training_loss(
    logits: Tensor,
    aux_logits: tuple[Tensor, ...],
    labels: Tensor,
    aux_weight: float,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of the main logits plus `aux_weight` times that of each auxiliary head
    (GoogLeNet Sec. 5: weight 0.3). Computed in fp32 even under autocast."""
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    for aux in aux_logits:
        loss = loss + aux_weight * F.cross_entropy(aux.float(), labels)
    return loss


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _resolve_aux_weight(config: TrainConfig, spec: ModelSpec, model: nn.Module) -> float:
    weight = spec.aux_loss_weight
    if config.aux_loss_weight is not None:
        weight = config.aux_loss_weight
    if weight and not hasattr(model, "forward_with_aux"):
        raise UsageError(f"{config.model} has no auxiliary classifiers; drop aux_loss_weight")
    return weight


def fit(
    config: TrainConfig | None = None,
    *,
    resume: str | Path | None = None,
    force: bool = False,
) -> RunResult:
    """Train a model as `config` describes, or continue the run in `resume`.

    Returns the run's result after the last epoch; a finished run is not trained or evaluated
    again (its saved result is returned). `force` starts over in a folder that holds a run (the
    old one is kept, renamed), or takes over the lock of a run on another host.

    Raises:
        TrainingInterrupted: SIGINT/SIGTERM arrived. During training a checkpoint is saved
            first; before the first step a new run's folder is removed.
        TrainingDiverged: the loss became NaN or infinite.
    """
    started = time.perf_counter()
    # ---- setup ---------------------------------------------------------------------------------
    if resume is not None:
        if config is not None:
            raise ValueError("give fit a config or a run directory to resume, not both")
        run = RunDir.existing(resume)
        config = run.read_config()
    elif config is None:
        raise UsageError("fit needs a config, or a run directory to resume")
    ctx = distributed.setup()
    with _StopSignal() as stop:
        stop.immediate = True  # until training starts, a stop loses nothing: end at once
        opened: dict[str, Any] = {}  # the run folder, once there is one
        try:
            return _fit(config, ctx, resume, force, stop, opened, started)
        except _StopRequested:
            raise _interrupted_at_start(stop, opened, fresh=resume is None) from None


def _fit(
    config: TrainConfig,
    ctx: distributed.DistContext,
    resume: str | Path | None,
    force: bool,
    stop: _StopSignal,
    opened: dict[str, Any],
    started: float,
) -> RunResult:
    if resume is None:
        path = Path(config.out) if config.out else default_run_dir(config.model, config.data)
        made_here = not path.exists()
        run = RunDir.create(path, force=force) if ctx.is_main else RunDir(path)
        config = replace(config, out=str(path))
    else:
        run, made_here = RunDir(resume), False
    opened.update(run=run, made_here=made_here)
    if config.batch_size % ctx.world_size:
        raise UsageError(
            f"batch size {config.batch_size} is the global batch and must divide evenly over "
            f"{ctx.world_size} processes"
        )
    if config.precision == "fp16" and ctx.device.type != "cuda":
        raise UsageError("fp16 training needs a CUDA GPU; use --precision bf16 on the CPU")
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(config.seed + ctx.rank)
    augment_rng = torch.Generator().manual_seed(config.seed * 1_000_003 + ctx.rank)
    clean = False
    try:
        if ctx.is_main:
            run.lock.acquire(force=force)
        if resume is not None:
            if ctx.is_main and (recovered := run.checkpoints.recover_last()) is not None:
                pointer = run.checkpoints.root / "last.json"
                print(f"{pointer} was missing; it now names {recovered}, the newest")
            if run.has_results():  # finished: training again would change nothing it reports
                load_trained(run.path, "last")  # ... but its checkpoint must still load
                print(f"{run} finished its run ({_planned(config)}); nothing to train")
                clean = True
                return _saved_result(run)
        result = _run(config, ctx, run, resume is not None, augment_rng, stop, started)
        clean = True
        return result
    except Exception:
        run.lock.release()
        if made_here and ctx.is_main and run.path.is_dir() and not any(run.path.iterdir()):
            run.path.rmdir()  # refused before it wrote anything (bad data, too small, memory)
        raise
    finally:
        run.lock.release()
        # Only when changed: the call imports torch._inductor (about a second), and after a stop
        # that came in the middle of an import that import can fail and hide the stop.
        if torch.are_deterministic_algorithms_enabled() != previous_deterministic:
            torch.use_deterministic_algorithms(previous_deterministic)
        distributed.teardown(ctx, clean=clean)


def _interrupted_at_start(
    stop: _StopSignal, opened: dict[str, Any], *, fresh: bool
) -> TrainingInterrupted:
    """A stop before the first step: a new run leaves nothing behind, a resumed one is as it
    was."""
    if "run" not in opened:
        return TrainingInterrupted(f"{stop.name} received while starting; nothing was saved")
    run, made_here = opened["run"], opened["made_here"]
    if not fresh:
        return TrainingInterrupted(
            f"{stop.name} received while starting; {run} is as it was. Resume with: "
            f"cnnzoo train --resume {run}"
        )
    run.lock.release()
    removed = run.remove_if_only_started(made_here)
    what = f"{run} was removed" if removed and not run.path.exists() else "nothing was saved"
    return TrainingInterrupted(
        f"{stop.name} received before the first training step; {what}. Start it again to train."
    )


def _run(
    config: TrainConfig,
    ctx: distributed.DistContext,
    run: RunDir,
    resuming: bool,
    augment_rng: torch.Generator,
    stop: _StopSignal,
    started: float,
) -> RunResult:
    spec = get_spec(config.model)
    log = print if ctx.is_main else (lambda *a, **k: None)

    # ---- data ----------------------------------------------------------------------------------
    splits: DataSplits = open_dataset(
        config.data, seed=config.seed, input_size=spec.input_size, validation=config.validation
    )
    train_tf = make_transform(
        splits, spec.input_size, train=True, augment=config.augment, pca_color=config.pca_color
    )
    eval_tf = make_transform(splits, spec.input_size, train=False)
    per_rank_batch = config.batch_size // ctx.world_size
    steps_per_epoch = len(_epoch_indices(splits.train, ctx, config.seed, 0)) // per_rank_batch
    if steps_per_epoch == 0:
        raise UsageError(
            f"batch size {config.batch_size} is larger than the {len(splits.train)} training "
            f"images of {splits.name}; lower --batch-size"
        )

    # ---- model ---------------------------------------------------------------------------------
    model = create_model(config.model, num_classes=splits.num_classes, **dict(config.model_options))
    model.to(ctx.device)
    config = resolve_auto_precision(
        config, model, lambda m: _optimizer(config, m), spec.input_size, splits.num_classes, ctx
    )
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    log(banner(config, spec, model, splits, ctx, steps_per_epoch, run))
    check_trainable(model, spec.input_size, config, per_rank_batch, log)
    aux_weight = _resolve_aux_weight(config, spec, model)
    train_forward: nn.Module = _TrainForward(model, with_aux=aux_weight > 0)
    if ctx.enabled:
        train_forward = DistributedDataParallel(
            train_forward, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
        )
    if config.compile:
        train_forward = torch.compile(train_forward)

    # ---- optimizer and schedule ----------------------------------------------------------------
    optimizer = _optimizer(config, model)
    state = TrainState(LearningRate(config, steps_per_epoch), augment_rng, ctx.device)
    training = _Training(
        config, ctx, run, splits, train_tf, eval_tf, model, train_forward, optimizer, state,
        aux_weight, steps_per_epoch, log,
    )  # fmt: skip
    if resuming:
        training.restore()
    elif ctx.is_main:
        run.write_config(config, _data_record(splits))
    stop.immediate = False  # from here a stop saves a checkpoint first

    # ---- epochs --------------------------------------------------------------------------------
    first = True
    while state.epoch < config.epochs and not training.reached_max_steps():
        if not training.train_epoch(stop, first=first):
            break  # --max-steps ended it mid-epoch
        training.end_epoch(stop)
        first = False

    # ---- final evaluation ----------------------------------------------------------------------
    # The DDP reducer holds the process group: drop every reference (see distributed.teardown).
    training.drop_train_forward()
    del train_forward
    test_loss = test_error = None
    if splits.test is not None:
        test_loss, test_error = training.final_evaluation(splits.test, stop)
    result = RunResult(
        run_dir=run.path,
        epochs_completed=state.epoch,
        steps=state.global_step,
        test_loss=test_loss,
        test_accuracy=None if test_error is None else 1.0 - test_error,
        best_val_error=state.best,
        seconds=time.perf_counter() - started,
    )
    if ctx.is_main:
        run.write_results(
            {k: str(v) if isinstance(v, Path) else v for k, v in vars(result).items()}
        )
    return result


@dataclass(eq=False)
class _Training:
    """What `_run` built, and one step, epoch or evaluation of the run at a time."""

    config: TrainConfig
    ctx: distributed.DistContext
    run: RunDir
    splits: DataSplits
    train_tf: Callable
    eval_tf: Callable
    model: nn.Module
    train_forward: nn.Module | None
    optimizer: torch.optim.Optimizer
    state: TrainState
    aux_weight: float
    steps_per_epoch: int
    log: Callable[..., None]

    def __post_init__(self) -> None:
        c, device = self.config, self.ctx.device
        self.per_rank_batch = c.batch_size // self.ctx.world_size
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(c.precision)
        self.scaler = torch.amp.GradScaler("cuda", enabled=c.precision == "fp16")
        self.curve_figure = new_figure() if self.ctx.is_main else None
        # The first step whose loss was not finite, and that loss (-1: none yet). Kept on the
        # device and read where a sync happens anyway, so that no step waits for the check.
        self.first_bad_step = torch.full((), -1, dtype=torch.int64, device=device)
        self.bad_loss = torch.zeros((), device=device)
        self.epoch_start = time.perf_counter()

    # ---- resume --------------------------------------------------------------------------------
    def restore(self) -> None:
        """Continue from the last checkpoint (or from the start if none was written)."""
        store, ctx, state = self.run.checkpoints, self.ctx, self.state
        distributed.sum_across(ctx, [0.0])  # the other processes read `last` once it is there
        if not store.exists("last"):
            # Stopped (killed) before its first checkpoint: nothing to continue but the config.
            self.log(
                f"resuming {self.run}: no checkpoint was written yet; starting from the beginning"
            )
            self.run.keep_metrics_until(0)
            return
        weights, saved, meta = store.load("last")
        load_weights(self.model, weights, store.path("last"), meta)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scaler.load_state_dict(saved["scaler"])
        state.load_state_dict(saved, ctx.rank)
        # An epoch logged but killed before its checkpoint is trained again: drop its line.
        self.run.keep_metrics_until(state.epoch)
        self.log(f"resuming {self.run} at epoch {state.epoch + 1}, step {state.global_step}")

    def reached_max_steps(self) -> bool:
        return self.config.max_steps is not None and self.state.global_step >= self.config.max_steps

    # ---- one step ------------------------------------------------------------------------------
    def train_step(self, images: Tensor, labels: Tensor) -> float:
        """One optimizer step on a batch; returns its learning rate."""
        c, state, device = self.config, self.state, self.ctx.device
        step = state.global_step
        lr = state.schedule.at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x = self.train_tf(images, state.augment_rng).to(device)
        if c.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        labels = labels.to(device)
        with _autocast(device, self.autocast_dtype):
            logits, aux = self.train_forward(x)
            loss = training_loss(logits, aux, labels, self.aux_weight, c.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        bad = ~torch.isfinite(loss.detach()) & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(bad, step, self.first_bad_step)
        self.bad_loss = torch.where(bad, loss.detach(), self.bad_loss)
        correct = state.add_batch(loss, logits, labels)
        if not state.schedule.warmup_done:
            # note: a CPU-GPU sync point, only while the warm-up rule watches the error
            state.schedule.observe_train_error(step, 1.0 - correct.item() / len(labels))
        return lr

    def _stop_agreed(self, stop: _StopSignal) -> bool:
        """Whether to stop after this step. Under torchrun every process must stop at the same
        step, or the collectives would hang: one all-reduce per step carries the stop request
        and the loss check, which is then done at once."""
        if not self.ctx.enabled:
            return stop.received is not None
        flags = torch.stack(
            [
                torch.tensor(float(stop.received is not None), device=self.ctx.device),
                (self.first_bad_step >= 0).to(torch.float32),
            ]
        )
        torch.distributed.all_reduce(flags)
        stop_votes, bad_votes = flags.tolist()  # note: a CPU-GPU sync point, every step
        if bad_votes:
            self.raise_if_diverged(agreed=True)
        return stop_votes > 0

    def raise_if_diverged(self, *, agreed: bool = False) -> None:
        """TrainingDiverged if a step's loss was not finite (the run's checkpoints are older)."""
        # note: a CPU-GPU sync point; taken when a line is logged, a checkpoint is written or
        # an epoch ends, never for the check alone
        first = int(self.first_bad_step.item())
        if first < 0 and not agreed:
            return
        if first < 0:  # another process saw it
            first = self.state.global_step - 1
        last = self.run.checkpoints.describe_last()
        raise TrainingDiverged(
            f"the loss became {self.bad_loss.item()} at epoch {first // self.steps_per_epoch + 1}"
            f", step {first % self.steps_per_epoch + 1} (global step {first + 1}); the run "
            f"stopped and the last good checkpoint is kept: {last}. Lower the learning rate "
            f"(now {self.state.schedule.at(first):g}) or add warm-up."
        )

    # ---- one epoch -----------------------------------------------------------------------------
    def train_epoch(self, stop: _StopSignal, *, first: bool) -> bool:
        """The rest of the current epoch's steps; False when --max-steps ended it early.

        Raises:
            TrainingInterrupted: after a checkpoint of the step at which a stop arrived.
        """
        c, ctx, state = self.config, self.ctx, self.state
        epoch = state.epoch
        indices = _epoch_indices(self.splits.train, ctx, c.seed, epoch)
        skip = state.step_in_epoch * self.per_rank_batch
        loader = _loader(
            self.splits.train, indices[skip:], self.per_rank_batch, c.num_workers, drop_last=True
        )
        self.model.train()
        bar = EpochProgress(
            epoch + 1, c.epochs, self.steps_per_epoch, enabled=ctx.is_main,
            log_every=c.log_every, start=state.step_in_epoch, first=first,
        )  # fmt: skip
        self.epoch_start = time.perf_counter()
        try:
            for images, labels in loader:
                lr = self.train_step(images, labels)
                bar.update(len(labels) * ctx.world_size, lambda lr=lr: self._running(lr))
                if self._stop_agreed(stop):
                    bar.close()
                    path = self.save_checkpoint()
                    raise TrainingInterrupted(
                        f"{stop.name} received at epoch {epoch + 1}, step {state.step_in_epoch}"
                        f"; checkpoint saved to {path}. Resume with: cnnzoo train --resume "
                        f"{self.run}"
                    )
                if self.reached_max_steps():
                    break
        finally:
            bar.close()
        if state.step_in_epoch < self.steps_per_epoch:  # max_steps ended it mid-epoch
            self.save_checkpoint()
            return False
        return True

    def _running(self, lr: float) -> tuple[float, float, float]:
        self.raise_if_diverged()
        return (*self.state.running(), lr)

    def end_epoch(self, stop: _StopSignal) -> None:
        """Validate, log, plot and checkpoint the epoch whose steps are all done."""
        c, state = self.config, self.state
        # The learning rate of the last step taken (a resumed epoch may have no step left).
        lr = self.optimizer.param_groups[0]["lr"]
        self.raise_if_diverged()
        train_loss, train_error = state.epoch_means(self.ctx)
        val_loss = val_error = None
        if self.splits.val is not None:
            try:
                val_loss, val_error = self.evaluate(self.splits.val, stop)
            except _EvaluationStopped:
                path = self.save_checkpoint()  # every step of the epoch is in it
                raise TrainingInterrupted(
                    f"{stop.name} received while validating epoch {state.epoch + 1}; checkpoint "
                    f"saved to {path}. Resume with: cnnzoo train --resume {self.run}"
                ) from None
        state.schedule.end_epoch(val_loss)
        record = {
            "epoch": state.epoch + 1,
            "step": state.global_step,
            "lr": lr,
            "train_loss": train_loss,
            "train_error": train_error,
            "val_loss": val_loss,
            "val_error": val_error,
            "seconds": time.perf_counter() - self.epoch_start,
        }
        self.log(epoch_line(record, c.epochs))
        improved = state.finish_epoch(val_error)
        if self.ctx.is_main:
            self.run.append_metrics(record)
            with self.run.explained(self.run.curves_path):
                plot_training_curves(
                    {c.model: self.run.read_metrics()},
                    self.run.curves_path,
                    title=f"{c.model} on {self.splits.name}",
                    figure=self.curve_figure,
                )
        self.save_checkpoint(
            best={"val_error": val_error, "epoch": state.epoch} if improved else None
        )

    # ---- evaluation and checkpoints ------------------------------------------------------------
    def evaluate(self, dataset: Dataset, stop: _StopSignal) -> tuple[float, float]:
        # One process may give up between batches; under torchrun the processes finish the
        # evaluation (a process leaving early would leave the others waiting in its all-reduce).
        should_stop = None if self.ctx.enabled else (lambda: stop.received is not None)
        return evaluate_model(
            self.model, dataset, self.eval_tf, self.ctx, self.per_rank_batch,
            self.config.num_workers, channels_last=self.config.channels_last,
            autocast_dtype=self.autocast_dtype, should_stop=should_stop,
        )  # fmt: skip

    def final_evaluation(self, dataset: Dataset, stop: _StopSignal) -> tuple[float, float]:
        try:
            return self.evaluate(dataset, stop)
        except _EvaluationStopped:
            store = self.run.checkpoints
            raise TrainingInterrupted(
                f"{stop.name} received during the final evaluation; training is complete and "
                f"saved ({store.path('last')}). Evaluate it with: cnnzoo train --resume {self.run}"
            ) from None

    def drop_train_forward(self) -> None:
        self.train_forward = None

    def save_checkpoint(self, best: dict[str, Any] | None = None) -> Path | None:
        """Every process takes part (the random streams are gathered); the main one writes."""
        self.raise_if_diverged()  # never save weights a non-finite loss has reached
        saved = {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            **self.state.state_dict(self.ctx),
        }
        if not self.ctx.is_main:
            return None
        meta = {
            "model": self.config.model,
            "step": self.state.global_step,
            "epoch": self.state.epoch,
            **environment(),
        }
        tag = f"step-{self.state.global_step:08d}"
        return self.run.checkpoints.save(tag, self.model.state_dict(), saved, meta, best=best)


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _data_record(splits: DataSplits) -> dict[str, Any]:
    """What config.json keeps of the data: enough to evaluate and predict without it."""
    return {
        "name": splits.name,
        "source": splits.source,
        "classes": list(splits.classes),
        "mean": list(splits.mean),
        "std": list(splits.std),
    }


def _planned(config: TrainConfig) -> str:
    if config.max_steps is not None:
        return f"{config.max_steps} steps (--max-steps)"
    return f"{config.epochs} epoch{'s' * (config.epochs != 1)}"


def _saved_result(run: RunDir) -> RunResult:
    saved = json.loads(run.results_path.read_text())
    return RunResult(**{**saved, "run_dir": Path(saved["run_dir"])})


def banner(
    config: TrainConfig,
    spec: ModelSpec,
    model: nn.Module,
    splits: DataSplits,
    ctx: distributed.DistContext,
    steps_per_epoch: int,
    run: RunDir,
) -> str:
    """What the run is about to do, printed before anything slow."""
    from cnnzoo.formatting import format_count
    from cnnzoo.train.recipes import RECIPES

    params = sum(p.numel() for p in model.parameters())
    recipe = RECIPES.get(config.recipe)
    sizes = ", ".join(
        f"{name} {len(split):,}"
        for name, split in (("train", splits.train), ("val", splits.val), ("test", splits.test))
        if split is not None
    )
    # The rules that gave the learning rate and the warm-up (the recipe's, scaled to the batch),
    # when they were applied; getattr: configs saved before they were recorded have neither.
    lr_rule = getattr(config, "lr_rule", "") or f"lr {config.lr:g}"
    if getattr(config, "warmup_rule", ""):
        lr_rule += f"; {config.warmup_rule}"
    per_rank = config.batch_size // ctx.world_size
    device = ctx.device.type
    if device == "cuda":
        device = f"cuda ({torch.cuda.get_device_name(ctx.device)})"
    size = "x".join(map(str, spec.input_size))
    lines = [
        f"training {config.model} ({format_count(params)} parameters, input {size}) on "
        f"{splits.name}: {_planned(config)}",
        f"  recipe    {config.recipe}" + (f" ({recipe.citation})" if recipe else ""),
        f"  schedule  {lr_rule}, {config.schedule}, {config.optimizer}",
        f"  batch     {config.batch_size} ({per_rank} per process x {ctx.world_size}), "
        f"{steps_per_epoch} steps per epoch",
        f"  data      {sizes} images, {splits.num_classes} classes ({splits.source})",
        f"  device    {device}, {torch.get_num_threads()} threads, {config.precision}"
        + (", channels-last" if config.channels_last else "")
        + (", compiled" if config.compile else "")
        + (f"\n            {config.precision_rule}" if config.precision_rule else ""),
        f"  run       {run}",
    ]
    return "\n".join(lines)


def epoch_line(record: dict[str, Any], epochs: int) -> str:
    line = (
        f"epoch {record['epoch']}/{epochs}  train loss {record['train_loss']:.4f} "
        f"error {100 * record['train_error']:.2f}%"
    )
    if record["val_error"] is not None:
        line += f"  val loss {record['val_loss']:.4f} error {100 * record['val_error']:.2f}%"
    return line + f"  lr {record['lr']:.3g}  {record['seconds']:.1f}s"


def check_trainable(
    model: nn.Module,
    input_size: tuple[int, ...],
    config: TrainConfig,
    batch_size: int,
    log=print,
) -> None:
    """Before training: run the analyzer on the model as built for this run.

    Raises:
        ValueError: the input is too small for the network (the message names the layer and
            the smallest input that passes), or the analyzer's training-memory estimate exceeds
            `config.max_memory` (the message gives the estimate and the largest batch that fits).
    """
    from cnnzoo.analysis import parse_bytes, summary
    from cnnzoo.analysis.render import failure_lines, nbytes

    report = summary(model, tuple(input_size), batch_size=batch_size)
    if report.failure is not None:
        size = "x".join(map(str, input_size))
        raise UsageError(
            f"{config.model} cannot train on {size} inputs:\n" + "\n".join(failure_lines(report))
        )
    if config.max_memory is None:
        return
    budget = parse_bytes(config.max_memory)
    optimizer = config.optimizer if config.optimizer == "adam" else "sgd"
    if optimizer == "sgd" and config.momentum:
        optimizer = "sgd_momentum"
    estimate = report.totals.training_bytes(optimizer, batch_size)
    log(
        f"training memory estimate (analyzer; {optimizer}, batch {batch_size} per process, "
        f"float32): {nbytes(estimate)}; --max-memory {config.max_memory}"
    )
    if estimate > budget:
        fits = report.totals.max_batch_size(budget, optimizer)
        raise UsageError(
            f"the training memory estimate {nbytes(estimate)} ({config.model}, {optimizer}, "
            f"batch {batch_size} per process) exceeds --max-memory {config.max_memory}; the run "
            f"was not started. Lower --batch-size (the largest batch that fits is {fits}) or "
            f"raise --max-memory."
        )
