"""The residual descendants of ResNet: pre-activation ResNet, Wide ResNet, ResNeXt and
stochastic depth. Checks their geometry against the papers and torchvision, and that they are all
the one shared `ResidualBlock`.

Large networks are built on the meta device (no memory, no initialization) wherever only shapes
and counts matter.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnzoo import analysis, create_model, get_spec, list_models
from cnnzoo.layers import DropPath, ResidualBlock, linear_decay
from cnnzoo.layers.shortcut import ZeroPadShortcut
from cnnzoo.models.wide_resnet import cifar_wide_resnet

TORCHVISION_EQUAL = (
    "wide_resnet50_2",
    "wide_resnet101_2",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
)
PREACT = (
    "preact_resnet110_cifar",
    "preact_resnet164_cifar",
    "preact_resnet1001_cifar",
    "preact_resnet18",
    "preact_resnet50",
)
WRN_CIFAR = ("wrn16_4_cifar", "wrn16_8_cifar", "wrn28_10_cifar", "wrn40_4_cifar")
RESNEXT_CIFAR = ("resnext29_8x64d_cifar", "resnext29_16x64d_cifar")
STOCHASTIC_DEPTH = ("resnet110_sd_cifar", "resnet1202_sd_cifar")
ALL = PREACT + WRN_CIFAR + TORCHVISION_EQUAL + RESNEXT_CIFAR + STOCHASTIC_DEPTH

# Parameter counts the papers report, in millions to one decimal: He et al. 2016 (Sec. 4),
# Zagoruyko & Komodakis (results table), Xie et al. (Table 7); ResNet-110's 1.7M is He et al.
# 2015, Sec. 4.2, for the same layers.
PAPER_MILLIONS = {
    "preact_resnet110_cifar": 1.7,
    "preact_resnet164_cifar": 1.7,
    "preact_resnet1001_cifar": 10.2,
    "wrn16_4_cifar": 2.7,
    "wrn16_8_cifar": 11.0,
    "wrn28_10_cifar": 36.5,
    "wrn40_4_cifar": 8.9,
    "resnext29_8x64d_cifar": 34.4,
    "resnext29_16x64d_cifar": 68.1,
}


pytestmark = pytest.mark.usefixtures("one_thread")


meta_model = functools.cache(analysis.meta_model)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def millions(n: int) -> float:
    return round(n / 1e5) / 10


def blocks(model: nn.Module) -> list[nn.Module]:
    return [b for i in range(1, model.num_stages + 1) for b in getattr(model, f"layer{i}")]


def test_all_names_registered():
    assert set(ALL) <= set(list_models())
    families = {get_spec(n).family for n in ALL}
    assert families == {"preact_resnet", "wide_resnet", "resnext", "stochastic_depth"}


# Counting MACs of the 1000+-layer networks on the meta device takes seconds each; the contract
# test covers them, and the stochastic-depth specs are resnet*_cifar's layers (checked below).
SLOW_TO_COUNT = {"preact_resnet1001_cifar", *STOCHASTIC_DEPTH}


@pytest.mark.parametrize("name", [n for n in ALL if n not in STOCHASTIC_DEPTH])
def test_spec_counts_match_the_build(name):
    spec = get_spec(name)
    model = meta_model(name)
    assert num_params(model) == spec.num_params
    if name not in SLOW_TO_COUNT:
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, *spec.input_size, device="meta"))
        assert counter.get_total_flops() // 2 == spec.macs
    assert spec.paper.arxiv and spec.paper.year and spec.paper.authors
    assert spec.deviations or spec.torchvision_name, "say how it differs from the paper"
    assert all(r.source for r in spec.results)


@pytest.mark.parametrize("name", TORCHVISION_EQUAL)
def test_torchvision_equal_structure(name):
    spec = get_spec(name)
    assert spec.torchvision_name == name
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)()
    ours = meta_model(name)
    assert num_params(ours) == num_params(reference) == spec.num_params
    theirs = {k: v.shape for k, v in reference.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == theirs


def test_torchvision_names_only_where_equal():
    for name in ALL:
        expected = name if name in TORCHVISION_EQUAL else None
        assert get_spec(name).torchvision_name == expected


@pytest.mark.parametrize("name", TORCHVISION_EQUAL)
def test_torchvision_outputs_equal(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)()
    with torch.no_grad():
        # Random BN statistics and affine parameters, so a misplaced BN would show.
        for m in reference.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    with torch.device("meta"):
        ours = create_model(name)
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)
    reference.eval()
    ours.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert got.shape == (1, 1000)
    assert (got - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", sorted(PAPER_MILLIONS))
def test_parameter_counts_match_the_papers(name):
    model = meta_model(name)
    # The papers count convolution and FC weights; BN's scale and shift move two of them
    # (ResNet-1001: 10.33M, ResNeXt-29 16x64d: 68.16M) past a rounding boundary.
    conv_fc = sum(
        p.numel() for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)
        for p in m.parameters()
    )  # fmt: skip
    assert millions(conv_fc) == PAPER_MILLIONS[name]
    total = num_params(model)
    if millions(total) != PAPER_MILLIONS[name]:
        assert any(f"{PAPER_MILLIONS[name]}M" in d for d in get_spec(name).deviations)


# --- pre-activation -------------------------------------------------------------------------


def zero_branch(block: ResidualBlock) -> ResidualBlock:
    with torch.no_grad():
        getattr(block, f"conv{block.num_convs}").weight.zero_()
    return block


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_channels": 8, "out_channels": 8},
        {"in_channels": 16, "out_channels": 16, "width": 4, "bottleneck": True},
        {"in_channels": 16, "out_channels": 16, "width": 8, "bottleneck": True, "groups": 4},
        {"in_channels": 8, "out_channels": 8, "dropout": 0.3, "drop_path": 0.2},
    ],
)
@pytest.mark.parametrize("train", [True, False])
def test_preact_identity_path_is_clean(kwargs, train):
    torch.manual_seed(0)
    block = zero_branch(ResidualBlock(**kwargs, preact=True)).train(train)
    x = torch.randn(2, kwargs["in_channels"], 6, 6)  # negative values included
    assert torch.equal(block(x), x)
    # The post-activation block is not clean: its ReLU after the addition clips x.
    post = zero_branch(ResidualBlock(**kwargs)).train(train)
    assert not torch.equal(post(x), x)
    assert torch.equal(post(x), torch.relu(x))


def test_preact_identity_inside_a_network_and_the_first_unit():
    torch.manual_seed(0)
    model = create_model("preact_resnet110_cifar").eval()
    inner = zero_branch(model.layer2[3])
    x = torch.randn(2, 32, 16, 16)
    assert torch.equal(inner(x), x)
    # The first unit activates its input before the split (He et al. 2016, appendix): with its
    # branch zeroed it returns BN-ReLU of the stem output, not the raw stem output.
    first = zero_branch(model.layer1[0])
    x = torch.randn(2, 16, 32, 32)
    assert torch.equal(first(x), first.relu1(first.bn1(x)))
    assert all(not b.shortcut_activated for b in blocks(model)[1:] if b.downsample is None)


@pytest.mark.parametrize(
    ("name", "per_stage", "outs", "widths"),
    [
        ("preact_resnet110_cifar", 18, (16, 32, 64), (16, 32, 64)),
        ("preact_resnet164_cifar", 18, (64, 128, 256), (16, 32, 64)),
        ("preact_resnet1001_cifar", 111, (64, 128, 256), (16, 32, 64)),
    ],
)
def test_preact_cifar_geometry(name, per_stage, outs, widths):
    model = meta_model(name)
    assert isinstance(model.bn1, nn.Identity) and isinstance(model.final_bn, nn.BatchNorm2d)
    for i, (out, width) in enumerate(zip(outs, widths, strict=True), start=1):
        stage = getattr(model, f"layer{i}")
        assert len(stage) == per_stage
        assert all(type(b) is ResidualBlock and b.preact for b in stage)
        assert stage[0].conv1.out_channels == width and stage[-1].add is not None
        assert getattr(stage[-1], f"conv{stage[-1].num_convs}").out_channels == out
    shortcuts = [b.downsample for b in blocks(model) if b.downsample is not None]
    if "110" in name:
        assert all(isinstance(s, ZeroPadShortcut) for s in shortcuts)
    else:  # projections without BN, on the activated input
        assert len(shortcuts) == 3
        assert all(len(s) == 1 and isinstance(s[0], nn.Conv2d) for s in shortcuts)


def test_preact_imagenet_forms():
    for name, reference in (("preact_resnet18", "resnet18"), ("preact_resnet50", "resnet50")):
        ours, post = meta_model(name), meta_model(reference)
        assert all(b.preact for b in blocks(ours))
        # Same convolutions as the 2015 network; only BN placement differs.
        convs = [m.weight.shape for m in ours.modules() if isinstance(m, nn.Conv2d)]
        assert convs == [m.weight.shape for m in post.modules() if isinstance(m, nn.Conv2d)]
        assert get_spec(name).macs == get_spec(reference).macs
    with pytest.raises(TypeError):
        create_model("preact_resnet18", zero_init_residual=True)


# --- Wide ResNet ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", WRN_CIFAR)
def test_wrn_geometry(name):
    depth, k = (int(v) for v in name.removeprefix("wrn").removesuffix("_cifar").split("_"))
    model = meta_model(name)
    assert model.conv1.out_channels == 16
    for i, base in enumerate((16, 32, 64), start=1):
        stage = getattr(model, f"layer{i}")
        assert len(stage) == (depth - 4) // 6
        assert all(type(b) is ResidualBlock and b.preact and b.num_convs == 2 for b in stage)
        assert all(b.conv1.out_channels == b.conv2.out_channels == base * k for b in stage)
        # A 1x1 projection (no BN) where the shape changes, identity elsewhere.
        assert isinstance(stage[0].downsample[0], nn.Conv2d) and len(stage[0].downsample) == 1
        assert all(b.downsample is None for b in stage[1:])
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    with pytest.raises(ValueError, match="6n\\+4"):
        cifar_wide_resnet(depth=27, widen_factor=2)


def test_wrn_dropout_sits_between_the_convolutions():
    spec = get_spec("wrn16_4_cifar")
    assert spec.overrides()["dropout"].default == 0.0
    model = create_model("wrn16_4_cifar", dropout=0.3)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == len(blocks(model)) == 6
    assert all(d.p == 0.3 for d in dropouts)

    block = model.layer2[1]
    order = []
    for child_name, child in block.named_children():
        child.register_forward_hook(lambda m, i, o, n=child_name: order.append(n))
    block.eval()(torch.randn(1, block.conv1.in_channels, 16, 16))
    # Sec. 2.4: BN-ReLU-conv, then dropout after the ReLU and right before the second conv.
    assert order == ["bn1", "relu1", "conv1", "bn2", "relu2", "dropout", "conv2", "add"]

    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))
        model.eval()
        assert torch.equal(model(x), model(x))


# --- ResNeXt --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cardinality", "group_width"),
    [("resnext50_32x4d", 32, 4), ("resnext101_32x8d", 32, 8), ("resnext101_64x4d", 64, 4)],
)
def test_resnext_imagenet_cardinality(name, cardinality, group_width):
    model = meta_model(name)
    for i in range(1, 5):
        for block in getattr(model, f"layer{i}"):
            assert type(block) is ResidualBlock  # cardinality is a parameter, not a class
            assert block.conv2.groups == cardinality
            assert block.conv2.in_channels == cardinality * group_width * 2 ** (i - 1)
    # torchvision's layout: the stride sits in the grouped 3x3.
    assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv1.stride == (1, 1)


@pytest.mark.parametrize(
    ("name", "cardinality"), [("resnext29_8x64d_cifar", 8), ("resnext29_16x64d_cifar", 16)]
)
def test_resnext_cifar_template(name, cardinality):
    model = meta_model(name)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.out_channels == 64
    for i, out in enumerate((256, 512, 1024), start=1):
        stage = getattr(model, f"layer{i}")
        assert len(stage) == 3
        for block in stage:
            assert type(block) is ResidualBlock and not block.preact
            assert block.conv3.out_channels == out
            assert block.conv2.groups == cardinality
            assert block.conv2.in_channels // cardinality == 64 * 2 ** (i - 1)  # d doubles
    assert model.fc.in_features == 1024


# --- drop-path across the families ----------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in ALL if n not in STOCHASTIC_DEPTH])
def test_every_family_takes_drop_path(name):
    overrides = get_spec(name).overrides()
    assert {"drop_path_rate", "drop_path_mode"} <= set(overrides)
    if get_spec(name).num_params > 30_000_000:
        return  # the schedule code is shared; building the largest ones again adds nothing
    with torch.device("meta"):
        model = create_model(name, drop_path_rate=0.2, drop_path_mode="sample")
    gates = [m for m in model.modules() if isinstance(m, DropPath)]
    assert [g.drop_prob for g in gates] == pytest.approx(linear_decay(len(blocks(model)), 0.2))
    assert all(g.mode == "sample" for g in gates)


def test_stochastic_depth_is_resnet_plus_drop_path():
    for depth in (110, 1202):
        sd, plain = get_spec(f"resnet{depth}_sd_cifar"), get_spec(f"resnet{depth}_cifar")
        assert sd.builder is plain.builder
        assert (sd.num_params, sd.macs) == (plain.num_params, plain.macs)
        assert sd.arch["drop_path_rate"] == 0.5
        assert sd.paper.arxiv == "1603.09382"


@pytest.mark.parametrize(
    ("build", "kwargs", "rule"),
    [
        ("cifar_resnet", {"depth": 21}, "6n\\+2"),
        ("cifar_resnet", {"depth": 2}, "6n\\+2"),  # no blocks at all
        ("cifar_preact_resnet", {"depth": 100, "bottleneck": True}, "9n\\+2"),
        ("cifar_wide_resnet", {"depth": 4, "widen_factor": 1}, "6n\\+4"),
    ],
)
def test_cifar_depths_that_no_block_count_gives_are_refused(build, kwargs, rule):
    from cnnzoo.models import preact_resnet, resnet, wide_resnet

    builders = {
        "cifar_resnet": resnet.cifar_resnet,
        "cifar_preact_resnet": preact_resnet.cifar_preact_resnet,
        "cifar_wide_resnet": wide_resnet.cifar_wide_resnet,
    }
    with pytest.raises(ValueError, match=f"depth must be {rule} .*got {kwargs['depth']}"):
        builders[build](**kwargs)
