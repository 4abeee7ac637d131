"""Batched transforms: augmentations (shapes, ranges, determinism, geometry), channel and size
adaptation, normalization."""

from __future__ import annotations

import pytest
import torch

from cnnzoo.data import DataError, DataSplits, make_transform, open_dataset
from cnnzoo.data.datasets import flips_preserve_labels
from cnnzoo.data.transforms import (
    LUMA,
    PCA_EIGVAL,
    PCA_EIGVEC,
    fit,
    pca_lighting,
    random_crop,
    random_flip,
    random_resized_crop,
)
from cnnzoo.registry import get_spec
from cnnzoo.train.recipes import resolve_config

from .writers import write_cifar


def splits_of(channels: int, augment: str, mean: float = 0.0, std: float = 1.0) -> DataSplits:
    """Data set facts only; mean 0 / std 1 leaves the transform's output in [0, 1] units."""
    return DataSplits(
        name="test", train=None, val=None, test=None, num_classes=2, classes=("a", "b"),
        mean=(mean,) * channels, std=(std,) * channels, augment=augment, source="test",
    )  # fmt: skip


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int, channels: int = 3, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=gen(9))


@pytest.mark.parametrize(
    ("channels", "augment", "native", "model"),
    [
        (3, "cifar", 32, (3, 32, 32)),
        (1, "digits", 8, (3, 32, 32)),
        (3, "imagenet", 36, (3, 32, 32)),
        (3, "none", 32, (1, 24, 24)),
    ],
)
def test_shape_range_and_determinism(channels, augment, native, model):
    transform = make_transform(splits_of(channels, augment), model, train=True)
    batch = images(16, channels, native)
    out = transform(batch, gen(1))
    assert out.dtype == torch.float32 and out.shape == (16, *model)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, transform(batch, gen(1)))
    if augment != "none":
        assert not torch.equal(out, transform(batch, gen(2)))


def test_uint8_and_float_input_agree():
    transform = make_transform(splits_of(3, "cifar", 0.5, 0.25), (3, 32, 32), train=True)
    batch = images(4)
    torch.testing.assert_close(transform(batch, gen()), transform(batch.float() / 255, gen()))


def test_flip_mirrors_about_half():
    x = torch.rand(64, 3, 5, 7, generator=gen())
    out = random_flip(x, gen(3))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all() and 16 < mirrored.sum() < 48


@pytest.mark.parametrize("padding", [4, 1])
def test_crop_is_a_window_of_the_padded_image(padding):
    x = torch.rand(32, 3, 8, 8, generator=gen()) + 1  # no pixel equals the zero padding
    out = random_crop(x, padding, gen(4))
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    offsets = set()
    for image, source in zip(out, padded, strict=True):
        matches = [
            (dy, dx)
            for dy in range(2 * padding + 1)
            for dx in range(2 * padding + 1)
            if torch.equal(image, source[:, dy : dy + 8, dx : dx + 8])
        ]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > (4 if padding == 1 else 12)  # the shifts vary over the whole pad


