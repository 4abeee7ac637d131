"""CIFAR-10 and CIFAR-100 from the official archives (https://www.cs.toronto.edu/~kriz/cifar.html),
in both published layouts:

- the Python version, `cifar-10-batches-py/` (`data_batch_1`..`5`, `test_batch`, `batches.meta`)
  and `cifar-100-python/` (`train`, `test`, `meta`): pickled dicts with `b"data"` (a uint8 array,
  one row of 3,072 bytes per image: 1,024 red, then green, then blue, each row-major 32x32) and
  `b"labels"` (CIFAR-100: `b"fine_labels"` and `b"coarse_labels"`), read through
  `RestrictedUnpickler`;
- the binary version, `cifar-10-batches-bin/` (`data_batch_1.bin`..`5`, `test_batch.bin`,
  `batches.meta.txt`) and `cifar-100-binary/` (`train.bin`, `test.bin`, `fine_label_names.txt`):
  records of label byte(s) then the same 3,072 pixel bytes. CIFAR-100 records carry the coarse
  label, then the fine label.

CIFAR-100 is used with its 100 fine labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnzoo.data.errors import DataError
from cnnzoo.data.safe_pickle import load_pickle
from cnnzoo.data.splits import DataSplits, ImageTensorDataset, arrange, concat, hold_out_last

PIXELS = 3 * 32 * 32  # bytes of one image in both layouts
# Objects and animals keep their class in a mirror (the ResNet paper flips CIFAR, Sec. 4.2).
FLIPS_PRESERVE_LABELS = True


@dataclass(frozen=True)
class CifarFiles:
    """The file names of one CIFAR variant in both layouts."""

    name: str  # "cifar10"
    title: str  # "CIFAR-10"
    num_classes: int
    python_folder: str
    python_train: tuple[str, ...]
    python_test: str
    python_meta: str
    python_labels: bytes  # key of the labels in a batch dict
    python_names: bytes  # key of the class names in the meta dict
    binary_folder: str
    binary_train: tuple[str, ...]
    binary_test: str
    binary_meta: str  # text file, one class name a line
    label_bytes: int  # label bytes before each record's pixels; the last one is used
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def python_files(self) -> tuple[str, ...]:
        return (*self.python_train, self.python_test, self.python_meta)

    def binary_files(self) -> tuple[str, ...]:
        return (*self.binary_train, self.binary_test, self.binary_meta)


# Mean and standard deviation per channel of the 50,000 training images, in [0, 1] units (the
# values computed over the training set that the CIFAR training scripts commonly use).
CIFAR10 = CifarFiles(
    name="cifar10",
    title="CIFAR-10",
    num_classes=10,
    python_folder="cifar-10-batches-py",
    python_train=tuple(f"data_batch_{i}" for i in range(1, 6)),
    python_test="test_batch",
    python_meta="batches.meta",
    python_labels=b"labels",
    python_names=b"label_names",
    binary_folder="cifar-10-batches-bin",
    binary_train=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    binary_test="test_batch.bin",
    binary_meta="batches.meta.txt",
    label_bytes=1,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
)
CIFAR100 = CifarFiles(
    name="cifar100",
    title="CIFAR-100",
    num_classes=100,
    python_folder="cifar-100-python",
    python_train=("train",),
    python_test="test",
    python_meta="meta",
    python_labels=b"fine_labels",
    python_names=b"fine_label_names",
    binary_folder="cifar-100-binary",
    binary_train=("train.bin",),
    binary_test="test.bin",
    binary_meta="fine_label_names.txt",
    label_bytes=2,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
)
VARIANTS = {files.name: files for files in (CIFAR10, CIFAR100)}


def load_cifar(name: str, directory: str | Path, *, validation: str = "split") -> DataSplits:
    """Open CIFAR-10 or CIFAR-100 from an extracted official archive.

    Args:
        name: "cifar10" or "cifar100".
        directory: the archive's folder (e.g. `cifar-10-batches-py`) or the folder holding it.
        validation: "split" holds out the last 10% of the training set (the ResNet paper's 45k/5k
            split: the last 5,000 images of `data_batch_5`), "test" validates on the test set,
            "none" trains on all 50,000 images without validation. The test split is always
            the archive's test set.
    """
    files = VARIANTS[name]
    folder, layout = find_archive(files, Path(directory).expanduser())
    expected = files.python_files() if layout == "python" else files.binary_files()
    missing = [f for f in expected if not (folder / f).is_file()]
    if missing:
        raise DataError(
            f"{folder} is incomplete (an interrupted download or extraction?): missing "
            f"{', '.join(missing)}. Download and extract the {files.title} archive again."
        )
    read = read_python_batch if layout == "python" else read_binary_batch
    train_names = files.python_train if layout == "python" else files.binary_train
    test_name = files.python_test if layout == "python" else files.binary_test
    train_full = concat([read(files, folder / f) for f in train_names])
    test = read(files, folder / test_name)
    classes = (read_python_names if layout == "python" else read_text_names)(files, folder)
    train, val, test = arrange(validation, train_full, hold_out_last, test, str(folder))
    return DataSplits(
        name=files.name,
        train=train,
        val=val,
        test=test,
        num_classes=files.num_classes,
        classes=classes,
        mean=files.mean,
        std=files.std,
        augment="cifar",
        flips_preserve_labels=FLIPS_PRESERVE_LABELS,
        source=str(folder.resolve()),
    )


def find_archive(files: CifarFiles, directory: Path) -> tuple[Path, str]:
    """The extracted archive folder at or under `directory` and its layout, "python" or
    "binary"; the Python layout is preferred where both are present."""
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "does not exist"
        raise DataError(
            f"{directory} {what}. Give the folder of the extracted {files.title} archive "
            f"({files.python_folder}/ or {files.binary_folder}/) or the folder holding it, "
            f"e.g. --data {files.name}:~/data."
        )
    for layout, folder_name, names in (
        ("python", files.python_folder, files.python_files()),
        ("binary", files.binary_folder, files.binary_files()),
    ):
        if directory.name == folder_name or any((directory / f).is_file() for f in names):
            return directory, layout
        if (directory / folder_name).is_dir():
            return directory / folder_name, layout
    entries = sorted(p.name + "/" * p.is_dir() for p in directory.iterdir())
    archives = [name for name in entries if name.startswith("cifar") and name.endswith(".tar.gz")]
    if archives:
        hint = f"It holds {archives[0]}: extract it there first (tar -xzf {archives[0]})."
    elif not entries:
        hint = "The folder is empty."
    else:
        more = ", ..." if len(entries) > 5 else ""
        hint = f"It holds {', '.join(entries[:5])}{more}."
    raise DataError(
        f"no {files.title} data in {directory}: expected the extracted archive folder "
        f"{files.python_folder}/ or {files.binary_folder}/ (or its files). {hint} Download the "
        "archive from https://www.cs.toronto.edu/~kriz/cifar.html and extract it."
    )


def read_python_batch(files: CifarFiles, path: Path) -> ImageTensorDataset:
    """Images and labels of one pickled batch."""
    batch = load_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or files.python_labels not in batch:
        raise DataError(
            f"{path} is not a {files.title} batch: expected a dict with keys b'data' and "
            f"{files.python_labels!r}. Extract the file from the official archive again."
        )
    data = batch[b"data"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2):
        raise DataError(
            f"{path}: b'data' should be a uint8 array of shape (N, {PIXELS}); got "
            f"{type(data).__name__} {getattr(data, 'dtype', '')} "
            f"{getattr(data, 'shape', '')}. Extract the file from the official archive again."
        )
    labels = np.asarray(batch[files.python_labels])
    return _images_and_labels(files, path, data, labels)


def read_binary_batch(files: CifarFiles, path: Path) -> ImageTensorDataset:
    """Images and labels of one binary batch."""
    record = files.label_bytes + PIXELS
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % record:
        raise DataError(
            f"{path} is truncated or corrupt: {raw.size} bytes is not a whole number of "
            f"{record}-byte records ({files.label_bytes} label byte(s) + {PIXELS} pixel bytes). "
            f"Extract the file from the {files.title} binary archive again."
        )
    records = raw.reshape(-1, record)
    return _images_and_labels(
        files, path, records[:, files.label_bytes :], records[:, files.label_bytes - 1]
    )


def _images_and_labels(
    files: CifarFiles, path: Path, data: np.ndarray, labels: np.ndarray
) -> ImageTensorDataset:
    if data.ndim != 2 or data.shape[1] != PIXELS:
        raise DataError(
            f"{path}: images should be rows of {PIXELS} bytes (3x32x32); got an array of shape "
            f"{data.shape}. Extract the file from the official archive again."
        )
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{path}: expected {data.shape[0]} integer labels, one per image; got "
            f"{labels.dtype} of shape {labels.shape}. Extract the file from the archive again."
        )
    bad = np.nonzero((labels < 0) | (labels >= files.num_classes))[0]
    if bad.size:
        raise DataError(
            f"{path}: label {int(labels[bad[0]])} of image {int(bad[0])} is out of range "
            f"0..{files.num_classes - 1} ({bad.size} such labels). Is this a {files.title} "
            "file? Extract it from the official archive again."
        )
    images = torch.from_numpy(np.array(data, dtype=np.uint8).reshape(-1, 3, 32, 32))
    return ImageTensorDataset(images, torch.from_numpy(labels.astype(np.int64)))


def read_python_names(files: CifarFiles, folder: Path) -> tuple[str, ...]:
    path = folder / files.python_meta
    meta = load_pickle(path)
    names = meta.get(files.python_names) if isinstance(meta, dict) else None
    return _check_names(files, path, names)


def read_text_names(files: CifarFiles, folder: Path) -> tuple[str, ...]:
    path = folder / files.binary_meta
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return _check_names(files, path, [line.strip() for line in lines if line.strip()])


def _check_names(files: CifarFiles, path: Path, names: object) -> tuple[str, ...]:
    if not isinstance(names, list) or len(names) != files.num_classes:
        raise DataError(
            f"{path}: expected {files.num_classes} class names; got {names!r:.200}. Extract "
            "the file from the official archive again."
        )
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
