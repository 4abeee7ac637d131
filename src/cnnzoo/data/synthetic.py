"""Synthetic data: random uint8 images of the model's input shape with random labels, for
throughput runs and distributed tests. Item i is a function of (seed, i) alone, so every process
and every DataLoader worker sees the same data without storing it."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from cnnzoo.data.splits import DataSplits, arrange

NUM_CLASSES = 10
DEFAULT_SIZE = 1024  # training images of "synthetic" without ":N"
# Uniform integers 0..255 scaled to [0, 1]: mean 1/2, std sqrt((256^2 - 1) / 12) / 255.
MEAN = 0.5
STD = math.sqrt((256**2 - 1) / 12) / 255


class SyntheticImages(Dataset):
    """`size` random images of `shape` (uint8) with labels in `range(num_classes)`.

    Item i is drawn from a generator seeded with (seed, offset + i), so it needs no storage and
    is the same in every process; `offset` keeps validation and test items apart from training
    items.
    """

    def __init__(
        self,
        size: int,
        shape: tuple[int, int, int],
        *,
        seed: int = 0,
        offset: int = 0,
        num_classes: int = NUM_CLASSES,
    ) -> None:
        self.size = size
        self.shape = shape
        self.seed = seed
        self.offset = offset
        self.num_classes = num_classes

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} synthetic images")
        # numpy's SeedSequence turns (seed, item) into independent streams without collisions
        # (torch's CPU generator keeps only 32 bits of a seed).
        rng = np.random.default_rng([self.seed, self.offset + index])
        label = int(rng.integers(self.num_classes))
        image = torch.from_numpy(rng.integers(0, 256, self.shape, dtype=np.uint8))
        return image, label


def load_synthetic(
    size: int, input_size: tuple[int, int, int], *, seed: int = 0, validation: str = "split"
) -> DataSplits:
    """`size` training images of `input_size`, plus `size // 8` (at least 1) validation and as
    many test images, all distinct and determined by `seed`.

    Args:
        validation: "split" validates on the validation images, "test" on the test images,
            "none" not at all.
    """
    extra = max(1, size // 8)
    train = SyntheticImages(size, input_size, seed=seed)
    val = SyntheticImages(extra, input_size, seed=seed, offset=size)
    test = SyntheticImages(extra, input_size, seed=seed, offset=size + extra)
    train, val, test = arrange(validation, train, lambda full: (full, val), test, "synthetic")
    channels = input_size[0]
    return DataSplits(
        name="synthetic",
        train=train,
        val=val,
        test=test,
        num_classes=NUM_CLASSES,
        classes=tuple(f"class_{i}" for i in range(NUM_CLASSES)),
        mean=(MEAN,) * channels,
        std=(STD,) * channels,
        augment="none",
        source=f"synthetic: {size} random uint8 images of shape {tuple(input_size)}, seed {seed}",
    )
