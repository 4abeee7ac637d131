"""`predict` notices an image unlike the training data (an inverted digit) and says --invert.

A short real training run on the digits (the embedded data set) gives the model; the images are
real test digits written as PNG files, once as they are (white on black) and once inverted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnzoo.cli import main
from cnnzoo.data import open_dataset
from cnnzoo.train.image_check import ImageCheck, image_stats


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "lenet5"
    argv = ["train", "lenet5", "--data", "digits", "--epochs", "1", "--max-steps", "30"]
    assert main([*argv, "--out", str(out)]) == 0
    return out


def _digit(index: int) -> tuple[np.ndarray, int]:
    image, label = open_dataset("digits").test[index]
    return (np.asarray(image)[0] * 255).round().astype(np.uint8), int(label)


def test_digits_reference_is_light_on_dark() -> None:
    check = ImageCheck.measure("digits", open_dataset("digits").train)
    assert check.polarity == "light on dark" and check.light_on_dark == 1.0
    low, high = check.brightness
    assert 0.15 < low < high < 0.5  # the digits' mean brightness is about 0.31
    image, _ = _digit(0)
    assert check.problems(image_stats(image)) == []
    found = check.problems(image_stats(255 - image))
    assert (
        len(found) == 2 and "it is dark on light, the training images are light on dark" in found[1]
    )


def test_photographs_have_no_polarity_to_check() -> None:
    """Random images (as varied as photographs) have no consistent polarity: never warned."""
    rng = np.random.default_rng(0)
    images = [(rng.random((3, 16, 16)) * 255).astype(np.uint8) for _ in range(200)]
    check = ImageCheck.measure("noise", [(im, 0) for im in images])
    assert check.polarity is None
    assert check.problems(image_stats(255 - images[0])) == []


def test_inverted_digit_is_warned_and_invert_fixes_it(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # A test digit the model gets right as it is (the run is short: search for one).
    for index in range(40):
        image, label = _digit(index)
        plain = tmp_path / f"digit{index}.png"
        Image.fromarray(image, mode="L").resize((32, 32), Image.NEAREST).save(plain)
        assert main(["predict", str(run), str(plain), "--top", "1"]) == 0
        captured = capsys.readouterr()
        assert "warning" not in captured.err  # a digit as trained on: no warning
        if captured.out.split()[-1] == str(label):
            break
    else:
        pytest.fail("the short run got none of 40 test digits right")
    inverted = tmp_path / "inverted.png"
    Image.fromarray(255 - image, mode="L").resize((32, 32), Image.NEAREST).save(inverted)

    assert main(["predict", str(run), str(inverted), "--top", "1"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {inverted} does not look like the training data (digits)" in err
    assert "it is dark on light, the training images are light on dark" in err
    assert "if it is inverted, pass --invert" in err

    assert main(["predict", str(run), str(inverted), "--top", "1", "--invert"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split()[-1] == str(label) and "warning" not in captured.err

    # --invert on an image that was not inverted is warned too.
    assert main(["predict", str(run), str(plain), "--invert"]) == 0
    assert "it was inverted by --invert; drop --invert" in capsys.readouterr().err


def test_help_says_what_the_model_expects(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["predict", "-h"])
    text = " ".join(capsys.readouterr().out.split())
    assert "grayscale for 1-channel models" in text and "resized to its input size" in text
    assert "light strokes on a dark background" in text and "--invert" in text


def test_export_of_the_run_reproduces_predict(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The ONNX file's metadata alone (mean, std, channel order, classes) prepares a real image
    so that onnxruntime gives predict's answer and probability."""
    ort = pytest.importorskip("onnxruntime")
    import json

    from cnnzoo.export import read_metadata

    image, _ = _digit(3)
    path = tmp_path / "digit.png"
    Image.fromarray(image, mode="L").resize((32, 32), Image.NEAREST).save(path)
    assert main(["predict", str(run), str(path), "--top", "1"]) == 0
    prob, name = capsys.readouterr().out.splitlines()[1].split()

    onnx_path = tmp_path / "run.onnx"
    assert main(["export", str(run), "--out", str(onnx_path)]) == 0
    printed = capsys.readouterr()
    assert "weights: run " in printed.out and "random" not in printed.err
    assert "preprocessing: grayscale pixels / 255" in printed.out
    meta = read_metadata(onnx_path)
    assert meta["cnnzoo.model"] == "lenet5" and meta["cnnzoo.channel_order"] == "grayscale"
    assert meta["cnnzoo.weights"].startswith(f"run {run}, checkpoint ")
    c, h, w = (int(v) for v in meta["cnnzoo.input_size"].split("x"))
    mean = np.array(json.loads(meta["cnnzoo.mean"]), np.float32).reshape(1, c, 1, 1)
    std = np.array(json.loads(meta["cnnzoo.std"]), np.float32).reshape(1, c, 1, 1)
    assert not np.allclose(mean, 0)  # the run's normalization, not the identity
    x = np.asarray(Image.open(path).convert("L"), np.float32)[None, None] / 255
    logits = ort.InferenceSession(str(onnx_path)).run(None, {"input": (x - mean) / std})[0][0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    classes = json.loads(meta["cnnzoo.classes"])
    assert classes[int(probs.argmax())] == name
    assert f"{probs.max():7.2%}".strip() == prob
