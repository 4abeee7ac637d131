"""Batched tensor transforms: the model-facing preprocessing and the training augmentations.

A `BatchTransform` takes a whole batch ([N, C, H, W], uint8 or float in [0, 1]) on any device and
runs, in order:

1. conversion to float32 in [0, 1];
2. "digits" only: a translation at the data's own 8x8 scale;
3. fitting to the model's H x W (bilinear resize; for ImageNet-style folders the training
   images' 256/224 margin is center-cropped away first, as in evaluation), or for "imagenet" the
   random-resized crop to it;
4. "cifar": the ResNet paper's translation, defined on the model's input: 4 pixels of padding
   and a random crop on a 32x32 input, i.e. a shift of up to an eighth of the input whatever
   the data's own size (an 8x8 digit upsampled to 32x32 moves as far, relative to its size, as
   a CIFAR image);
5. horizontal flips, where the augmentation asks for them ("cifar", "imagenet") and the data
   set declares that its labels survive a mirror (`DataSplits.flips_preserve_labels`: CIFAR and
   image folders yes, digits no);
6. AlexNet's PCA colour augmentation, if asked for;
7. channel adaptation to the model (1 -> 3 by repeating, 3 -> 1 by BT.601 luma);
8. normalization with the data set's mean and std (adapted to the channel count).

Random numbers come from the given `torch.Generator` (the default CPU generator if None): the
same generator state gives the same output, on any device. Crops, flips and colour shifts are
drawn on the generator's device and moved to the images' device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from cnnzoo.data.errors import DataError
from cnnzoo.data.imagefolder import EVAL_CROP
from cnnzoo.data.splits import DataSplits

AUGMENTATIONS = ("cifar", "imagenet", "digits", "none")
ASKS_FOR_FLIPS = frozenset({"cifar", "imagenet"})
# ResNet paper, Section 4.2: 4 pixels padded on each side of the 32x32 input, a random 32x32
# crop: a translation of up to 4/32 = 1/8 of the model's input side.
CIFAR_TRANSLATION = 4 / 32
DIGITS_PADDING = 1  # +-1 pixel translation at the digits' 8x8 scale (also 1/8 of the image)
CROP_SCALE = (0.08, 1.0)  # random-resized crop: share of the image area (Inception / GoogLeNet)
CROP_RATIO = (3 / 4, 4 / 3)  # and aspect ratio range, as in torchvision's RandomResizedCrop
# AlexNet's PCA colour augmentation (Krizhevsky et al. 2012, Section 4.1): add
# eigvec @ (alpha * eigval) to every pixel, alpha ~ N(0, 0.1) per image. ImageNet's RGB
# eigenvalues and eigenvectors (columns) in [0, 1] units, from fb.resnet.torch
# (datasets/imagenet.lua, `pca`).
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
PCA_ALPHA_STD = 0.1
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 RGB -> gray weights, as Pillow's convert("L")


@dataclass(frozen=True)
class BatchTransform:
    """Images [N, in_channels, h, w] (uint8, or float in [0, 1]) -> float32 [N, *size],
    augmented and normalized; see the module docstring for the steps.

    Attributes:
        size: the model's input (C, H, W).
        in_channels: channels of the data set's images.
        augment: augmentation applied ("none" for evaluation).
        padding: pixels of the random translation, at the stage `augment` applies it.
        flip: whether random horizontal flips are applied.
        pca_color: whether AlexNet's PCA colour augmentation is applied.
        center_crop: crop a larger image's central 224/256 before resizing (ImageNet-style data).
        mean, std: normalization per output channel, in [0, 1] units.
    """

    size: tuple[int, int, int]
    in_channels: int
    augment: str
    padding: int
    flip: bool
    pca_color: bool
    center_crop: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"expected a batch [N, {self.in_channels}, H, W]; got {tuple(images.shape)}"
            )
        channels, height, width = self.size
        x = to_float(images)
        if self.augment == "digits":
            x = random_crop(x, self.padding, generator)
        if self.augment == "imagenet":
            x = random_resized_crop(x, (height, width), generator=generator)
        else:
            x = fit(x, (height, width), center_crop=self.center_crop)
        if self.augment == "cifar":
            x = random_crop(x, self.padding, generator)
        if self.flip:
            x = random_flip(x, generator)
        if self.pca_color:
            x = pca_lighting(x, generator)
        return normalize(adapt_channels(x, channels), self.mean, self.std)

    def describe(self) -> str:
        """The augmentation in words, as config.json records it."""
        return describe_augmentation(self.augment, self.size, self.flip, self.pca_color)


def translation_padding(augment: str, input_size: tuple[int, int, int]) -> int:
    """Pixels of random translation `augment` applies: for "cifar" an eighth of the model's
    input side (4 on 32x32), for "digits" 1 pixel on the 8x8 digits, else 0."""
    if augment == "cifar":
        return round(min(input_size[1:]) * CIFAR_TRANSLATION)
    return DIGITS_PADDING if augment == "digits" else 0


def applies_flips(augment: str, flips_preserve_labels: bool) -> bool:
    """Flips are used where the augmentation asks for them and the data's labels survive them."""
    return augment in ASKS_FOR_FLIPS and flips_preserve_labels


