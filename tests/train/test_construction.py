"""The construction argument: a deeper plain network built from a shallower one computes the
same logits; the check fails loudly when it does not."""

from __future__ import annotations

import pytest
import torch

from cnnzoo import create_model
from cnnzoo.errors import UsageError
from cnnzoo.models.resnet import ResNet, Stage
from cnnzoo.train.construction import (
    ConstructionError,
    deepen_plain,
    make_identity,
    max_logit_difference,
    verify_construction,
)


def tiny_plain(blocks: tuple[int, int], residual: bool = False) -> ResNet:
    return ResNet(
        stages=(Stage(blocks[0], 4, 4, 1), Stage(blocks[1], 8, 8, 2)),
        stem="cifar", stem_channels=4, bottleneck=False, residual=residual, shortcut="A",
        num_classes=3,
    )  # fmt: skip


def trained_statistics(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Batch-norm running statistics and affine parameters away from their initial values, so
    the copy is tested on a network that has learned something."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator))
        model.train()
        for _ in range(3):
            model(torch.randn(16, 3, 8, 8, generator=generator) * 2 + 0.5)
    return model.eval()


def inputs(n: int = 3, size: int = 8) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(8, 3, size, size, generator=generator) for _ in range(n)]


def test_deeper_plain_network_has_the_shallow_ones_logits() -> None:
    torch.manual_seed(0)
    shallow = trained_statistics(tiny_plain((1, 1)))
    deep = deepen_plain(shallow, tiny_plain((3, 4)))
    assert sum(p.numel() for p in deep.parameters()) > sum(p.numel() for p in shallow.parameters())
    assert not deep.training
    assert verify_construction(shallow, deep, inputs()) <= 1e-5
    logits = shallow(inputs()[0])
    assert logits.abs().max() > 0.1  # the logits compared are not all ~0
    # the extra blocks really are in the path: spoil one and the check fails loudly
    with torch.no_grad():
        deep.layer2[2].conv1.weight.mul_(1.5)
    with pytest.raises(ConstructionError, match="differ from the shallow network's"):
        verify_construction(shallow, deep, inputs())


def test_plain20_to_plain56() -> None:
    torch.manual_seed(0)
    shallow = create_model("plain20_cifar", num_classes=10).eval()
    deep = deepen_plain(shallow)  # by name: plain56_cifar
    assert [len(deep.layer1), len(deep.layer2), len(deep.layer3)] == [9, 9, 9]
    torch.testing.assert_close(deep.layer2[0].conv1.weight, shallow.layer2[0].conv1.weight)
    x = [torch.randn(4, 3, 32, 32)]
    assert max_logit_difference(shallow, deep, x) <= 1e-5
    # a freshly built plain-56 is a different function
    assert max_logit_difference(shallow, create_model("plain56_cifar").eval(), x) > 1e-3


def test_identity_block_is_identity_on_non_negative_inputs() -> None:
    block = tiny_plain((2, 1)).layer1[1]
    make_identity(block)
    block.eval()
    x = torch.rand(2, 4, 6, 6)
    torch.testing.assert_close(block(x), x, rtol=0, atol=1e-6)
    assert block.bn1.running_var.eq(1 - block.bn1.eps).all()


def test_refuses_what_it_cannot_build() -> None:
    with pytest.raises(UsageError, match="plain networks"):
        deepen_plain(tiny_plain((1, 1), residual=True), tiny_plain((2, 2)))
    with pytest.raises(UsageError, match="counterpart"):
        deepen_plain(tiny_plain((3, 1)), tiny_plain((2, 2)))  # fewer blocks in stage 1
    with pytest.raises(UsageError, match="stride 1"):
        make_identity(tiny_plain((1, 1)).layer2[0])  # the downsampling block
