"""Writers of tiny data sets in the official on-disk formats, for the data tests, and a helper
that catches the error a spec gives."""

from __future__ import annotations

import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnzoo.data import DataError, open_dataset

CIFAR10_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


class _Global:
    """A module-level name written as a GLOBAL opcode (the unpickler resolves it, not us)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args: object) -> None:  # pickle requires reduce callables to be callable
        raise AssertionError("only written, never called")


class Python2Pickler(pickle._Pickler):
    """Writes pickles the way Python 2's cPickle wrote the CIFAR archives (protocol 2): strings
    and bytes as BINSTRING (they load as bytes under encoding="bytes"), arrays through
    numpy.core.multiarray._reconstruct, numpy.ndarray and numpy.dtype."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes | str) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("latin-1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    def save_global_name(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str
    dispatch[_Global] = save_global_name

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, np.ndarray):
            reconstruct = _Global("numpy.core.multiarray", "_reconstruct")
            return reconstruct, (_Global("numpy", "ndarray"), (0,), b"b"), obj.__reduce__()[2]
        if isinstance(obj, np.dtype):
            _, args, state = obj.__reduce__()
            return _Global("numpy", "dtype"), args, state
        return NotImplemented


def py2_pickle(obj: object) -> bytes:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


@dataclass
class Cifar:
    """What a writer wrote: images [N, 3, 32, 32] uint8 and labels, in file order."""

    folder: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]


def write_cifar(root: Path, variant: str, layout: str, per_batch: int = 4, seed: int = 0) -> Cifar:
    """A tiny CIFAR-10 (5 training batches) or CIFAR-100 (1 training file) archive folder under
    `root`, in the "python" or "binary" layout, with `per_batch` random images per file."""
    rng = np.random.default_rng(seed)
    cifar10 = variant == "cifar10"
    classes = CIFAR10_NAMES if cifar10 else tuple(f"fine_{i:02d}" for i in range(100))
    n_train_files = 5 if cifar10 else 1
    batches = []
    for _ in range(n_train_files + 1):
        images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, len(classes), per_batch)
        coarse = rng.integers(0, 20, per_batch)
        batches.append((images, labels, coarse))
    if layout == "python":
        folder = root / ("cifar-10-batches-py" if cifar10 else "cifar-100-python")
        names = (
            [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
            if cifar10
            else ["train", "test"]
        )
        folder.mkdir(parents=True)
        for name, (images, labels, coarse) in zip(names, batches, strict=True):
            batch = {
                b"batch_label": f"batch {name}".encode(),
                b"data": images.reshape(per_batch, -1),
                b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)],
            }
            if cifar10:
                batch[b"labels"] = labels.tolist()
            else:
                batch[b"fine_labels"] = labels.tolist()
                batch[b"coarse_labels"] = coarse.tolist()
            (folder / name).write_bytes(py2_pickle(batch))
        if cifar10:
            meta = {
                b"num_cases_per_batch": per_batch,
                b"label_names": list(classes),
                b"num_vis": 3072,
            }
            (folder / "batches.meta").write_bytes(py2_pickle(meta))
        else:
            meta = {
                b"fine_label_names": list(classes),
                b"coarse_label_names": [f"coarse_{i}" for i in range(20)],
            }
            (folder / "meta").write_bytes(py2_pickle(meta))
    else:
        folder = root / ("cifar-10-batches-bin" if cifar10 else "cifar-100-binary")
        names = (
            [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
            if cifar10
            else ["train.bin", "test.bin"]
        )
        folder.mkdir(parents=True)
        for name, (images, labels, coarse) in zip(names, batches, strict=True):
            label_bytes = [labels] if cifar10 else [coarse, labels]  # CIFAR-100: coarse, fine
            records = np.concatenate(
                [np.stack(label_bytes, 1).astype(np.uint8), images.reshape(per_batch, -1)], 1
            )
            (folder / name).write_bytes(records.tobytes())
        meta_name = "batches.meta.txt" if cifar10 else "fine_label_names.txt"
        (folder / meta_name).write_text("\n".join(classes) + "\n\n")
        if not cifar10:
            (folder / "coarse_label_names.txt").write_text(
                "\n".join(f"coarse_{i}" for i in range(20)) + "\n"
            )
    return Cifar(
        folder=folder,
        train_images=np.concatenate([b[0] for b in batches[:-1]]),
        train_labels=np.concatenate([b[1] for b in batches[:-1]]),
        test_images=batches[-1][0],
        test_labels=batches[-1][1],
        classes=classes,
    )


def write_image(path: Path, pixels: np.ndarray, mode: str | None = None) -> np.ndarray:
    """Save `pixels` (H, W) or (H, W, C) uint8 with Pillow (format from the suffix); return them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path)
    return pixels


def open_error(spec: str, **kwargs: object) -> str:
    """The message of the DataError that `open_dataset(spec, **kwargs)` raises."""
    with pytest.raises(DataError) as info:
        open_dataset(spec, **kwargs)
    return str(info.value)