def describe_augmentation(
    augment: str,
    input_size: tuple[int, int, int],
    flip: bool,
    pca_color: bool = False,
) -> str:
    """One line saying what `augment` does to a model of `input_size`, e.g. "cifar: random
    translation by up to 4 px of the 3x32x32 model input (1/8 of its side, zero padding); no
    horizontal flips (the data set's labels do not survive a mirror)".

    `flip` says whether flips are applied; an augmentation that asks for them applies none only
    on data whose labels do not survive a mirror (`applies_flips`).
    """
    shape = "x".join(map(str, input_size))
    padding = translation_padding(augment, input_size)
    parts = {
        "none": "no augmentation",
        "cifar": f"random translation by up to {padding} px of the {shape} model input "
        f"(1/{round(min(input_size[1:]) / padding) if padding else 0} of its side, zero padding)",
        "digits": f"random translation by up to {padding} px of the data's own images "
        f"(1/8 of an 8x8 digit, zero padding), before resizing to the {shape} input",
        "imagenet": f"random-resized crop to the {shape} input (area {CROP_SCALE[0]:g}-"
        f"{CROP_SCALE[1]:g}, aspect {CROP_RATIO[0]:.2f}-{CROP_RATIO[1]:.2f})",
    }
    words = [f"{augment}: {parts[augment]}"]
    if flip:
        words.append("random horizontal flips")
    elif augment in ASKS_FOR_FLIPS:
        words.append("no horizontal flips (the data set's labels do not survive a mirror)")
    if pca_color:
        words.append("PCA colour")
    return "; ".join(words)


def make_transform(
    splits: DataSplits,
    input_size: tuple[int, int, int],
    *,
    train: bool,
    augment: str | None = None,
    pca_color: bool = False,
) -> BatchTransform:
    """The batch transform that feeds `splits`' images to a model of `input_size` (C, H, W).

    Args:
        train: apply the training augmentation; False gives the deterministic evaluation
            transform (no augmentation, no PCA colour).
        augment: the augmentation, one of `AUGMENTATIONS`; None takes `splits.augment`. Its
            flips apply only if `splits.flips_preserve_labels`.
        pca_color: add AlexNet's PCA colour augmentation (RGB data only) when training.
    """
    kind = splits.augment if augment is None else augment
    if kind not in AUGMENTATIONS:
        raise DataError(f"unknown augmentation {kind!r}; choose one of {', '.join(AUGMENTATIONS)}")
    if pca_color and splits.channels != 3:
        raise DataError(
            f"PCA colour augmentation needs RGB images; {splits.name} has {splits.channels} "
            "channel(s). Leave pca_color off for it."
        )
    channels = input_size[0]
    applied = kind if train else "none"
    return BatchTransform(
        size=(channels, input_size[1], input_size[2]),
        in_channels=splits.channels,
        augment=applied,
        padding=translation_padding(applied, input_size),
        flip=applies_flips(applied, splits.flips_preserve_labels),
        pca_color=pca_color and train,
        center_crop=splits.augment == "imagenet",
        mean=adapt_stats(splits.mean, channels, splits.name),
        std=adapt_stats(splits.std, channels, splits.name),
    )


def to_float(images: Tensor) -> Tensor:
    """uint8 0..255 -> float32 0..1; floating point images are taken to be in [0, 1] already."""
    if images.dtype == torch.uint8:
        return images.float().div_(255)
    if images.is_floating_point():
        return images.float()
    raise ValueError(f"images must be uint8 or floating point; got {images.dtype}")


def random_crop(x: Tensor, padding: int, generator: torch.Generator | None = None) -> Tensor:
    """Zero-pad each side by `padding` and cut a random window of the original size from each
    image (a random translation by up to `padding` pixels)."""
    n, _, height, width = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    offsets = torch.randint(
        0, 2 * padding + 1, (n, 2), generator=generator, device=_device(generator)
    ).to(x.device)
    rows = offsets[:, :1] + torch.arange(height, device=x.device)  # [N, H]
    cols = offsets[:, 1:] + torch.arange(width, device=x.device)  # [N, W]
    batch = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indices around a slice put their dimensions first: [N, H, W, C].
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def random_flip(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=_device(generator)) < 0.5
    return torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)


