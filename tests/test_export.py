"""ONNX and TorchScript export: onnxruntime's outputs match PyTorch's eval outputs.

Exporting runs `torch.export` per model, which costs time per traced operation (a 400-layer
network takes ~15 s on 2 cores), so the ONNX comparison covers the shallowest member of every
family (AlexNet's and LeNet-5's paper forms for theirs, the only users of LRN, grouped
convolutions and the C3 connection table), which exercises every block the zoo has; the whole zoo
is one parametrization away (`ALL`) but takes many minutes.

Batch-norm statistics are calibrated on random batches first: at initialization the running
statistics are (0, 1) and a deep residual network's logits reach 1e6, where float32 rounding alone
differs by more than 1e-4; calibrated, the logits are of order 1, as a trained model's are.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnzoo
from cnnzoo.analysis import meta_model
from cnnzoo.export import ExportError, export_model

ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed")
pytest.importorskip("onnxscript", reason="the export extra is not installed")

ALL = cnnzoo.list_models()


def _shallowest_per_family() -> list[str]:
    best: dict[str, tuple[int, int, str]] = {}
    for name in ALL:
        spec = cnnzoo.get_spec(name)
        layers = sum(not m._modules for m in meta_model(name).modules())
        key = (layers, spec.num_params, name)
        best[spec.family] = min(best.get(spec.family, key), key)
    chosen = {family: name for family, (_, _, name) in best.items()}
    # AlexNet's paper form (LRN, grouped convolutions) and LeNet-5's (the C3 connection table)
    # stand for their families: they are the only users of those layers.
    chosen |= {"alexnet": "alexnet", "lenet": "lenet5"}
    return sorted(chosen.values())


# Stochastic depth's shallowest member is ResNet-110 (~50 s to export on a busy 2-core machine);
# its block, a residual block whose branch eval mode scales by the survival probability, is the
# same at depth 20.
STAND_INS = {"resnet110_sd_cifar": ("resnet20_cifar", {"drop_path_rate": 0.5})}


def _calibrated(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    build, overrides = STAND_INS.get(name, (name, {}))
    model = cnnzoo.create_model(build, **overrides)
    size = _small_input(name)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # running statistics = the average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, *size))
    return model.eval()


def _small_input(name: str) -> tuple[int, ...]:
    """64x64 where the network allows it (adaptive pooling), else the spec's input."""
    channels, *spatial = cnnzoo.get_spec(name).input_size
    small = (channels, *(min(s, 64) for s in spatial))
    return small if cnnzoo.summary(name, small).failure is None else (channels, *spatial)


def _run_onnx(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


@pytest.mark.parametrize("name", _shallowest_per_family())
def test_onnx_matches_pytorch(name, tmp_path):
    size = _small_input(name)
    model = _calibrated(name)
    exported = export_model(model, input_size=size, out=tmp_path / f"{name}.onnx")
    x = torch.randn(1, *size)
    with torch.no_grad():
        expected = model(x).numpy()
    got = _run_onnx(exported.path, x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4


def test_onnx_dynamic_batch(tmp_path):
    model = _calibrated("resnet20_cifar")
    exported = export_model(model, dynamic_batch=True, out=tmp_path / "r.onnx")
    assert exported.dynamic_batch and exported.nbytes == exported.path.stat().st_size
    for batch in (1, 5):
        x = torch.randn(batch, *exported.input_size)
        with torch.no_grad():
            expected = model(x).numpy()
        got = _run_onnx(exported.path, x)
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
    assert np.abs(_run_onnx(exported.path, x[:1]) - expected[:1]).max() <= 1e-4
