"""Invariants of the analyzer on hand-built networks: sharing, functional calls, the model left
untouched, depth summaries, failures and fallbacks, memory estimates."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnzoo
from cnnzoo.analysis import summary
from cnnzoo.layers import Add


class SharedBlock(nn.Module):
    """One conv module applied twice, and a classifier whose weight is tied to another's."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.shared = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8, bias=False)
        self.fc2.weight = self.fc1.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = self.shared(x)
        x = self.shared(x) + x  # functional add
        x = torch.flatten(self.pool(x), 1)
        return self.fc2(self.fc1(x))


def test_shared_module_and_tied_weight_count_once_and_are_marked() -> None:
    model = SharedBlock()
    report = summary(model, (3, 16, 16))
    rows = {r.name: r for r in report.layers}
    assert rows["shared"].params == 8 * 8 * 9 + 8 and not rows["shared"].shared_with
    assert rows["shared@2"].params == 0
    assert rows["shared@2"].shared_params == 8 * 8 * 9 + 8
    assert rows["shared@2"].shared_with == ("shared",)
    assert rows["fc2"].params == 0 and rows["fc2"].shared_with == ("fc1",)
    assert rows["shared@2"].macs == rows["shared"].macs  # computed twice, stored once
    t = report.totals
    assert t.params == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in report.layers) == t.params
    assert "shared with shared" in report.to_table(160)  # the notes column, where it fits


def test_functional_calls_in_forward_are_layers() -> None:
    report = summary(SharedBlock(), (3, 16, 16))
    names = [r.name for r in report.layers]
    assert names == ["stem", "relu()", "shared", "shared@2", "add()", "pool", "flatten()",
                     "fc1", "fc2"]  # fmt: skip
    rows = {r.name: r for r in report.layers}
    assert rows["relu()"].flops == 8 * 16 * 16 and rows["relu()"].type == "F.relu"
    assert rows["add()"].flops == 8 * 16 * 16 and rows["add()"].activation_bytes == 4 * 8 * 256
    assert rows["flatten()"].activation_bytes == 0  # a view


def test_concat_counts_zero_flops_and_inplace_allocates_nothing() -> None:
    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(4, 4, 1)
            self.b = nn.Conv2d(4, 4, 3, padding=1)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.relu(torch.cat([self.a(x), self.b(x)], 1))

    report = summary(Branches(), (4, 8, 8))
    cat = next(r for r in report.layers if r.name == "cat()")
    assert cat.flops == 0 and cat.activation_bytes == 4 * 8 * 8 * 8
    assert cat.output_shape == (1, 8, 8, 8)
    assert cat.rf_size == (3, 3)  # the largest branch
    relu = report.layers[-1]
    assert relu.in_place and relu.activation_bytes == 0 and relu.flops == 8 * 8 * 8


def test_multi_branch_receptive_field_is_the_union_of_branches() -> None:
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.branch = nn.Sequential(
                nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 5, padding=2)
            )
            self.skip = nn.Conv2d(1, 1, 1)
            self.add = Add()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.add(self.branch(x), self.skip(x))

    model = Residual()
    report = summary(model, (1, 32, 32))
    assert report.output_rf is not None and report.output_rf.size == (7, 7)
    for conv in [model.branch[0], model.branch[1], model.skip]:
        nn.init.ones_(conv.weight)
    x = torch.ones(1, 1, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x)[0, 0, 16, 16], x)
    rows = grad[0, 0].abs().sum(1).nonzero().flatten()
    assert rows.max().item() - rows.min().item() + 1 == 7


def test_model_is_left_untouched() -> None:
    model = cnnzoo.create_model("resnet18")
    model.train()
    model.layer1.eval()  # a mixed mode must survive
    state = copy.deepcopy(model.state_dict())
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    report = summary(model, (3, 64, 64), batch_size=4)
    assert report.traced_on == "meta" and report.failure is None
    assert model.training and not model.layer1.training and model.layer2.training
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert hooks == sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    assert not torch.nn.modules.module._global_forward_hooks
    assert not torch.nn.modules.module._global_forward_pre_hooks


def test_large_inputs_are_traced_on_meta_tensors() -> None:
    small = summary("resnet50")
    big = summary("resnet50", (3, 1024, 1024), batch_size=64)
    assert big.traced_on == "meta"
    assert big.totals.params == small.totals.params
    assert big.totals.macs > 64 * small.totals.macs * 20
    assert big.totals.activation_bytes > 64 * 20 * small.totals.activation_bytes