def random_resized_crop(
    x: Tensor,
    size: tuple[int, int],
    scale: tuple[float, float] = CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
    generator: torch.Generator | None = None,
    attempts: int = 10,
) -> Tensor:
    """Cut a random box from each image and resize it to `size` (bilinear).

    The box is drawn as in torchvision's RandomResizedCrop: area a share in `scale` of the
    image, aspect ratio log-uniform in `ratio`, up to `attempts` tries to fit it in the image,
    else the largest center crop within `ratio`. All boxes are sampled at once and applied with
    one `grid_sample` (without antialiasing, unlike torchvision's tensor path).
    """
    n, channels, height, width = x.shape
    draws = torch.rand(n, attempts, 4, generator=generator, device=_device(generator)).double()
    area = height * width * (scale[0] + (scale[1] - scale[0]) * draws[..., 0])
    low, high = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(low + (high - low) * draws[..., 1])
    box_w = torch.round(torch.sqrt(area * aspect))
    box_h = torch.round(torch.sqrt(area / aspect))
    fits = (box_w > 0) & (box_h > 0) & (box_w <= width) & (box_h <= height)
    first = fits.int().argmax(dim=1, keepdim=True)  # index of the first box that fits

    def pick(t: Tensor) -> Tensor:
        return t.gather(1, first).squeeze(1)

    image_ratio = width / height
    if image_ratio < ratio[0]:
        fallback = (width, round(width / ratio[0]))
    elif image_ratio > ratio[1]:
        fallback = (round(height * ratio[1]), height)
    else:
        fallback = (width, height)
    found = fits.any(dim=1)
    box_w = torch.where(found, pick(box_w), fallback[0])
    box_h = torch.where(found, pick(box_h), fallback[1])
    left = torch.where(
        found, torch.floor(pick(draws[..., 2]) * (width - box_w + 1)), (width - box_w) // 2
    )
    top = torch.where(
        found, torch.floor(pick(draws[..., 3]) * (height - box_h + 1)), (height - box_h) // 2
    )
    # Map the output's [-1, 1] square onto the box, in grid_sample's align_corners=False units.
    theta = torch.zeros(n, 2, 3, dtype=torch.float64, device=draws.device)
    theta[:, 0, 0] = box_w / width
    theta[:, 0, 2] = (2 * left + box_w) / width - 1
    theta[:, 1, 1] = box_h / height
    theta[:, 1, 2] = (2 * top + box_h) / height - 1
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, [n, channels, *size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def pca_lighting(
    x: Tensor, generator: torch.Generator | None = None, alpha_std: float = PCA_ALPHA_STD
) -> Tensor:
    """AlexNet's PCA colour augmentation on RGB images in [0, 1] units: add
    `PCA_EIGVEC @ (alpha * PCA_EIGVAL)`, alpha ~ N(0, alpha_std) per image, to every pixel."""
    alpha = torch.randn(x.shape[0], 3, generator=generator, device=_device(generator))
    eigval = torch.tensor(PCA_EIGVAL, device=alpha.device)
    eigvec = torch.tensor(PCA_EIGVEC, device=alpha.device)
    shift = (alpha * alpha_std * eigval) @ eigvec.T  # [N, 3]
    return x + shift.to(device=x.device, dtype=x.dtype)[:, :, None, None]


def fit(x: Tensor, size: tuple[int, int], *, center_crop: bool = False) -> Tensor:
    """Bring images to `size` (H, W) by bilinear resizing. With `center_crop`, an image larger
    than `size` first loses its border outside the central 224/256 (the evaluation crop)."""
    height, width = x.shape[-2:]
    if (height, width) == tuple(size):
        return x
    if center_crop and height >= size[0] and width >= size[1]:
        crop_h, crop_w = round(height * EVAL_CROP), round(width * EVAL_CROP)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        x = x[..., top : top + crop_h, left : left + crop_w]
        if (crop_h, crop_w) == tuple(size):
            return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def adapt_channels(x: Tensor, channels: int) -> Tensor:
    """1 -> `channels` by repeating the gray channel, 3 -> 1 by BT.601 luma."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1)
    if x.shape[1] == 3 and channels == 1:
        return (x * torch.tensor(LUMA, dtype=x.dtype, device=x.device)[:, None, None]).sum(
            1, keepdim=True
        )
    raise DataError(f"cannot adapt {x.shape[1]}-channel images to {channels} channels")


def adapt_stats(values: tuple[float, ...], channels: int, name: str) -> tuple[float, ...]:
    """Per-channel mean (or std) of the data after `adapt_channels`. The luma std is the
    weighted mean of the channel stds, exact for fully correlated channels (close for photos)."""
    if len(values) == channels:
        return tuple(values)
    if len(values) == 1:
        return tuple(values) * channels
    if len(values) == 3 and channels == 1:
        return (sum(w * v for w, v in zip(LUMA, values, strict=True)),)
    raise DataError(
        f"cannot feed {name}'s {len(values)}-channel images to a {channels}-channel model; "
        "create the model with in_chans=1 or 3"
    )


def normalize(x: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """(x - mean) / std per channel."""
    mean_t = torch.tensor(mean, dtype=x.dtype, device=x.device)[:, None, None]
    std_t = torch.tensor(std, dtype=x.dtype, device=x.device)[:, None, None]
    return (x - mean_t) / std_t


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")
