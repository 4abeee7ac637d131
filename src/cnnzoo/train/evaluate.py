"""Use a trained run: evaluate it on a data set, or classify image files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnzoo.data import DataError, DataSplits, make_transform, open_dataset
from cnnzoo.errors import RunDirError, UsageError
from cnnzoo.fileio import atomic_write
from cnnzoo.interop import StateDictMismatchError, check_state_dict
from cnnzoo.registry import create_model, get_spec
from cnnzoo.train.checkpoint import CheckpointError, load_checkpoint_dir
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.rundir import RunDir

SPLITS = ("test", "val", "train")


@dataclass(frozen=True)
class TrainedModel:
    model: nn.Module
    config: TrainConfig
    data: DataSplits  # classes and normalization the model was trained with (no images)
    checkpoint: Path


def load_trained(path: str | Path, which: str = "best") -> TrainedModel:
    """Load a run directory's `best` (else `last`) checkpoint, or one checkpoint folder."""
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path} does not exist; name a run folder (runs/...) or a checkpoint")
    if (path / "meta.json").exists():
        checkpoint, run = path, RunDir(path.parent.parent)
    elif (run := RunDir(path)).holds_run():
        store = run.checkpoints
        if not (store.exists(which) or store.exists("last")):
            raise CheckpointError(
                f"{path} holds no checkpoint yet (its run stopped before one was written); "
                f"resume it with: cnnzoo train --resume {path}"
            )
        checkpoint = store.path(which if store.exists(which) else "last")
    else:
        raise CheckpointError(
            f"{path} is neither a run directory (config.json) nor a checkpoint (meta.json)"
        )
    saved = run.read_saved()
    config = TrainConfig.from_dict(saved["config"])
    info = saved["data"]
    weights, _, meta = load_checkpoint_dir(checkpoint)
    model = create_model(
        config.model, num_classes=len(info["classes"]), **dict(config.model_options)
    )
    load_weights(model, weights, checkpoint, meta)
    data = DataSplits(
        name=info["name"],
        train=None,
        val=None,
        test=None,
        num_classes=len(info["classes"]),
        classes=tuple(info["classes"]),
        mean=tuple(info["mean"]),
        std=tuple(info["std"]),
        augment="none",
        source=info["source"],
    )
    return TrainedModel(model.eval(), config, data, checkpoint)


def load_weights(model: nn.Module, weights: dict, checkpoint: Path, meta: dict) -> None:
    """Load a checkpoint's weights into `model`, refusing weights of another form.

    Raises:
        CheckpointError: the weights do not fit; the message lists the missing, unexpected and
            mismatched keys and names the registered model they fit.
    """
    try:
        check_state_dict(model, weights, hint=str(meta.get("model") or ""))
    except StateDictMismatchError as err:
        raise CheckpointError(
            f"{checkpoint} (saved from {meta.get('model')!r}) cannot be loaded into the run's "
            f"model: {err}"
        ) from None
    model.load_state_dict(weights)


@dataclass(frozen=True)
class Evaluation:
    loss: float
    top1: float  # accuracy, 0..1
    top5: float
    per_class: tuple[float, ...]  # accuracy of each class
    confusion: np.ndarray  # [true, predicted] counts
    classes: tuple[str, ...]
    count: int

    def to_dict(self) -> dict:
        return {
            "loss": self.loss,
            "top1": self.top1,
            "top5": self.top5,
            "count": self.count,
            "per_class": dict(zip(self.classes, self.per_class, strict=True)),
            "confusion": self.confusion.tolist(),
        }