def test_depth_summary_keeps_the_sums() -> None:
    full = summary("resnet18")
    blocks = summary("resnet18", depth=1)
    assert [r.name for r in blocks.layers][:5] == ["conv1", "bn1", "relu", "maxpool", "layer1"]
    layer1 = next(r for r in blocks.layers if r.name == "layer1")
    assert layer1.kind == "block" and layer1.output_shape == (1, 64, 56, 56)
    assert layer1.input_shapes == ((1, 64, 56, 56),)
    for field in ("params", "macs", "flops", "activation_bytes"):
        assert sum(getattr(r, field) for r in blocks.layers) == sum(
            getattr(r, field) for r in full.layers
        )
    assert blocks.totals == full.totals
    assert len(summary("resnet18", depth=2).layers) > len(blocks.layers)


class NeedsRealTensors(nn.Module):
    """Builds a tensor on the CPU inside forward: meta tensors cannot run it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + torch.ones(1, 4, 1, 1)


def test_falls_back_to_a_real_forward_with_a_note() -> None:
    report = summary(NeedsRealTensors(), (3, 8, 8))
    assert report.failure is None and report.traced_on == "cpu"
    assert any("real forward" in note for note in report.notes)
    assert [r.name for r in report.layers] == ["conv", "add()"]
    assert report.totals.macs == 6 * 6 * 4 * 27


def test_too_small_input_reports_the_layer_and_the_smallest_input() -> None:
    report = summary("vgg16", (3, 16, 16))
    f = report.failure
    assert f is not None and f.kind == "input too small"
    assert f.layer == "features.30"  # the fifth max pool meets a 0x0 map
    assert report.layers[-1].name == "features.29"  # the table stops before it
    assert f.smallest_input == (3, 32, 32)
    assert "3x32x32" in report.to_table()
    assert summary("vgg16", f.smallest_input).failure is None
    alexnet = summary("alexnet", (3, 100, 100)).failure
    assert alexnet is not None and alexnet.smallest_input == (3, 227, 227)  # FC6 fixes the size


def test_wrong_channels_is_a_failure_not_a_crash() -> None:
    report = summary("resnet18", (1, 64, 64))
    assert report.failure is not None and "expects 3 input channel" in report.failure.message
    assert report.layers == ()


def test_training_memory_estimate() -> None:
    t = summary("resnet18", batch_size=8).totals
    params = 11_689_512 * 4
    assert t.param_bytes == params
    activations = t.input_bytes + t.activation_bytes
    assert t.training_bytes("sgd") == params + t.buffer_bytes + params + activations
    assert t.training_bytes("adam") == t.training_bytes("sgd") + 2 * params
    assert t.training_bytes("adam", batch_size=16) == t.training_bytes("adam") + activations
    fit = t.max_batch_size(t.training_bytes("adam", batch_size=100))
    assert fit == 100
    with pytest.raises(ValueError, match="optimizer"):
        t.training_bytes("rmsprop")


def test_dtype_changes_bytes_not_counts() -> None:
    full = summary("resnet18")
    half = summary("resnet18", dtype=torch.float16)
    assert half.totals.macs == full.totals.macs
    assert 2 * half.totals.param_bytes == full.totals.param_bytes
    assert 2 * half.totals.activation_bytes == full.totals.activation_bytes


def test_an_unregistered_module_needs_an_input_size() -> None:
    with pytest.raises(ValueError, match="input_size is required"):
        summary(nn.Conv2d(1, 1, 1))
    assert summary(cnnzoo.create_model("lenet5")).input_size == (1, 32, 32)


def test_frozen_parameters_are_split_out() -> None:
    model = cnnzoo.create_model("resnet18")
    for p in [*model.conv1.parameters(), *model.layer1.parameters()]:
        p.requires_grad_(False)
    report = summary(model, (3, 64, 64))
    conv1 = next(r for r in report.layers if r.name == "conv1")
    assert conv1.frozen_params == conv1.params == 9408 and conv1.trainable_params == 0
    t = report.totals
    frozen = 9408 + sum(p.numel() for p in model.layer1.parameters())
    assert t.frozen_params == frozen and t.trainable_params == t.params - frozen
    assert t.trainable_bytes == 4 * t.trainable_params  # gradients only for trainable ones
