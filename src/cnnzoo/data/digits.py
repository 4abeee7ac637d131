"""The embedded default: scikit-learn's handwritten digits (`sklearn.datasets.load_digits`).

1,797 real 8x8 grayscale images of the digits 0-9 with values 0..16, from the UCI "Optical
Recognition of Handwritten Digits" set. scikit-learn ships them inside its package, so nothing is
downloaded. The split is fixed (seeded with `SPLIT_SEED`, not the run's seed) and stratified:
20% test, then 12.5% of the rest (10% of all) validation, the remaining 70% training; that is
1,259 / 179 / 359 images (the shares are rounded class by class).
"""

from __future__ import annotations

import functools

import torch

from cnnzoo.data.splits import (
    SPLIT_SEED,
    DataSplits,
    ImageTensorDataset,
    arrange,
    hold_out_stratified,
    stratified_split,
)

MAX_VALUE = 16  # load_digits counts set pixels in 4x4 blocks of a 32x32 bitmap: 0..16
# A mirrored 2, 3, 4, 5, 7 or 9 is no longer that digit (and a mirrored 6 is no 9 either).
FLIPS_PRESERVE_LABELS = False


def load_digits(*, validation: str = "split") -> DataSplits:
    """Open the digits as float32 [1, 8, 8] images in [0, 1] (value / 16).

    Args:
        validation: "split" (train 1,259 / validation 179 / test 359), "test" (train on 1,438,
            validate on the 359 test images), or "none" (train on 1,438, no validation).
    """
    from sklearn import __version__ as sklearn_version
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.tensor(bunch.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / MAX_VALUE
    everything = ImageTensorDataset(images, torch.tensor(bunch.target, dtype=torch.int64))
    test_indices, rest = stratified_split(everything.labels, (0.2,))
    train_full = everything.subset(rest)
    train, val, test = arrange(
        validation,
        train_full,
        functools.partial(hold_out_stratified, fraction=0.125),
        everything.subset(test_indices),
        "digits",
    )
    # Normalization over the 1,438 training-and-validation images: the same in every mode.
    return DataSplits(
        name="digits",
        train=train,
        val=val,
        test=test,
        num_classes=10,
        classes=tuple(str(d) for d in range(10)),
        mean=(train_full.images.mean().item(),),
        std=(train_full.images.std().item(),),
        augment="digits",
        flips_preserve_labels=FLIPS_PRESERVE_LABELS,
        source=(
            f"sklearn.datasets.load_digits (scikit-learn {sklearn_version}), "
            f"stratified split seed {SPLIT_SEED}"
        ),
    )