def test_cifar_augmentation_translates_by_at_most_four_pixels():
    transform = make_transform(splits_of(3, "cifar"), (3, 32, 32), train=True)
    x = images(8)
    out = transform(x, gen(5))
    padded = torch.nn.functional.pad(x.float() / 255, (4,) * 4)
    for image, source in zip(out, padded, strict=True):
        windows = [source[:, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(image, w) or torch.equal(image, w.flip(-1)) for w in windows)


def test_resized_crop_full_scale_is_identity_or_mirror():
    x = torch.rand(16, 3, 12, 12, generator=gen())
    out = random_resized_crop(x, (12, 12), scale=(1, 1), ratio=(1, 1), generator=gen(6))
    torch.testing.assert_close(out, x)


def test_resized_crop_cuts_a_box_of_the_asked_area():
    x = torch.rand(16, 3, 16, 16, generator=gen())
    out = random_resized_crop(x, (8, 8), scale=(0.25, 0.25), ratio=(1, 1), generator=gen(7))
    lefts = set()
    for image, source in zip(out, x, strict=True):
        found = [
            (top, left)
            for top in range(9)
            for left in range(9)
            if torch.allclose(image, source[:, top : top + 8, left : left + 8], atol=1e-6)
        ]
        assert len(found) == 1
        lefts.add(found[0])
    assert len(lefts) > 8


def test_resized_crop_falls_back_to_a_center_crop():
    # A 4:1 strip admits no square box of its whole area: torchvision's fallback is
    # the largest center crop within the ratio range, here 16x16 from the middle.
    x = torch.rand(2, 3, 16, 64, generator=gen())
    out = random_resized_crop(x, (16, 16), scale=(1, 1), ratio=(1, 1), generator=gen())
    torch.testing.assert_close(out, x[..., 24:40])


def test_pca_lighting_follows_the_eigenvectors():
    x = torch.full((4000, 3, 2, 2), 0.5)
    out = pca_lighting(x, gen(8))
    shift = out - x
    assert torch.equal(shift, shift[..., :1, :1].expand_as(shift))  # one colour shift per image
    # Recover alpha from shift = eigvec @ (alpha * eigval): it must be N(0, 0.1) per component.
    eigvec, eigval = torch.tensor(PCA_EIGVEC), torch.tensor(PCA_EIGVAL)
    alpha = torch.linalg.solve(eigvec, shift[:, :, 0, 0].T).T / eigval
    torch.testing.assert_close(alpha.std(0), torch.full((3,), 0.1), atol=0.006, rtol=0)
    torch.testing.assert_close(alpha.mean(0), torch.zeros(3), atol=0.006, rtol=0)


def test_pca_option_only_in_training_and_for_rgb():
    splits = splits_of(3, "imagenet")
    assert make_transform(splits, (3, 8, 8), train=True, pca_color=True).pca_color
    assert not make_transform(splits, (3, 8, 8), train=False, pca_color=True).pca_color
    with pytest.raises(DataError, match="needs RGB"):
        make_transform(splits_of(1, "digits"), (3, 8, 8), train=True, pca_color=True)


def test_gray_to_rgb_repeats_and_upsamples():
    transform = make_transform(splits_of(1, "digits", 0.25, 0.5), (3, 32, 32), train=False)
    assert transform.mean == (0.25,) * 3 and transform.std == (0.5,) * 3
    x = torch.rand(4, 1, 8, 8, generator=gen())
    out = transform(x)
    assert out.shape == (4, 3, 32, 32)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    constant = transform(torch.full((1, 1, 8, 8), 0.75))
    torch.testing.assert_close(constant, torch.full((1, 3, 32, 32), 1.0))


def test_rgb_to_gray_is_luma():
    splits = splits_of(3, "cifar")
    splits = DataSplits(**{**splits.__dict__, "mean": (0.2, 0.4, 0.6), "std": (0.1, 0.2, 0.3)})
    transform = make_transform(splits, (1, 32, 32), train=False)
    rgb = torch.tensor([0.9, 0.5, 0.1])
    x = rgb[None, :, None, None].expand(2, 3, 32, 32)
    mean = sum(w * m for w, m in zip(LUMA, (0.2, 0.4, 0.6), strict=True))
    std = sum(w * s for w, s in zip(LUMA, (0.1, 0.2, 0.3), strict=True))
    expected = (sum(w * v for w, v in zip(LUMA, rgb.tolist(), strict=True)) - mean) / std
    torch.testing.assert_close(transform(x), torch.full((2, 1, 32, 32), expected))


def test_normalization_centres_the_data():
    x = images(64).float() / 255 * 0.5 + 0.2
    mean, std = x.mean().item(), x.std().item()
    transform = make_transform(splits_of(3, "cifar", mean, std), (3, 32, 32), train=False)
    out = transform(x)
    assert abs(out.mean().item()) < 1e-4 and abs(out.std().item() - 1) < 1e-3


def test_evaluation_of_imagenet_style_data_center_crops():
    transform = make_transform(splits_of(3, "imagenet"), (3, 14, 14), train=False)
    x = torch.rand(2, 3, 16, 16, generator=gen())
    assert torch.equal(transform(x), x[..., 1:15, 1:15])  # 16 = 14 * 256/224 load size
    assert torch.equal(transform(x[..., 1:15, 1:15]), x[..., 1:15, 1:15])  # evaluation images


def test_evaluation_transform_has_no_randomness():
    transform = make_transform(splits_of(3, "cifar"), (3, 32, 32), train=False)
    x = images(4)
    assert transform.augment == "none"
    assert torch.equal(transform(x, gen(1)), transform(x, gen(2)))
    assert torch.equal(transform(x), x.float() / 255)


def test_bad_arguments():
    with pytest.raises(DataError, match="unknown augmentation 'autoaugment'"):
        make_transform(splits_of(3, "cifar"), (3, 32, 32), train=True, augment="autoaugment")
    with pytest.raises(DataError, match="in_chans"):
        make_transform(splits_of(3, "cifar"), (2, 32, 32), train=True)
    transform = make_transform(splits_of(3, "cifar"), (3, 32, 32), train=True)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        transform(images(2, channels=1))


# ---- augmentation at the model's input scale; flips only where labels survive them ----------


def _windows(source: torch.Tensor, padding: int, size: int) -> list[torch.Tensor]:
    padded = torch.nn.functional.pad(source, (padding,) * 4)
    span = range(2 * padding + 1)
    return [padded[:, dy : dy + size, dx : dx + size] for dy in span for dx in span]


def test_digits_get_the_papers_relative_shift_on_the_model_input():
    """The ResNet recipe's crop on an 8x8 digit fed to a 32x32 network: the digit is resized to
    32x32 first, then shifted by up to 4 of those pixels (an eighth), never mirrored."""
    splits = open_dataset("digits")
    assert not splits.flips_preserve_labels
    # mean 0, std 1: the output stays in [0, 1] units, where the padding is 0
    splits = DataSplits(**{**splits.__dict__, "mean": (0.0,), "std": (1.0,)})
    transform = make_transform(splits, (3, 32, 32), train=True, augment="cifar")
    assert (transform.padding, transform.flip) == (4, False)
    digits = torch.stack([splits.train[i][0] for i in range(24)])
    out = transform(digits, gen(11))
    offsets = set()
    for image, source in zip(out, fit(digits, (32, 32)).expand(-1, 3, -1, -1), strict=True):
        found = [i for i, w in enumerate(_windows(source, 4, 32)) if torch.equal(image, w)]
        assert found, "not a window of the resized digit"
        offsets.add(found[0])
    assert len(offsets) > 8  # shifts vary over the 9x9 range of offsets
    assert transform.describe().startswith("cifar: random translation by up to 4 px of the 3x32x32")
    assert "no horizontal flips (the data set's labels do not survive a mirror)" in (
        transform.describe()
    )


def test_cifar_format_data_is_flipped(tmp_path):
    data = write_cifar(tmp_path, "cifar10", "python", per_batch=8)
    splits = open_dataset(f"cifar10:{data.folder}", validation="test")
    assert splits.flips_preserve_labels
    splits = DataSplits(**{**splits.__dict__, "mean": (0.0,) * 3, "std": (1.0,) * 3})
    transform = make_transform(splits, (3, 32, 32), train=True)
    assert (transform.augment, transform.padding, transform.flip) == ("cifar", 4, True)
    x = torch.stack([splits.train[i][0] for i in range(len(splits.train))])
    out = transform(x, gen(12))
    mirrored = 0
    for image, source in zip(out, x.float() / 255, strict=True):
        windows = _windows(source, 4, 32)
        straight = any(torch.equal(image, w) for w in windows)
        flipped = any(torch.equal(image, w.flip(-1)) for w in windows)
        assert straight or flipped
        mirrored += flipped and not straight
    assert 5 < mirrored < 35  # about half of the 40 images
    assert transform.describe().endswith("; random horizontal flips")


def test_digits_own_augmentation_is_unchanged():
    splits = open_dataset("digits")
    transform = make_transform(splits, (1, 32, 32), train=True)
    assert (transform.augment, transform.padding, transform.flip) == ("digits", 1, False)


def test_imagenet_style_flips_follow_the_data_set():
    keeps = DataSplits(**{**splits_of(3, "imagenet").__dict__, "flips_preserve_labels": True})
    assert make_transform(keeps, (3, 8, 8), train=True).flip
    assert not make_transform(splits_of(3, "imagenet"), (3, 8, 8), train=True).flip
    assert not make_transform(keeps, (3, 8, 8), train=False).flip


def test_the_config_records_the_augmentation_the_loop_applies():
    config = resolve_config("resnet20_cifar", data="digits", recipe="resnet-cifar")
    spec = get_spec("resnet20_cifar")
    applied = make_transform(open_dataset("digits"), spec.input_size, train=True,
                             augment=config.augment)  # fmt: skip
    assert config.augment_applied == applied.describe()
    assert flips_preserve_labels("digits") is open_dataset("digits").flips_preserve_labels
    assert flips_preserve_labels("cifar10:/nowhere") and not flips_preserve_labels("synthetic")
