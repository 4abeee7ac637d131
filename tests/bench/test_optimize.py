"""optimize_for_inference: same function, batch norms folded, caller's model untouched."""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

import cnnzoo
from cnnzoo.bench import bf16_support, fold_batch_norms, optimize_for_inference
from cnnzoo.bench.optimize import agreement
from cnnzoo.errors import UsageError

# A representative set: residual, plain VGG, dense concatenation, inception branches, fire
# modules, a CIFAR ResNet and LRN. Small inputs keep the suite fast; each still reaches the
# classifier (the ImageNet models pool adaptively).
CASES = {
    "resnet50_tv": 32,
    "vgg16": 32,
    "densenet121": 32,
    "googlenet_tv": 32,
    "squeezenet1_1": 48,
    "resnet20_cifar": 32,
    "alexnet": 227,
}


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = cnnzoo.create_model(name).eval()
    # Untrained batch norms are identities (mean 0, var 1, weight 1, bias 0): give them real
    # statistics so that a wrong fold shows.
    generator = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=generator) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=generator) - 0.5)
    return model


def _input(name: str) -> torch.Tensor:
    size = CASES[name]
    channels = cnnzoo.get_spec(name).input_size[0]
    return torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(2))


def _foldable_batch_norms(model: nn.Module) -> list[str]:
    """Batch norms whose input is a convolution's output (what folding should remove)."""
    graph = fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    left = []
    for node in graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], nn.BatchNorm2d):
            source = node.args[0]
            if source.op == "call_module" and isinstance(modules[source.target], nn.Conv2d):
                left.append(node.target)
    return left


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    name = request.param
    model, x = _model(name), _input(name)
    with torch.no_grad():
        expected = model(x)
    return name, model, x, expected


def test_fp32_matches_and_batch_norms_are_gone(case, one_thread):
    name, model, x, expected = case
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pairs_before = _foldable_batch_norms(model)

    fast = optimize_for_inference(model)
    got = fast(x)

    assert got.dtype == torch.float32 and got.shape == expected.shape
    scale = expected.abs().max()
    assert (got - expected).abs().max() <= 1e-4 * scale, name
    assert _foldable_batch_norms(fast.model) == []
    assert len(fast.folded) == len(pairs_before)
    # The caller's model is untouched: same modules, same values, still has its batch norms.
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) >= len(pairs_before)
    assert next(model.parameters()).requires_grad


@pytest.mark.skipif(bf16_support("cpu") is None, reason="no native bf16 on this CPU")
def test_bf16_agrees_on_top1(case, one_thread):
    """bf16 keeps 8 bits of mantissa: logits move by well under 3% of their range, and the top-1
    class only changes where fp32 itself has a near tie (untrained models have many)."""
    name, model, x, expected = case
    got = optimize_for_inference(model, precision="bf16")(x)
    diff = (got - expected).abs().max().item()
    scale = expected.abs().max().item()
    print(f"{name}: bf16 max logit difference {diff:.4f} (logits up to {scale:.2f})")
    assert diff <= 0.03 * scale
    for want, have, logits in zip(expected.argmax(1), got.argmax(1), expected, strict=True):
        margin = (logits[want] - logits[have]).item()
        assert want == have or margin <= 2 * diff, f"{name}: top-1 changed with margin {margin}"


def test_conv_feeding_two_consumers_is_not_folded():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)
            self.other = nn.ReLU()

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + self.other(y)

    model = Branchy().eval()
    assert fold_batch_norms(model) == []
    assert isinstance(model.bn, nn.BatchNorm2d)


def test_fold_needs_eval_and_precision_is_checked():
    with pytest.raises(ValueError, match="eval"):
        fold_batch_norms(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)))
    with pytest.raises(ValueError, match="precision"):
        optimize_for_inference(nn.Conv2d(1, 1, 1), precision="fp16")


def test_shared_conv_is_not_folded():
    conv = nn.Conv2d(3, 3, 1)
    model = nn.Sequential(conv, nn.BatchNorm2d(3), conv, nn.BatchNorm2d(3)).eval()
    assert fold_batch_norms(model) == []


def test_agreement_allows_near_ties_only():
    reference = torch.tensor([[5.0, 4.5, 0.0], [2.0, 1.99, 0.0]])
    close = reference + 0.01
    assert agreement(reference, close, tolerance=0.01).ok
    # The second image's top-1 flips, but fp32 itself had it within 0.01 (at most half the
    # tolerance, 0.05 x 5 / 2 = 0.125): a near tie.
    flipped_tie = torch.tensor([[5.0, 4.5, 0.0], [1.99, 2.0, 0.0]])
    tie = agreement(reference, flipped_tie, tolerance=0.05)
    assert tie.ok and tie.top1_changed == 0
    # A top-1 change over a 0.5 margin fails although every logit is within the tolerance
    # (0.3 <= 0.1 x 5): the margin is wider than half the tolerance (0.25).
    flipped = torch.tensor([[4.7, 4.8, 0.0], [2.0, 1.99, 0.0]])
    clear = agreement(reference, flipped, tolerance=0.1)
    assert clear.max_logit_diff <= 0.1 * clear.scale
    assert clear.top1_changed == 1 and not clear.ok
    # Logits beyond the tolerance fail with the same top-1.
    far = agreement(reference, reference * 1.1, tolerance=0.05)
    assert far.top1_changed == 0 and not far.ok
    assert "tolerance 5.00%" in far.describe()


def _toy() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5)
    ).eval()


def test_bf16_is_refused_without_native_support(monkeypatch):
    import cnnzoo.bench.optimize as optimize

    monkeypatch.setattr(optimize, "native_bf16_isa", lambda: None)
    assert bf16_support("cpu") is None
    with pytest.raises(UsageError, match="emulated and slower than fp32"):
        optimize_for_inference(_toy(), precision="bf16", device="cpu")
    fast = optimize_for_inference(_toy(), precision="auto", device="cpu", example=(2, 3, 8, 8))
    bf16 = fast.choice.candidates[-1]
    assert bf16.precision == "bf16" and bf16.median_s is None
    assert "not natively supported" in bf16.note
    assert fast.precision == "fp32"
    assert "not tried" in fast.choice.describe()


def test_auto_keeps_the_fastest_that_agrees(monkeypatch):
    import cnnzoo.bench.optimize as optimize

    monkeypatch.setattr(optimize, "native_bf16_isa", lambda: "AVX512-BF16")
    times = iter([3.0, 2.0, 1.0])  # fp32 contiguous, fp32 channels-last, bf16 channels-last
    monkeypatch.setattr(optimize, "median_seconds", lambda *args: next(times))
    # bf16 is fastest, but with no logit tolerance at all it cannot agree with fp32.
    monkeypatch.setitem(optimize.LOGIT_TOLERANCE, "bf16", 0.0)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    model = _toy()
    fast = optimize_for_inference(model, precision="auto", device="cpu", example=x)
    names = [c.name for c in fast.choice.candidates]
    assert names == ["fp32 contiguous", "fp32 channels-last", "bf16 channels-last"]
    assert fast.choice.chosen == 1 and (fast.precision, fast.channels_last) == ("fp32", True)
    assert not fast.choice.candidates[2].agreement.ok
    assert torch.allclose(fast(x), model(x), atol=1e-5)
    assert "DISAGREES" in fast.choice.describe()


def test_auto_needs_the_callers_input():
    with pytest.raises(UsageError, match="example="):
        optimize_for_inference(_toy(), precision="auto")
