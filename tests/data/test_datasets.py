"""open_dataset: the digits split, synthetic data, and spec errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from cnnzoo.data import make_transform, open_dataset

from .writers import open_error, write_image


@pytest.fixture(scope="module")
def digits():
    return open_dataset("digits")


def rows(dataset) -> set[bytes]:
    return {image.numpy().tobytes() for image in dataset.images}


def test_digits_split_is_fixed_stratified_and_disjoint(digits):
    assert digits.name == "digits" and digits.classes == tuple("0123456789")
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1259, 179, 359)
    train, val, test = rows(digits.train), rows(digits.val), rows(digits.test)
    assert len(train | val | test) == 1797  # disjoint, and together all the images
    for split, share in ((digits.train, 0.7), (digits.val, 0.1), (digits.test, 0.2)):
        counts = torch.bincount(split.labels, minlength=10).float()
        totals = torch.bincount(torch.from_numpy(load_digits().target), minlength=10)
        assert (counts - share * totals).abs().max() <= 1  # stratified: rounded per class
    other_seed = open_dataset("digits", seed=123)
    assert torch.equal(other_seed.test.images, digits.test.images)
    assert torch.equal(other_seed.val.labels, digits.val.labels)


def test_digits_images_are_the_real_ones_scaled_to_unit_range(digits):
    image, label = digits.train[0]
    assert image.dtype == torch.float32 and image.shape == (1, 8, 8) and isinstance(label, int)
    bunch = load_digits()
    index = {row.tobytes(): i for i, row in enumerate((bunch.data / 16).astype(np.float32))}
    for split in (digits.train, digits.val, digits.test):
        found = [index[image.flatten().numpy().tobytes()] for image in split.images]
        assert split.labels.tolist() == bunch.target[found].tolist()
    mean, std = digits.mean[0], digits.std[0]
    assert 0.25 < mean < 0.35 and 0.3 < std < 0.45 and digits.augment == "digits"
    assert "load_digits" in digits.source


def test_digits_validation_modes(digits):
    on_test = open_dataset("digits", validation="test")
    assert len(on_test.train) == 1438 and on_test.val is on_test.test
    assert rows(on_test.train) == rows(digits.train) | rows(digits.val)
    without = open_dataset("digits", validation="none")
    assert without.val is None and len(without.test) == 359


def test_digits_feed_any_model(digits):
    transform = make_transform(digits, (3, 224, 224), train=True)
    batch = torch.stack([digits.train[i][0] for i in range(4)])
    assert transform(batch, torch.Generator().manual_seed(0)).shape == (4, 3, 224, 224)


def test_synthetic_is_deterministic_from_the_seed():
    splits = open_dataset("synthetic:40", input_size=(3, 10, 12), seed=3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (40, 5, 5)
    image, label = splits.train[7]
    assert image.dtype == torch.uint8 and image.shape == (3, 10, 12) and 0 <= label < 10
    again = open_dataset("synthetic:40", input_size=(3, 10, 12), seed=3)
    assert torch.equal(again.train[7][0], image) and again.train[7][1] == label
    other = open_dataset("synthetic:40", input_size=(3, 10, 12), seed=4)
    assert not torch.equal(other.train[7][0], image)
    assert not torch.equal(splits.val[0][0], splits.train[0][0])
    assert not torch.equal(splits.val[0][0], splits.test[0][0])
    assert len({splits.train[i][1] for i in range(40)}) > 3
    assert len(open_dataset("synthetic", input_size=(1, 4, 4)).train) == 1024
    assert splits.mean == (0.5,) * 3 and splits.augment == "none"


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("cifar", {}, "unknown data set 'cifar' in data spec 'cifar'. Did you mean: cifar10?"),
        ("imagenet:/data", {}, "Did you mean: imagefolder?"),
        ("mnist", {}, "Valid forms: digits, cifar10:DIR, cifar100:DIR, imagefolder:DIR"),
        ("cifar100", {}, "cifar100 needs the data's folder: 'cifar100:DIR'"),
        ("digits:/tmp", {}, "digits takes no folder"),
        ("synthetic", {}, "needs the model's input shape: pass input_size"),
        ("synthetic:many", {"input_size": (3, 8, 8)}, "must be a positive whole number"),
        ("digits", {"validation": "holdout"}, "unknown validation mode 'holdout'"),
    ],
)
def test_spec_errors(spec, kwargs, message):
    assert message in open_error(spec, **kwargs)


def test_validation_on_a_missing_test_set(tmp_path):
    write_image(tmp_path / "cat" / "a.png", np.zeros((4, 4, 3), np.uint8))
    assert "has no test set to validate on" in open_error(
        f"imagefolder:{tmp_path}", validation="test"
    )
