"""The training loop: setup -> data -> model -> optimizer and schedule -> epochs with evaluation,
logging and checkpoints. Runs unchanged in one process or under `torchrun`."""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
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
from cnnzoo.fileio import append_synced, atomic_write
from cnnzoo.registry import create_model, get_spec
from cnnzoo.train import distributed
from cnnzoo.train.checkpoint import CheckpointStore
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.evaluate import load_weights
from cnnzoo.train.plots import new_figure
from cnnzoo.train.progress import EpochProgress
from cnnzoo.train.rundir import RunLock, default_run_dir, environment, prepare_run_dir
from cnnzoo.train.schedule import LearningRate


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class TrainingInterrupted(RuntimeError):
    """SIGINT or SIGTERM arrived; a checkpoint was saved first."""


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


class _StopSignal:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.received = signum

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


def _rng_state(generator: torch.Generator) -> dict[str, Tensor | list[Tensor]]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "augment": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["augment"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
) -> tuple[float, float]:
    """Mean cross-entropy and top-1 error over a data set (sharded across processes)."""
    indices = list(range(ctx.rank, len(dataset), ctx.world_size))
    was_training = model.training
    model.eval()
    totals = [0.0, 0.0, 0.0]  # loss sum, correct, count
    try:
        with torch.no_grad():
            for images, labels in _loader(dataset, indices, batch_size, workers, drop_last=False):
                x = transform(images, None).to(ctx.device)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                labels = labels.to(ctx.device)
                with _autocast(ctx.device, autocast_dtype):
                    logits = model(x)
                totals[0] += F.cross_entropy(logits.float(), labels, reduction="sum").item()
                totals[1] += (logits.argmax(1) == labels).sum().item()
                totals[2] += len(labels)
    finally:
        model.train(was_training)
    loss_sum, correct, count = distributed.sum_across(ctx, totals)
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


