"""Image folders: layouts, decoding (RGB, grayscale, RGBA, JPEG), load sizes, and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cnnzoo.data import DataError, load_image, open_dataset

from .writers import open_error, write_image

# A 14x14 model: training images load at round(14 * 256/224) = 16, evaluation images at 14,
# the central 14/16 of a 16x16 file. Files are written at 16x16 so both are exact crops.
INPUT = (3, 14, 14)
rng = np.random.default_rng(0)


def pixels(*shape: int) -> np.ndarray:
    return rng.integers(0, 256, (16, 16, *shape), dtype=np.uint8)


def flat_folder(root):
    """cat: an RGB PNG and a JPEG; dog: a grayscale PNG and an RGBA PNG in a subfolder;
    plus files that are not images and a hidden folder, to be skipped."""
    gray, rgba = pixels(), pixels(4)
    written = {
        root / "cat" / "a.png": write_image(root / "cat" / "a.png", pixels(3)),
        root / "dog" / "b.png": np.repeat(
            write_image(root / "dog" / "b.png", gray)[..., None], 3, 2
        ),
        root / "dog" / "deep" / "c.png": write_image(root / "dog" / "deep" / "c.png", rgba)[
            ..., :3
        ],
    }
    write_image(root / "cat" / "d.jpg", pixels(3))
    written[root / "cat" / "d.jpg"] = np.array(Image.open(root / "cat" / "d.jpg").convert("RGB"))
    (root / "dog" / "notes.txt").write_text("not an image")
    write_image(root / "dog" / ".hidden.png", pixels(3))
    write_image(root / ".cache" / "e.png", pixels(3))
    return written


def as_array(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).numpy()


def test_flat_folder_round_trip(tmp_path):
    written = flat_folder(tmp_path)
    splits = open_dataset(f"imagefolder:{tmp_path}", input_size=INPUT, validation="none")

    assert splits.name == "imagefolder" and splits.classes == ("cat", "dog")
    assert splits.num_classes == 2 and splits.augment == "imagenet"
    assert splits.val is None and splits.test is None
    assert splits.source == str(tmp_path.resolve())
    paths = [path for path, _ in splits.train.samples]
    assert paths == [str(p) for p in sorted(written)]  # cat/a.png, cat/d.jpg, dog/b.png, ...
    assert splits.train.labels.tolist() == [0, 0, 1, 1]
    for index, path in enumerate(paths):
        image, label = splits.train[index]
        assert image.dtype == torch.uint8 and image.shape == (3, 16, 16)
        assert label == ("dog" in path)
        np.testing.assert_array_equal(as_array(image), written[tmp_path.joinpath(path)])


def test_evaluation_images_are_the_central_crop(tmp_path):
    image = write_image(tmp_path / "a.png", pixels(3))
    loaded = load_image(tmp_path / "a.png", (14, 14), crop=224 / 256)
    np.testing.assert_array_equal(as_array(loaded), image[1:15, 1:15])


def test_load_image_resizes_any_aspect(tmp_path):
    write_image(tmp_path / "wide.png", rng.integers(0, 256, (30, 50), dtype=np.uint8))
    assert load_image(tmp_path / "wide.png", (20, 24)).shape == (3, 20, 24)


def test_train_val_test_layout(tmp_path):
    for part in ("train", "val", "test"):
        for cls in ("ant", "bee"):
            for i in range(3):
                write_image(tmp_path / part / cls / f"{i}.png", pixels(3))
    spec = f"imagefolder:{tmp_path}"

    splits = open_dataset(spec, input_size=INPUT, validation="split")
    assert splits.classes == ("ant", "bee")
    assert [len(splits.train), len(splits.val), len(splits.test)] == [6, 6, 6]
    assert all("/val/" in path for path, _ in splits.val.samples)
    assert all("/test/" in path for path, _ in splits.test.samples)
    assert splits.train.size == (16, 16) and splits.val.size == splits.test.size == (14, 14)
    assert splits.val[0][0].shape == (3, 14, 14)

    on_test = open_dataset(spec, input_size=INPUT, validation="test")
    assert on_test.val is on_test.test


def test_val_folder_alone_is_the_test_set_and_split_holds_out(tmp_path):
    for cls in ("ant", "bee"):
        for i in range(10):
            write_image(tmp_path / "train" / cls / f"{i}.png", pixels(3))
        write_image(tmp_path / "val" / cls / "v.png", pixels(3))
    splits = open_dataset(f"imagefolder:{tmp_path}", input_size=INPUT)

    assert all("/val/" in path for path, _ in splits.test.samples)
    assert len(splits.train) == 18 and len(splits.val) == 2  # one held-out image per class
    assert sorted(splits.val.labels.tolist()) == [0, 1]
    held = {path for path, _ in splits.val.samples}
    assert held.isdisjoint(path for path, _ in splits.train.samples)
    assert splits.val.size == (14, 14)  # held-out images load as evaluation images
    again = open_dataset(f"imagefolder:{tmp_path}", input_size=INPUT, seed=5)
    assert {path for path, _ in again.val.samples} == held  # fixed, not the run's seed


def test_decoding_in_worker_processes(tmp_path):
    flat_folder(tmp_path)
    splits = open_dataset(f"imagefolder:{tmp_path}", input_size=INPUT, validation="none")
    images, labels = next(iter(DataLoader(splits.train, batch_size=4, num_workers=1)))
    assert images.shape == (4, 3, 16, 16) and labels.tolist() == [0, 0, 1, 1]


def test_missing_folder(tmp_path):
    message = open_error(f"imagefolder:{tmp_path / 'gone'}", input_size=INPUT)
    assert str(tmp_path / "gone") in message and "does not exist" in message


def test_empty_folder(tmp_path):
    message = open_error(f"imagefolder:{tmp_path}", input_size=INPUT)
    assert (
        str(tmp_path) in message and "is empty" in message and "one subfolder per class" in message
    )


def test_images_without_class_folders(tmp_path):
    write_image(tmp_path / "a.png", pixels(3))
    message = open_error(f"imagefolder:{tmp_path}", input_size=INPUT)
    assert "holds images (a.png, ...) but no class folders" in message


def test_empty_class_folder(tmp_path):
    write_image(tmp_path / "cat" / "a.png", pixels(3))
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "readme.txt").write_text("")
    message = open_error(f"imagefolder:{tmp_path}", input_size=INPUT)
    assert str(tmp_path) in message and "dog" in message and "hold no images" in message


def test_evaluation_class_unknown_to_training(tmp_path):
    write_image(tmp_path / "train" / "cat" / "a.png", pixels(3))
    write_image(tmp_path / "val" / "cow" / "b.png", pixels(3))
    message = open_error(f"imagefolder:{tmp_path}", input_size=INPUT)
    assert str(tmp_path / "val") in message and "cow" in message


@pytest.mark.parametrize("damage", ["not an image", "truncated"])
def test_undecodable_image_names_the_file(tmp_path, damage):
    flat_folder(tmp_path)
    path = tmp_path / "cat" / "d.jpg"
    if damage == "not an image":
        path.write_text("<html>this is not a JPEG</html>")
    else:
        path.write_bytes(path.read_bytes()[:120])
    splits = open_dataset(f"imagefolder:{tmp_path}", input_size=INPUT, validation="none")
    index = [p for p, _ in splits.train.samples].index(str(path))
    with pytest.raises(DataError, match="cannot decode image") as info:
        splits.train[index]
    assert str(path) in str(info.value)
