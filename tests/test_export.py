"""ONNX and TorchScript export: onnxruntime's outputs match PyTorch's eval outputs, for every
model of the zoo (exported in background workers started with the session: see
tests/onnx_roundtrip.py).

The criterion is the issue's: at most 1e-4 absolute difference in float32. Where PyTorch's own
float32 output is further than that from its float64 output (random-weight deep networks amplify
rounding; plain networks at initialization most), ONNX may differ by twice PyTorch's own error,
that is, be as exact as PyTorch itself; the session's summary lists each such model with its
figures.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnzoo
from cnnzoo.export import ExportError, export_model
from onnx_roundtrip import calibrated, run_onnx

pytest.importorskip("onnxruntime", reason="the export extra is not installed")
pytest.importorskip("onnxscript", reason="the export extra is not installed")

TOLERANCE = 1e-4


@pytest.mark.parametrize("name", cnnzoo.list_models())
def test_onnx_matches_pytorch(name, onnx_roundtrips):
    result = onnx_roundtrips.result(name)
    assert result.onnx_shape == result.expected_shape == (1, cnnzoo.get_spec(name).num_classes)
    assert result.max_abs_logit > 1e-3, result  # a network that outputs zeros proves nothing
    assert result.max_abs_diff <= max(TOLERANCE, 2 * result.torch_fp32_error), result


def test_onnx_dynamic_batch(tmp_path):
    model = calibrated("resnet20_cifar", (3, 32, 32))
    exported = export_model(model, dynamic_batch=True, out=tmp_path / "r.onnx")
    assert exported.dynamic_batch and exported.nbytes == exported.path.stat().st_size
    for batch in (1, 5):
        x = torch.randn(batch, *exported.input_size)
        with torch.no_grad():
            expected = model(x).numpy()
        got = run_onnx(exported.path, x)
        assert got.shape == (batch, 10)
        assert np.abs(got - expected).max() <= 1e-4


def test_torchscript_matches_pytorch(tmp_path):
    model = cnnzoo.create_model("lenet5")  # training mode: exported in eval mode, then restored
    exported = export_model(model, "torchscript", out=tmp_path / "l.pt")
    assert model.training
    loaded = torch.jit.load(str(exported.path))
    x = torch.randn(3, *exported.input_size)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model.eval()(x), atol=1e-5)
    assert "torch.jit.load" in exported.usage()


def test_unexportable_model_says_why(tmp_path):
    class Unexportable(torch.nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x  # control flow on the data: no single graph

    with pytest.raises(ExportError, match="Unexportable cannot be exported to onnx: "):
        export_model(Unexportable(), input_size=(1, 4, 4), out=tmp_path / "u.onnx")


def test_cli_export_prints_path_size_weights_preprocessing_usage(tmp_path, capsys):
    from cnnzoo.cli import main

    out = tmp_path / "lenet.pt"
    assert main(["export", "lenet5", "--format", "torchscript", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert str(out) in printed.out and "KiB" in printed.out
    assert "weights: random initialization" in printed.out
    assert "preprocessing: grayscale pixels / 255, resized to the input size" in printed.out
    assert "usage: import numpy as np, torch" in printed.out and "torch.jit.load" in printed.out
    assert "warning: lenet5 is exported with random weights (random initialization)" in (
        printed.err
    )
    assert main(["export", "lenet5", "--format", "onnx", "--input", "1x2x2"]) == 2


@pytest.mark.parametrize(
    ("out", "format", "written"),
    [("m.onnx", None, "onnx"), ("m.pt", None, "torchscript"), ("m.ts", None, "torchscript"),
     ("m.ts", "torchscript", "torchscript"), (None, None, "onnx"),
     (None, "torchscript", "torchscript")],
)  # fmt: skip
def test_format_follows_the_extension(out, format, written):
    from cnnzoo.export import choose_format

    assert choose_format(format, out) == written


def test_format_and_extension_must_agree(tmp_path):
    with pytest.raises(ExportError, match="names a torchscript file but --format is onnx"):
        export_model("lenet5", "onnx", out=tmp_path / "m.pt")
    with pytest.raises(ExportError, match="cannot tell the format from"):
        export_model("lenet5", out=tmp_path / "m.bin")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_torchscript_and_onnx_carry_their_metadata(tmp_path):
    from cnnzoo.export import read_metadata

    for name in ("m.ts", "m.onnx"):
        exported = export_model("resnet20_cifar", out=tmp_path / name)
        meta = read_metadata(exported.path)
        assert meta == exported.metadata
        assert meta["cnnzoo.model"] == "resnet20_cifar"
        assert meta["cnnzoo.input_size"] == "3x32x32" and meta["cnnzoo.layout"] == "NCHW"
        assert meta["cnnzoo.channel_order"] == "RGB"
        assert meta["cnnzoo.weights"] == "random initialization"
        assert meta["cnnzoo.mean"] == "[0.0, 0.0, 0.0]" and meta["cnnzoo.std"] == "[1.0, 1.0, 1.0]"
        assert meta["cnnzoo.classes"] == "null" and meta["cnnzoo.version"] == cnnzoo.__version__
    loaded = torch.jit.load(str(tmp_path / "m.ts"))  # the extra file leaves the model as it was
    assert loaded(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_trained_run_directory_exports_its_weights(tmp_path):
    from cnnzoo.cli import main
    from cnnzoo.train.evaluate import load_trained

    run = tmp_path / "run"
    argv = ["train", "lenet5", "--data", "digits", "--epochs", "1", "--max-steps", "2"]
    assert main([*argv, "--out", str(run)]) == 0
    exported = export_model(run, out=tmp_path / "trained.onnx")
    model = load_trained(run).model
    x = torch.randn(2, *exported.input_size)
    with torch.no_grad():
        expected = model(x).numpy()
    assert exported.model == "lenet5"
    assert np.abs(run_onnx(exported.path, x[:1]) - expected[:1]).max() <= 1e-4
