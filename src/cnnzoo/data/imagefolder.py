"""Image folders in the ImageNet layout: one subfolder per class, images decoded by Pillow.

Either `DIR/<class>/...` (a training set; a validation set is held out of it), or
`DIR/train/<class>/...` with `DIR/val/<class>/...` and/or `DIR/test/<class>/...`. Images are
found in class folders at any depth; hidden files and files whose suffix is not an image format
are skipped.

Decoding happens in `__getitem__`, so a DataLoader's worker processes do it in parallel. Each
image is converted to RGB (grayscale, palette and RGBA images alike) and brought to a fixed load
size so a batch stacks:

- training images: the shorter side scaled to 256/224 of the model's input size, then the
  center square (256x256 for a 224x224 model); the random-resized crop then runs on the batch
  (`cnnzoo.data.transforms`);
- evaluation images: the central 224/256 of the shorter side scaled to the input size, i.e. the
  standard "resize 256, center crop 224" (AlexNet, ResNet and torchvision evaluation).

Deviation: the training crop is drawn from that 256/224 center square, not from the whole
full-resolution image, so that the expensive part runs batched on tensors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from torch.utils.data import Dataset

from cnnzoo.data.errors import DataError
from cnnzoo.data.splits import DataSplits, arrange, hold_out_stratified

IMAGE_SUFFIXES = frozenset(
    {".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"}
)
# ImageNet's per-channel mean and std in [0, 1] units (torchvision's values), the usual
# normalization for ImageNet-style folders.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EVAL_CROP = 224 / 256  # the evaluation center crop's share of the resized shorter side
FLIPS_PRESERVE_LABELS = True  # photographs of objects (AlexNet's and later ImageNet recipes flip)


def load_image(path: str | Path, size: tuple[int, int], crop: float = 1.0) -> Tensor:
    """Decode an image file as a uint8 [3, H, W] RGB tensor of `size` = (H, W).

    The central `crop` share of the image (cut to the aspect ratio of `size`) is resized to
    `size` (bilinear). Grayscale, palette, CMYK and RGBA images are converted to RGB (alpha is
    dropped).

    Raises:
        DataError: the file cannot be read or decoded.
    """
    height, width = size
    try:
        with Image.open(path) as image:
            image.draft("RGB", (width, height))  # JPEG: decode at the smallest scale >= size
            image = ImageOps.fit(
                image.convert("RGB"),
                (width, height),
                method=Image.Resampling.BILINEAR,
                bleed=(1 - crop) / 2,
            )
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"cannot decode image {path}: {exc}. Replace or delete the file (check that it "
            "opens in an image viewer)."
        ) from exc
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()


class ImageFolderDataset(Dataset):
    """Image files with class labels, decoded on access by `load_image`.

    Args:
        samples: (path, label) pairs.
        size: (H, W) every image is brought to.
        crop: central share of the image kept (`load_image`).
    """

    def __init__(self, samples: list[tuple[str, int]], size: tuple[int, int], crop: float = 1.0):
        self.samples = samples
        self.size = size
        self.crop = crop
        self.labels = torch.tensor([label for _, label in samples], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        return load_image(path, self.size, self.crop), label

    def subset(self, indices: Tensor) -> ImageFolderDataset:
        """A new dataset holding the items at `indices`, in that order."""
        return ImageFolderDataset([self.samples[i] for i in indices.tolist()], self.size, self.crop)


def load_imagefolder(
    directory: str | Path,
    input_size: tuple[int, int, int] = (3, 224, 224),
    *,
    validation: str = "split",
) -> DataSplits:
    """Open an image-folder data set.

    Args:
        directory: the folder of class folders, or of `train/` (+ `val/`, `test/`).
        input_size: the model's (C, H, W); sets the load sizes (module docstring).
        validation: "split": validate on `val/` when both `val/` and `test/` exist, else on a
            stratified 10% held out of the training images (fixed seed); "test": validate on the
            test set; "none": no validation. The test set is `test/`, else `val/`, else none.
    """
    root = Path(directory).expanduser()
    _, height, width = input_size
    train_size = (round(height / EVAL_CROP), round(width / EVAL_CROP))
    train_root = root / "train" if (root / "train").is_dir() else root
    classes, samples = scan(train_root)
    train_full = ImageFolderDataset(samples, train_size)

    def evaluation_set(folder: Path) -> ImageFolderDataset | None:
        if not folder.is_dir():
            return None
        return ImageFolderDataset(scan(folder, classes)[1], (height, width), EVAL_CROP)

    val_folder = evaluation_set(root / "val") if train_root != root else None
    test = evaluation_set(root / "test") if train_root != root else None
    if val_folder is not None and test is None:
        val_folder, test = None, val_folder

    def hold_out(full: ImageFolderDataset) -> tuple[ImageFolderDataset, ImageFolderDataset]:
        if val_folder is not None:
            return full, val_folder
        # Held-out images are evaluation images: same files, evaluation load size and crop.
        train, val = hold_out_stratified(full)
        return train, ImageFolderDataset(val.samples, (height, width), EVAL_CROP)

    train, val, test = arrange(validation, train_full, hold_out, test, str(root))
    return DataSplits(
        name="imagefolder",
        train=train,
        val=val,
        test=test,
        num_classes=len(classes),
        classes=classes,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        augment="imagenet",
        flips_preserve_labels=FLIPS_PRESERVE_LABELS,
        source=str(root.resolve()),
    )


def scan(
    folder: Path, classes: tuple[str, ...] | None = None
) -> tuple[tuple[str, ...], list[tuple[str, int]]]:
    """The class names and (path, label) pairs of a folder of class folders.

    Args:
        classes: the training set's classes, which `folder`'s must be among (a validation or
            test folder may lack some); None to take them from `folder`.
    """
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(
            f"{folder} {what}. Give a folder holding one subfolder of images per class "
            "(or train/ and val/ folders that do), e.g. --data imagefolder:~/data/flowers."
        )
    found = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not _hidden(e.name))
    if not found:
        loose = [p.name for p in folder.iterdir() if _is_image(p.name)]
        what = f"holds images ({loose[0]}, ...) but no class folders" if loose else "is empty"
        raise DataError(
            f"{folder} {what}. An image folder needs one subfolder per class with that class's "
            "images in it: DIR/<class name>/<image>."
        )
    if classes is None:
        classes = tuple(found)
    unknown = [name for name in found if name not in classes]
    if unknown:
        raise DataError(
            f"{folder} has class folders that the training set lacks: {', '.join(unknown)}. "
            "Every evaluation class needs training images: add a folder of that name to the "
            "training set, or remove it here."
        )
    samples: list[tuple[str, int]] = []
    empty = []
    for name in found:
        files = _images_under(folder / name)
        if not files:
            empty.append(name)
        samples.extend((path, classes.index(name)) for path in files)
    if empty:
        raise DataError(
            f"{folder}: class folder(s) {', '.join(empty)} hold no images (suffixes "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}). Add images or remove the folder(s)."
        )
    return classes, samples


def _images_under(folder: Path) -> list[str]:
    paths = []
    for parent, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        paths.extend(os.path.join(parent, f) for f in sorted(files) if _is_image(f))
    return paths


def _is_image(name: str) -> bool:
    return not _hidden(name) and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _hidden(name: str) -> bool:
    return name.startswith(".")
