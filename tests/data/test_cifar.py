"""CIFAR-10/100 in both published layouts: round trip, splits, and every error's message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnzoo.data import open_dataset

from .writers import open_error, py2_pickle, write_cifar

FORMATS = [(v, layout) for v in ("cifar10", "cifar100") for layout in ("python", "binary")]


@pytest.mark.parametrize(("variant", "layout"), FORMATS)
@pytest.mark.parametrize("point_at", ["archive folder", "parent"])
def test_round_trip_is_pixel_exact(tmp_path, variant, layout, point_at):
    written = write_cifar(tmp_path, variant, layout)
    directory = written.folder if point_at == "archive folder" else tmp_path
    splits = open_dataset(f"{variant}:{directory}", validation="none")

    assert splits.name == variant
    assert splits.num_classes == (10 if variant == "cifar10" else 100)
    assert splits.classes == written.classes
    assert splits.augment == "cifar" and len(splits.mean) == len(splits.std) == 3
    assert splits.source == str(written.folder.resolve())
    assert splits.val is None
    assert splits.train.images.dtype == torch.uint8
    np.testing.assert_array_equal(splits.train.images.numpy(), written.train_images)
    np.testing.assert_array_equal(splits.train.labels.numpy(), written.train_labels)
    np.testing.assert_array_equal(splits.test.images.numpy(), written.test_images)
    np.testing.assert_array_equal(splits.test.labels.numpy(), written.test_labels)
    image, label = splits.train[3]
    assert image.shape == (3, 32, 32) and label == written.train_labels[3]
    assert isinstance(label, int)


@pytest.mark.parametrize("layout", ["python", "binary"])
def test_split_holds_out_the_last_tenth_of_training(tmp_path, layout):
    # 5 batches of 10 = 50 images -> 45 / 5, the ResNet paper's 45k/5k at 1/1000 scale.
    written = write_cifar(tmp_path, "cifar10", layout, per_batch=10)
    splits = open_dataset(f"cifar10:{tmp_path}", validation="split")

    assert (len(splits.train), len(splits.val), len(splits.test)) == (45, 5, 10)
    np.testing.assert_array_equal(splits.train.images.numpy(), written.train_images[:45])
    np.testing.assert_array_equal(splits.val.images.numpy(), written.train_images[45:])
    np.testing.assert_array_equal(splits.val.labels.numpy(), written.train_labels[45:])
    np.testing.assert_array_equal(splits.test.images.numpy(), written.test_images)


def test_validation_on_test_set_trains_on_everything(tmp_path):
    written = write_cifar(tmp_path, "cifar10", "python")
    splits = open_dataset(f"cifar10:{tmp_path}", validation="test")

    assert len(splits.train) == 20
    assert splits.val is splits.test
    np.testing.assert_array_equal(splits.val.images.numpy(), written.test_images)


def test_python_layout_preferred_when_both_are_extracted(tmp_path):
    write_cifar(tmp_path, "cifar10", "binary", seed=1)
    written = write_cifar(tmp_path, "cifar10", "python", seed=2)
    splits = open_dataset(f"cifar10:{tmp_path}", validation="none")
    assert splits.source.endswith("cifar-10-batches-py")
    np.testing.assert_array_equal(splits.train.images.numpy(), written.train_images)


def test_missing_folder(tmp_path):
    message = open_error(f"cifar10:{tmp_path / 'nowhere'}")
    assert str(tmp_path / "nowhere") in message and "does not exist" in message


def test_empty_folder(tmp_path):
    message = open_error(f"cifar100:{tmp_path}")
    assert str(tmp_path) in message and "empty" in message
    assert "cifar-100-python/" in message and "cifar-100-binary/" in message


def test_archive_not_extracted(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b")
    message = open_error(f"cifar10:{tmp_path}")
    assert "tar -xzf cifar-10-python.tar.gz" in message


@pytest.mark.parametrize(
    ("layout", "lost"), [("python", "data_batch_3"), ("binary", "test_batch.bin")]
)
def test_partial_download_lists_missing_files(tmp_path, layout, lost):
    written = write_cifar(tmp_path, "cifar10", layout)
    (written.folder / lost).unlink()
    message = open_error(f"cifar10:{tmp_path}")
    assert str(written.folder) in message and "incomplete" in message and lost in message


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
def test_truncated_binary_batch(tmp_path, variant):
    written = write_cifar(tmp_path, variant, "binary")
    path = written.folder / ("test_batch.bin" if variant == "cifar10" else "test.bin")
    path.write_bytes(path.read_bytes()[:-100])
    message = open_error(f"{variant}:{tmp_path}")
    record = 3073 if variant == "cifar10" else 3074
    assert str(path) in message and "truncated" in message and f"{record}-byte" in message


def test_truncated_pickle_batch(tmp_path):
    written = write_cifar(tmp_path, "cifar10", "python")
    path = written.folder / "data_batch_2"
    path.write_bytes(path.read_bytes()[:200])
    message = open_error(f"cifar10:{tmp_path}")
    assert str(path) in message and "corrupt or truncated" in message


def test_garbage_pickle_batch(tmp_path):
    written = write_cifar(tmp_path, "cifar10", "python")
    path = written.folder / "test_batch"
    path.write_bytes(b"<html>404 Not Found</html>")
    assert str(path) in open_error(f"cifar10:{tmp_path}")


@pytest.mark.parametrize("layout", ["python", "binary"])
def test_label_out_of_range(tmp_path, layout):
    written = write_cifar(tmp_path, "cifar10", layout)
    if layout == "python":
        path = written.folder / "data_batch_1"
        batch = {b"data": written.train_images[:4].reshape(4, -1), b"labels": [0, 1, 10, 2]}
        path.write_bytes(py2_pickle(batch))
    else:
        path = written.folder / "data_batch_1.bin"
        raw = bytearray(path.read_bytes())
        raw[2 * 3073] = 10  # label byte of the third record
        path.write_bytes(bytes(raw))
    message = open_error(f"cifar10:{tmp_path}")
    assert str(path) in message and "label 10 of image 2 is out of range 0..9" in message


def test_batch_with_wrong_image_size(tmp_path):
    written = write_cifar(tmp_path, "cifar10", "python")
    path = written.folder / "data_batch_4"
    path.write_bytes(py2_pickle({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    message = open_error(f"cifar10:{tmp_path}")
    assert str(path) in message and "3072" in message


def test_wrong_number_of_class_names(tmp_path):
    written = write_cifar(tmp_path, "cifar10", "binary")
    path = written.folder / "batches.meta.txt"
    path.write_text("cat\ndog\n")
    message = open_error(f"cifar10:{tmp_path}")
    assert str(path) in message and "expected 10 class names" in message
