"""The LeNet-to-ResNet line checked against its papers' tables and the lecture's arithmetic."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.analysis import count_macs, meta_model
from cnnzoo.layers import Add, Inception, InceptionChannels, NaiveInception, ZeroPadShortcut
from cnnzoo.models.lenet import C3_CONNECTIONS


def _output_shapes(model: nn.Module, input_size: tuple[int, ...], names: list[str]) -> dict:
    """Output shape (C, H, W) of the named submodules for one meta-device image."""
    shapes: dict[str, tuple[int, ...]] = {}
    modules = dict(model.named_modules())

    def recorder(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            shapes.setdefault(name, tuple(output.shape[1:]))

        return hook

    handles = [modules[n].register_forward_hook(recorder(n)) for n in names]
    try:
        model.eval()(torch.empty(1, *input_size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return shapes


# ---- LeNet-5 ---------------------------------------------------------------------------------


def test_lenet5_has_the_papers_60000_parameters_layer_by_layer() -> None:
    model = cnnzoo.create_model("lenet5")

    def count(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    # Section II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164; the RBF has none.
    assert [count(model.c1), count(model.s2), count(model.c3), count(model.s4)] == [
        156, 12, 1516, 32,
    ]  # fmt: skip
    assert [count(model.c5), count(model.f6), count(model.output)] == [48_120, 10_164, 0]


def test_lenet5_c3_connects_each_map_to_its_table_row() -> None:
    model = cnnzoo.create_model("lenet5")
    s2 = torch.randn(1, 6, 14, 14, requires_grad=True)
    out = model.c3(s2)
    assert out.shape == (1, 16, 10, 10)
    for j, row in enumerate(C3_CONNECTIONS):
        (grad,) = torch.autograd.grad(out[0, j].sum(), s2, retain_graph=True)
        used = {i for i in range(6) if grad[0, i].abs().sum() > 0}
        assert used == set(row), f"C3 map {j}"


def test_lenet5_output_is_negated_squared_distance_to_fixed_codes() -> None:
    model = cnnzoo.create_model("lenet5")
    codes = model.output.codes
    assert set(codes.unique().tolist()) == {-1.0, 1.0} and not codes.requires_grad
    f6 = torch.randn(3, 84)
    expected = -torch.cdist(f6, codes).square()
    assert torch.allclose(model.output(f6), expected, atol=1e-4)
    # the closest code wins: its own code as input gives distance 0
    assert model.output(codes[4:5]).argmax().item() == 4


def test_lenet5_scaled_tanh_constants() -> None:
    act = cnnzoo.create_model("lenet5").act1
    x = torch.tensor([1.0])
    assert torch.allclose(act(x), 1.7159 * torch.tanh(torch.tensor(2 / 3)))


def test_lenet5_modern_counts() -> None:
    assert sum(p.numel() for p in cnnzoo.create_model("lenet5_modern").parameters()) == 61_706


# ---- AlexNet and ZFNet ------------------------------------------------------------------------


def test_alexnet_shapes_follow_the_lecture_table() -> None:
    model = meta_model("alexnet")
    names = ["conv1", "pool1", "norm1", "conv2", "pool2", "norm2", "conv3", "conv4", "conv5",
             "pool3"]  # fmt: skip
    shapes = _output_shapes(model, (3, 227, 227), [f"features.{n}" for n in names])
    assert [shapes[f"features.{n}"] for n in names] == [
        (96, 55, 55), (96, 27, 27), (96, 27, 27), (256, 27, 27), (256, 13, 13), (256, 13, 13),
        (384, 13, 13), (384, 13, 13), (256, 13, 13), (256, 6, 6),
    ]  # fmt: skip


def test_alexnet_parameters_by_the_lectures_arithmetic() -> None:
    model = cnnzoo.create_model("alexnet")
    conv1 = model.features.conv1
    assert sum(p.numel() for p in conv1.parameters()) == (11 * 11 * 3 + 1) * 96 == 34_944
    assert sum(p.numel() for p in model.features.pool1.parameters()) == 0
    # The two towers: CONV2, CONV4, CONV5 see half the input maps, CONV3 sees all of them.
    assert [getattr(model.features, f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
    expected = (
        34_944 + (5 * 5 * 48 + 1) * 256 + (3 * 3 * 256 + 1) * 384 + (3 * 3 * 192 + 1) * 384
        + (3 * 3 * 192 + 1) * 256 + (6 * 6 * 256 + 1) * 4096 + (4096 + 1) * 4096
        + (4096 + 1) * 1000
    )  # fmt: skip
    assert sum(p.numel() for p in model.parameters()) == expected
    # "most parameters are in the fully connected layers"
    fc = sum(p.numel() for p in model.classifier.parameters())
    assert fc / expected > 0.9


def test_alexnet_lrn_is_the_papers_formula() -> None:
    norm = cnnzoo.create_model("alexnet").features.norm1
    a = torch.rand(1, 96, 3, 3)
    sq = a.square()
    padded = torch.nn.functional.pad(sq, (0, 0, 0, 0, 2, 2))
    window = sum(padded[:, i : i + 96] for i in range(5))  # n = 5 neighbouring maps
    expected = a / (2.0 + 1e-4 * window) ** 0.75
    assert torch.allclose(norm(a), expected, atol=1e-6)


def test_alexnet_init_is_the_papers() -> None:
    model = cnnzoo.create_model("alexnet")
    f = model.features
    assert [getattr(f, f"conv{i}").bias.unique().tolist() for i in range(1, 6)] == [
        [0.0], [1.0], [0.0], [1.0], [1.0],
    ]  # fmt: skip
    assert abs(f.conv3.weight.std().item() - 0.01) < 1e-3


def test_zfnet_maps_follow_the_paper() -> None:
    names = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool3"]
    shapes = _output_shapes(meta_model("zfnet"), (3, 224, 224), [f"features.{n}" for n in names])
    assert [shapes[f"features.{n}"][1] for n in names] == [110, 55, 26, 13, 13, 13, 13, 6]
    assert [shapes[f"features.{n}"][0] for n in names] == [96, 96, 256, 256, 384, 384, 256, 256]
    conv1 = meta_model("zfnet").features.conv1
    assert conv1.kernel_size == (7, 7) and conv1.stride == (2, 2)


# ---- VGG --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "depth"), [("vgg11", 11), ("vgg13", 13), ("vgg16", 16),
                                             ("vgg19", 19)])  # fmt: skip
def test_vgg_depth_counts_weight_layers(name: str, depth: int) -> None:
    model = meta_model(name)
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(layers) == depth
    assert all(m.kernel_size == (3, 3) for m in layers if isinstance(m, nn.Conv2d))


def test_vgg16_parameters() -> None:
    assert sum(p.numel() for p in meta_model("vgg16").parameters()) == 138_357_544


# ---- GoogLeNet --------------------------------------------------------------------------------


def test_googlenet_shapes_follow_table_1() -> None:
    rows = {"3a": (256, 28), "3b": (480, 28), "4a": (512, 14), "4b": (512, 14), "4c": (512, 14),
            "4d": (528, 14), "4e": (832, 14), "5a": (832, 7), "5b": (1024, 7)}  # fmt: skip
    names = ["conv1", "maxpool1", "conv3", "maxpool2"] + [f"inception{r}" for r in rows]
    for name in ("googlenet", "googlenet_tv"):
        shapes = _output_shapes(meta_model(name), (3, 224, 224), names)
        assert shapes["conv1"] == (64, 112, 112) and shapes["maxpool1"] == (64, 56, 56)
        assert shapes["conv3"] == (192, 56, 56) and shapes["maxpool2"] == (192, 28, 28)
        for row, (channels, size) in rows.items():
            assert shapes[f"inception{row}"] == (channels, size, size), (name, row)


def test_googlenet_paper_form_has_true_5x5_and_lrn() -> None:
    paper, tv = meta_model("googlenet"), meta_model("googlenet_tv")
    assert paper.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert tv.inception3a.branch3[1].conv.kernel_size == (3, 3)
    assert isinstance(paper.lrn1, nn.LocalResponseNorm) and isinstance(tv.lrn1, nn.Identity)
    assert paper.dropout.p == 0.4 and tv.dropout.p == 0.2


def test_googlenet_auxiliary_heads_are_a_separate_method() -> None:
    spec = cnnzoo.get_spec("googlenet")
    assert spec.aux_loss_weight == 0.3
    model = cnnzoo.create_model("googlenet").train()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert model(x).shape == (2, 1000)  # forward: logits in train mode too
        logits, aux = model.forward_with_aux(x)
    assert logits.shape == (2, 1000) and [a.shape for a in aux] == [(2, 1000), (2, 1000)]
    # Section 5: 5x5 average pool stride 3 (14 -> 4), 1x1 conv 128, FC 1024, dropout 0.7
    head = model.aux1
    assert head.pool.kernel_size == 5 and head.pool.stride == 3
    assert head.conv.conv.out_channels == 128 and head.fc1.out_features == 1024
    assert head.dropout.p == 0.7
    inference = cnnzoo.create_model("googlenet", aux_logits=False)
    assert sum(p.numel() for p in inference.parameters()) == 6_998_552


def test_inception_bottlenecks_cut_the_naive_cost() -> None:
    """The lecture's example: 28x28x256 input, 128 1x1, 192 3x3, 96 5x5 filters."""
    naive = NaiveInception(256, 128, 192, 96)
    assert naive.out_channels == 128 + 192 + 96 + 256  # the pool branch keeps all 256 maps
    # 28*28 * (128*256 + 192*9*256 + 96*25*256)
    assert count_macs(naive, (256, 28, 28)) == 854_196_224
    reduced = Inception(256, InceptionChannels(128, 64, 192, 64, 96, 64))
    # 28*28 * (128*256 + 64*256 + 192*9*64 + 64*256 + 96*25*64 + 64*256). The lecture's slide
    # totals this as 358M; the sum of its own per-layer products is 271M.
    assert count_macs(reduced, (256, 28, 28)) == 271_351_808
    assert reduced.out_channels == 480


