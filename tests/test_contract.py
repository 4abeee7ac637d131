"""The registry contract: every registered model, checked the same way. A new model joins by
being registered."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.analysis import meta_model

NAMES = cnnzoo.list_models()
TORCHVISION_NAMES = [n for n in NAMES if cnnzoo.get_spec(n).torchvision_name]
# torchvision builders whose defaults differ from the inference network they document.
TV_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": True}}


def _batch(spec: cnnzoo.ModelSpec) -> int:
    """Two images for small inputs; one at ImageNet size keeps the suite fast on 2 cores."""
    return 2 if spec.input_size[1] <= 64 else 1


def _train_outputs(model: torch.nn.Module, spec: cnnzoo.ModelSpec, x: torch.Tensor):
    if spec.aux_loss_weight:
        return model.forward_with_aux(x)
    return model(x), ()


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name: str) -> None:
    """Output shape, finite logits, and a gradient for every parameter."""
    spec = cnnzoo.get_spec(name)
    torch.manual_seed(0)
    model = cnnzoo.create_model(name).train()
    batch = _batch(spec)
    x = torch.randn(batch, *spec.input_size)
    logits, aux = _train_outputs(model, spec, x)
    assert logits.shape == (batch, spec.num_classes)
    assert torch.isfinite(logits).all()
    loss = logits.square().mean() + spec.aux_loss_weight * sum(a.square().mean() for a in aux)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    with torch.no_grad():
        out = model.eval()(x)
    assert isinstance(out, torch.Tensor) and out.shape == (batch, spec.num_classes)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_spec(name: str) -> None:
    model = meta_model(name)
    assert sum(p.numel() for p in model.parameters()) == cnnzoo.get_spec(name).num_params


@pytest.mark.parametrize("name", NAMES)
def test_macs_match_pytorch_flop_counter(name: str) -> None:
    spec = cnnzoo.get_spec(name)
    model = meta_model(name).eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, *spec.input_size, device="meta"))
    assert counter.get_total_flops() == 2 * spec.macs


@pytest.mark.parametrize("name", NAMES)
def test_fx_traceable(name: str) -> None:
    spec = cnnzoo.get_spec(name)
    model = meta_model(name).eval()
    graph = torch.fx.symbolic_trace(model)
    out = graph(torch.empty(2, *spec.input_size, device="meta"))
    assert out.shape == (2, spec.num_classes)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_channel_count_is_refused(name: str) -> None:
    spec = cnnzoo.get_spec(name)
    c, h, w = spec.input_size
    model = meta_model(name).eval()
    with pytest.raises(ValueError, match=rf"{name} expects {c} input channel"):
        model(torch.empty(1, c + 1, h, w, device="meta"))


def _randomize_bn_statistics(model: torch.nn.Module) -> None:
    """So that eval-mode batch norm is not the identity and a mix-up would show."""
    generator = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)


def _torchvision_model(tv_name: str, device: str = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return torchvision.models.get_model(tv_name, weights=None, **TV_KWARGS.get(tv_name, {}))


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_torchvision_weights_give_same_outputs(name: str) -> None:
    """torchvision's (random) weights loaded through from_torchvision compute the same function,
    and to_torchvision's state dict loads back into torchvision strictly."""
    spec = cnnzoo.get_spec(name)
    torch.manual_seed(0)
    reference = _torchvision_model(spec.torchvision_name)
    _randomize_bn_statistics(reference)
    reference.eval()
    assert sum(p.numel() for p in reference.parameters()) == spec.num_params

    model = cnnzoo.from_torchvision(cnnzoo.create_model(name), reference.state_dict()).eval()
    # All torchvision models pool adaptively, so a 96x96 input exercises every layer cheaply.
    x = torch.randn(2, spec.input_size[0], 96, 96)
    with torch.no_grad():
        expected = reference(x)
        assert (model(x) - expected).abs().max() <= 1e-5

        back = _torchvision_model(spec.torchvision_name, device="meta")
        back.load_state_dict(cnnzoo.to_torchvision(model), strict=True, assign=True)
        assert torch.equal(back.eval()(x), expected)


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_macs_match_torchvision_published_ops(name: str) -> None:
    """torchvision's weight metadata documents each model's GFLOPS (really G-MACs, 3 decimals)."""
    spec = cnnzoo.get_spec(name)
    weights = torchvision.models.get_model_weights(spec.torchvision_name).DEFAULT
    assert round(spec.macs / 1e9, 3) == pytest.approx(weights.meta["_ops"], abs=0.0015)
    assert spec.num_params == weights.meta["num_params"]