def _resolve_aux_weight(config: TrainConfig, model: nn.Module) -> float:
    weight = get_spec(config.model).aux_loss_weight
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

    Returns the run's result after the last epoch. Raises `TrainingInterrupted` after saving a
    checkpoint when SIGINT/SIGTERM arrives, and `TrainingDiverged` when the loss is not finite.
    """
    started = time.perf_counter()
    # ---- setup ---------------------------------------------------------------------------------
    if resume is not None:
        run_dir = Path(resume)
        saved = json.loads(
            (prepare_run_dir(run_dir, resume=True, force=False) / "config.json").read_text()
        )
        config = TrainConfig.from_dict(saved["config"])
    elif config is None:
        raise UsageError("fit needs a config, or a run directory to resume")
    ctx = distributed.setup()
    made_here = False
    if resume is None:
        run_dir = Path(config.out) if config.out else default_run_dir(config.model, config.data)
        made_here = not run_dir.exists()
        if ctx.is_main:
            prepare_run_dir(run_dir, resume=False, force=force)
        config = replace(config, out=str(run_dir))
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
    lock = RunLock(run_dir)
    if ctx.is_main:
        lock.acquire()
    clean = False
    try:
        result = _run(config, ctx, run_dir, resume is not None, augment_rng, started)
        clean = True
        return result
    except Exception:
        lock.release()
        if made_here and ctx.is_main and not any(run_dir.iterdir()):
            run_dir.rmdir()  # refused before it wrote anything (bad data, too small, memory)
        raise
    finally:
        lock.release()
        torch.use_deterministic_algorithms(previous_deterministic)
        distributed.teardown(ctx, clean=clean)


def _run(
    config: TrainConfig,
    ctx: distributed.DistContext,
    run_dir: Path,
    resuming: bool,
    augment_rng: torch.Generator,
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
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    check_trainable(model, spec.input_size, config, per_rank_batch, log)
    aux_weight = _resolve_aux_weight(config, model)
    train_forward: nn.Module = _TrainForward(model, with_aux=aux_weight > 0)
    if ctx.enabled:
        train_forward = DistributedDataParallel(
            train_forward, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
        )
    if config.compile:
        train_forward = torch.compile(train_forward)

    # ---- optimizer and schedule ----------------------------------------------------------------
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
    else:
        optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
    schedule = LearningRate(config, steps_per_epoch)
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
    scaler = torch.amp.GradScaler("cuda", enabled=config.precision == "fp16")

    store = CheckpointStore(run_dir)
    progress = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "sums": [0.0, 0.0, 0.0]}
    best_val_error = math.inf
    if resuming and ctx.is_main and (recovered := store.recover_last()) is not None:
        log(f"{store.root / 'last.json'} was missing; it now names {recovered}, the newest")
    if resuming:
        distributed.sum_across(ctx, [0.0])  # the other processes read `last` once it is there
    if resuming and not store.exists("last"):
        # Stopped (killed) before its first checkpoint: nothing to continue but the config.
        log(f"resuming {run_dir}: no checkpoint was written yet; starting from the beginning")
        _keep_metrics_until(run_dir / "metrics.jsonl", 0)
    elif resuming:
        weights, state, meta = store.load("last")
        load_weights(model, weights, store.path("last"), meta)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(
            state["rng"][ctx.rank] if ctx.rank < len(state["rng"]) else state["rng"][0], augment_rng
        )
        progress = state["progress"]
        best_val_error = state["best_val_error"]
        # An epoch logged but killed before its checkpoint is trained again: drop its line.
        _keep_metrics_until(run_dir / "metrics.jsonl", progress["epoch"])
        log(f"resuming {run_dir} at epoch {progress['epoch'] + 1}, step {progress['global_step']}")
    elif ctx.is_main:
        atomic_write(
            run_dir / "config.json",
            json.dumps(
                {
                    "config": json.loads(config.to_json()),
                    "environment": environment(),
                    "data": {
                        "name": splits.name,
                        "source": splits.source,
                        "classes": list(splits.classes),
                        "mean": list(splits.mean),
                        "std": list(splits.std),
                    },
                },
                indent=2,
            ).encode(),
        )

    def save_checkpoint(best: dict[str, Any] | None = None) -> Path | None:
        state = {
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": _gather_rng(ctx, augment_rng),
            "progress": progress,
            "best_val_error": best_val_error,
        }
        if not ctx.is_main:
            return None
        meta = {
            "model": config.model,
            "step": progress["global_step"],
            "epoch": progress["epoch"],
            **environment(),
        }
        return store.save(
            f"step-{progress['global_step']:08d}", model.state_dict(), state, meta, best=best
        )

    # ---- epochs --------------------------------------------------------------------------------
    metrics_path = run_dir / "metrics.jsonl"
    curve_figure = new_figure() if ctx.is_main else None
    with _StopSignal() as stop:
        while progress["epoch"] < config.epochs:
            epoch = progress["epoch"]
            indices = _epoch_indices(splits.train, ctx, config.seed, epoch)
            skip = progress["step_in_epoch"] * per_rank_batch
            loader = _loader(
                splits.train, indices[skip:], per_rank_batch, config.num_workers, drop_last=True
            )
            model.train()
            bar = EpochProgress(
                epoch + 1,
                config.epochs,
                steps_per_epoch,
                enabled=ctx.is_main,
                log_every=config.log_every,
                start=progress["step_in_epoch"],
            )
            epoch_start = time.perf_counter()
            # The learning rate of the last step taken: an epoch whose every step was done
            # before a stop resumes with no step left and still reports it.
            lr = optimizer.param_groups[0]["lr"]
            for images, labels in loader:
                step = progress["global_step"]
                lr = schedule.at(step)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x = train_tf(images, augment_rng).to(ctx.device)
                if config.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                labels = labels.to(ctx.device)
                with _autocast(ctx.device, autocast_dtype):
                    logits, aux = train_forward(x)
                    loss = training_loss(logits, aux, labels, aux_weight, config.label_smoothing)
                finite = distributed.sum_across(ctx, [float(torch.isfinite(loss).item())])[0]
                if finite < ctx.world_size:
                    last = store.path("last") if store.exists("last") else "none yet"
                    raise TrainingDiverged(
                        f"the loss became {loss.item()} at epoch {epoch + 1}, step "
                        f"{progress['step_in_epoch'] + 1} (global step {step + 1}); the run "
                        f"stopped and the last good checkpoint is kept: {last}. Lower the "
                        f"learning rate (now {lr:g}) or add warm-up."
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()

                sums = progress["sums"]
                correct = (logits.argmax(1) == labels).sum().item()
                sums[0] += loss.item() * len(labels)
                sums[1] += correct
                sums[2] += len(labels)
                progress["global_step"] += 1
                progress["step_in_epoch"] += 1
                schedule.observe_train_error(step, 1.0 - correct / len(labels))
                bar.update(
                    loss=sums[0] / sums[2],
                    acc=sums[1] / sums[2],
                    images=len(labels) * ctx.world_size,
                    lr=lr,
                )
                stopping = (
                    config.max_steps is not None and progress["global_step"] >= config.max_steps
                )
                # every process stops at the same step, or the collectives would hang
                if distributed.sum_across(ctx, [float(stop.received is not None)])[0] > 0:
                    bar.close()
                    path = save_checkpoint()
                    name = signal.Signals(stop.received or signal.SIGTERM).name
                    raise TrainingInterrupted(
                        f"{name} received at epoch {epoch + 1}, step {progress['step_in_epoch']}; "
                        f"checkpoint saved to {path}. Resume with: cnnzoo train --resume {run_dir}"
                    )
                if stopping:
                    break
            bar.close()
            if progress["step_in_epoch"] < steps_per_epoch:  # max_steps ended it mid-epoch
                save_checkpoint()
                break
            loss_sum, correct, count = distributed.sum_across(ctx, progress["sums"])
            train_loss, train_error = loss_sum / max(count, 1), 1 - correct / max(count, 1)
            val_loss = val_error = None
            if splits.val is not None:
                val_loss, val_error = evaluate_model(
                    model,
                    splits.val,
                    eval_tf,
                    ctx,
                    per_rank_batch,
                    config.num_workers,
                    channels_last=config.channels_last,
                    autocast_dtype=autocast_dtype,
                )
            schedule.end_epoch(val_loss)
            record = {
                "epoch": epoch + 1,
                "step": progress["global_step"],
                "lr": lr,
                "train_loss": train_loss,
                "train_error": train_error,
                "val_loss": val_loss,
                "val_error": val_error,
                "seconds": time.perf_counter() - epoch_start,
            }
            log(_epoch_line(record, config.epochs))
            progress.update(epoch=epoch + 1, step_in_epoch=0, sums=[0.0, 0.0, 0.0])
            improved = val_error is not None and val_error < best_val_error
            if improved:
                best_val_error = val_error
            if ctx.is_main:
                append_synced(metrics_path, json.dumps(record))
                _plot_curves(metrics_path, run_dir / "curves.png", config.model, curve_figure)
            save_checkpoint(best={"val_error": val_error, "epoch": epoch + 1} if improved else None)
            if config.max_steps is not None and progress["global_step"] >= config.max_steps:
                break

    # ---- final evaluation ----------------------------------------------------------------------
    del train_forward  # the DDP reducer holds the process group; see distributed.teardown
    test_loss = test_error = None
    if splits.test is not None:
        test_loss, test_error = evaluate_model(
            model,
            splits.test,
            eval_tf,
            ctx,
            per_rank_batch,
            config.num_workers,
            channels_last=config.channels_last,
            autocast_dtype=autocast_dtype,
        )
    result = RunResult(
        run_dir=run_dir,
        epochs_completed=progress["epoch"],
        steps=progress["global_step"],
        test_loss=test_loss,
        test_accuracy=None if test_error is None else 1.0 - test_error,
        best_val_error=None if math.isinf(best_val_error) else best_val_error,
        seconds=time.perf_counter() - started,
    )
    if ctx.is_main:
        summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(result).items()}
        atomic_write(run_dir / "results.json", json.dumps(summary, indent=2).encode())
    return result


def _gather_rng(ctx: distributed.DistContext, generator: torch.Generator) -> list[dict]:
    """Every process's RNG state, so each continues its own random stream after a resume."""
    mine = _rng_state(generator)
    if not ctx.enabled:
        return [mine]
    gathered: list[Any] = [None] * ctx.world_size
    torch.distributed.all_gather_object(gathered, mine)
    return gathered


def _epoch_line(record: dict[str, Any], epochs: int) -> str:
    line = (
        f"epoch {record['epoch']}/{epochs}  train loss {record['train_loss']:.4f} "
        f"error {100 * record['train_error']:.2f}%"
    )
    if record["val_error"] is not None:
        line += f"  val loss {record['val_loss']:.4f} error {100 * record['val_error']:.2f}%"
    return line + f"  lr {record['lr']:.3g}  {record['seconds']:.1f}s"


def _plot_curves(metrics_path: Path, png_path: Path, title: str, figure) -> None:
    from cnnzoo.train.plots import plot_training_curves

    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
    plot_training_curves({title: records}, png_path, figure=figure)


def _keep_metrics_until(path: Path, epochs: int) -> None:
    """Keep the metrics of the first `epochs` epochs (those a checkpoint holds)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = []
    for line in lines:
        try:
            if json.loads(line)["epoch"] <= epochs:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            pass  # a line cut short by a kill
    if kept != lines:
        atomic_write(path, "".join(line + "\n" for line in kept).encode())


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
