"""What `open_dataset` returns: the splits of one data set and the facts a trainer needs about it,
plus the in-memory dataset and the split helpers the formats share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from cnnzoo.data.errors import DataError

# Held-out splits use this seed, not the run's seed: every run of every model sees the same
# train/validation/test images, so their results can be compared.
SPLIT_SEED = 0
# "split": validate on data held out of the training set; "test": validate on the test set;
# "none": no validation.
VALIDATION_MODES = ("split", "test", "none")


@dataclass(frozen=True)
class DataSplits:
    """The splits of one data set.

    Items of every split are `(image, label)`: `image` a [C, H, W] tensor, uint8 in 0..255 or
    float32 in [0, 1]; `label` an int in `range(num_classes)`.

    Attributes:
        name: "digits", "cifar10", "cifar100", "imagefolder" or "synthetic".
        train, val, test: the splits; `val` or `test` is None where the data set has none.
        num_classes: number of classes; `classes` their names, index = label.
        mean, std: per-channel normalization of the data set, in [0, 1] units.
        augment: the default training augmentation ("cifar", "imagenet", "digits" or "none").
        source: where the data came from (a path or a description), recorded in run folders.
        flips_preserve_labels: whether a left-right mirror keeps an image's label (a photo's
            class survives it, a handwritten digit's does not); augmentations that ask for
            flips apply them only where this is True.
    """

    name: str
    train: Dataset
    val: Dataset | None
    test: Dataset | None
    num_classes: int
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str
    source: str
    flips_preserve_labels: bool = False  # not declared: no flips

    @property
    def channels(self) -> int:
        """Channels of the stored images (1 for digits, 3 otherwise)."""
        return len(self.mean)


class ImageTensorDataset(Dataset):
    """Images and labels held in memory as two tensors.

    A trainer can index `images` and `labels` with a whole batch of indices at once instead of
    going through a DataLoader item by item.

    Args:
        images: [N, C, H, W], uint8 (0..255) or float32 ([0, 1]).
        labels: [N] int64.
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.dim() != 4 or labels.shape != (images.shape[0],):
            raise ValueError(
                f"images must be [N, C, H, W] and labels [N]; got {tuple(images.shape)} and "
                f"{tuple(labels.shape)}"
            )
        self.images = images
        self.labels = labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])

    def subset(self, indices: Tensor) -> ImageTensorDataset:
        """A new dataset holding the items at `indices`, in that order."""
        return ImageTensorDataset(self.images[indices], self.labels[indices])


def concat(parts: Sequence[ImageTensorDataset]) -> ImageTensorDataset:
    """The items of `parts`, one after the other."""
    if len(parts) == 1:
        return parts[0]
    return ImageTensorDataset(
        torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts])
    )


def stratified_split(
    labels: Tensor, fractions: tuple[float, ...], seed: int = SPLIT_SEED
) -> list[Tensor]:
    """Split indices class by class into parts of the given fractions (the last part gets the
    rest), shuffled with `seed`.

    Each class contributes `round(fraction * class size)` items to each part but the last, so
    every part has the class balance of the whole. Returns `len(fractions) + 1` sorted index
    tensors: one per fraction, then the rest.
    """
    generator = torch.Generator().manual_seed(seed)
    parts: list[list[Tensor]] = [[] for _ in range(len(fractions) + 1)]
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        start = 0
        for part, fraction in zip(parts, fractions, strict=False):
            stop = start + round(fraction * len(members))
            part.append(members[start:stop])
            start = stop
        parts[-1].append(members[start:])
    return [torch.sort(torch.cat(part)).values for part in parts]


def hold_out_last(
    dataset: ImageTensorDataset, fraction: float = 0.1
) -> tuple[ImageTensorDataset, ImageTensorDataset]:
    """Split off the last `fraction` of `dataset` as a validation set.

    On CIFAR's 50,000 training images this is the ResNet paper's 45k/5k split (Section 4.2), with
    the validation images taken as the last 5,000 in file order (the end of `data_batch_5`).
    """
    n_val = int(len(dataset) * fraction)
    n_train = len(dataset) - n_val
    return (
        dataset.subset(torch.arange(n_train)),
        dataset.subset(torch.arange(n_train, len(dataset))),
    )


def hold_out_stratified(dataset: Any, fraction: float = 0.1) -> tuple[Any, Any]:
    """Split a class-balanced `fraction` off `dataset` (which has `labels` and `subset`) as a
    validation set, with the fixed `SPLIT_SEED`."""
    val, train = stratified_split(dataset.labels, (fraction,))
    return dataset.subset(train), dataset.subset(val)


def arrange(
    validation: str,
    train_full: Dataset,
    hold_out: Callable[[Dataset], tuple[Dataset, Dataset]],
    test: Dataset | None,
    where: str,
) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """(train, val, test) for a `validation` mode.

    "split": validate on a part held out of the training data by `hold_out`; "test": train on all
    the training data and validate on the test set; "none": train on all of it, no validation.
    """
    if validation == "split":
        train, val = hold_out(train_full)
        return train, val, test
    if validation == "test":
        if test is None:
            raise DataError(
                f"{where} has no test set to validate on (validation='test'). Add a test/ or "
                "val/ folder, or use validation='split' to hold out part of the training data."
            )
        return train_full, test, test
    return train_full, None, test