def evaluate(trained: TrainedModel, data_spec: str, split: str = "test") -> Evaluation:
    """Loss, top-1/top-5 accuracy, per-class accuracy and the confusion matrix on a split."""
    if split not in SPLITS:
        raise UsageError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    spec = get_spec(trained.config.model)
    splits = open_dataset(
        data_spec, seed=trained.config.seed, input_size=spec.input_size,
        validation=trained.config.validation,
    )  # fmt: skip
    dataset = {"test": splits.test, "val": splits.val, "train": splits.train}[split]
    if dataset is None:
        raise UsageError(f"{data_spec} has no {split} split")
    if splits.num_classes != trained.data.num_classes:
        raise UsageError(
            f"{data_spec} has {splits.num_classes} classes; the model was trained on "
            f"{trained.data.num_classes} ({trained.data.name})"
        )
    transform = make_transform(trained.data, spec.input_size, train=False)
    k = min(5, splits.num_classes)
    confusion = np.zeros((splits.num_classes, splits.num_classes), dtype=np.int64)
    loss_sum, top5_hits, count = 0.0, 0, 0
    loader = torch.utils.data.DataLoader(dataset, batch_size=256)
    with torch.no_grad():
        for images, labels in loader:
            logits = trained.model(transform(images, None))
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
            top5_hits += (logits.topk(k, 1).indices == labels[:, None]).any(1).sum().item()
            np.add.at(confusion, (labels.numpy(), logits.argmax(1).numpy()), 1)
            count += len(labels)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    return Evaluation(
        loss=loss_sum / max(count, 1),
        top1=float(confusion.diagonal().sum() / max(count, 1)),
        top5=top5_hits / max(count, 1),
        per_class=tuple(float(a) for a in per_class),
        confusion=confusion,
        classes=trained.data.classes,
        count=count,
    )


def plot_confusion(evaluation: Evaluation, path: Path, title: str) -> None:
    """The confusion matrix as a PNG, written atomically (see `cnnzoo.train.plots`)."""
    from cnnzoo.train.plots import plot_confusion as draw

    draw(evaluation.confusion, evaluation.classes, path, title)


def _written_by_evaluate(report: Path) -> bool:
    """Whether `report` is an evaluation this module wrote (so replacing it loses nothing new)."""
    try:
        saved = json.loads(report.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and {"top1", "top5", "confusion", "per_class"} <= set(saved)


def write_evaluation(evaluation: Evaluation, out: Path, split: str, title: str) -> Path:
    """Write `SPLIT.json` and `SPLIT-confusion.png` into the folder `out` (each atomically);
    returns the PNG. `title` heads the confusion matrix: name the model, the data and the split.

    Raises:
        RunDirError: `out` cannot be created or written (nothing else was changed).
    """
    if split not in SPLITS:  # it names the files: never a path
        raise UsageError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    out = Path(out)
    report, png = out / f"{split}.json", out / f"{split}-confusion.png"
    present = [path for path in (report, png) if path.exists()]
    if present and not _written_by_evaluate(report):
        raise RunDirError(
            f"{present[0]} exists and is not an earlier cnnzoo evaluation; it is left as it is. "
            "Choose another --out."
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        plot_confusion(evaluation, png, title)
        atomic_write(report, json.dumps(evaluation.to_dict(), indent=2).encode())
    except OSError as err:
        raise RunDirError(
            f"cannot write the evaluation to {out}: {err.strerror or err}. Choose another --out."
        ) from err
    return png


def predict(
    trained: TrainedModel, image_paths: list[str | Path], top_k: int = 5, *, invert: bool = False
) -> list[list]:
    """Top-k (class, probability) for each image, decoded with Pillow and prepared the way the
    model was trained (channels, size, normalization). An image unlike the training images
    (`cnnzoo.train.image_check`) gets an `InputImageWarning`; `invert` inverts every image."""
    from PIL import Image, UnidentifiedImageError

    from cnnzoo.train.image_check import ImageCheck

    check = ImageCheck.for_run(trained)
    spec = get_spec(trained.config.model)
    transform = make_transform(trained.data, spec.input_size, train=False)
    results = []
    for path in image_paths:
        try:
            with Image.open(path) as image:
                mode = "L" if spec.input_size[0] == 1 else "RGB"
                array = np.asarray(image.convert(mode), dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(f"cannot decode image {path}: {err}") from err
        array = check.inspect(path, array, invert=invert)
        tensor = torch.from_numpy(array.copy())
        tensor = tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)
        with torch.no_grad():
            probs = trained.model(transform(tensor[None], None)).softmax(1)[0]
        values, indices = probs.topk(min(top_k, len(probs)))
        results.append(
            [(trained.data.classes[i], float(v)) for v, i in zip(values, indices, strict=True)]
        )
    return results