# ---- ResNet -----------------------------------------------------------------------------------


def test_paper_bottleneck_strides_on_the_first_1x1_torchvision_on_the_3x3() -> None:
    paper, tv = meta_model("resnet50"), meta_model("resnet50_tv")
    assert paper.layer2[0].conv1.stride == (2, 2) and paper.layer2[0].conv2.stride == (1, 1)
    assert tv.layer2[0].conv1.stride == (1, 1) and tv.layer2[0].conv2.stride == (2, 2)
    assert paper.layer2[0].downsample[0].stride == (2, 2)


@pytest.mark.parametrize(
    ("depth", "millions"),
    [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7), (1202, 19.4)],
)
def test_cifar_resnets_have_the_papers_parameter_counts(depth: int, millions: float) -> None:
    params = sum(p.numel() for p in meta_model(f"resnet{depth}_cifar").parameters())
    digits = 1 if millions >= 1 else 2
    assert round(params / 1e6, digits) == millions


def test_cifar_resnet_layout_is_6n_plus_2() -> None:
    model = meta_model("resnet56_cifar")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == 56  # plus the FC layer; option A shortcuts have no conv
    assert [len(getattr(model, f"layer{i}")) for i in (1, 2, 3)] == [9, 9, 9]
    shapes = _output_shapes(model, (3, 32, 32), ["layer1", "layer2", "layer3"])
    assert shapes == {"layer1": (16, 32, 32), "layer2": (32, 16, 16), "layer3": (64, 8, 8)}
    assert sum(isinstance(m, ZeroPadShortcut) for m in model.modules()) == 2


def test_option_a_shortcut_pads_zeros_and_subsamples() -> None:
    shortcut = ZeroPadShortcut(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    y = shortcut(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2]) and not y[:, 16:].any()


def test_plain_twins_have_no_shortcuts_and_same_layers() -> None:
    plain, res = meta_model("plain20_cifar"), meta_model("resnet20_cifar")
    assert not any(isinstance(m, Add) for m in plain.modules())
    assert sum(isinstance(m, Add) for m in res.modules()) == 9
    assert [type(m) for m in plain.modules() if not isinstance(m, ZeroPadShortcut | Add)] == [
        type(m) for m in res.modules() if not isinstance(m, ZeroPadShortcut | Add)
    ]


def test_zero_init_residual_makes_blocks_start_as_identity() -> None:
    model = cnnzoo.create_model("resnet18", zero_init_residual=True)
    block = model.layer1[0]
    assert not block.bn2.weight.any()
    x = torch.relu(torch.randn(1, 64, 8, 8))  # a block's input is already non-negative
    assert torch.equal(block.eval()(x), x)


def test_plain_network_refuses_zero_init() -> None:
    with pytest.raises(ValueError, match="plain"):
        cnnzoo.create_model("plain20_cifar", zero_init_residual=True)
