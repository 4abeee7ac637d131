"""NiN, FractalNet, DenseNet and SqueezeNet: paper figures, torchvision equality, drop-path."""

from __future__ import annotations

import itertools
import math
from unittest import mock

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from cnnzoo.analysis import meta_model
from cnnzoo.layers import Concat
from cnnzoo.layers.drop_path import join_keep_mask, sample_global_column
from cnnzoo.models.densenet import DenseArch, DenseNet
from cnnzoo.models.fractalnet import Fractal, FractalJoin, FractalNet
from cnnzoo.models.squeezenet import LAYOUTS, Fire, FireSpec


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _tv_meta(name: str) -> nn.Module:
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None)


def _longest_conv_path(model: nn.Module) -> int:
    """Most convolutions on one input-to-output path of the model's FX graph."""
    graph = torch.fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    depth: dict[torch.fx.Node, int] = {}
    for node in graph.nodes:
        before = max((depth[n] for n in node.all_input_nodes), default=0)
        is_conv = node.op == "call_module" and isinstance(modules[node.target], nn.Conv2d)
        depth[node] = before + is_conv
    return max(depth.values())


# --- Network in Network --------------------------------------------------------------------


def test_nin_parameters_follow_its_table() -> None:
    """Three mlpconv layers of the public CIFAR-10 model; no fully connected layer at all."""
    model = meta_model("nin_cifar")
    sizes = [(3, 192, 5), (192, 160, 1), (160, 96, 1), (96, 192, 5), (192, 192, 1),
             (192, 192, 1), (192, 192, 3), (192, 192, 1), (192, 10, 1)]  # fmt: skip
    assert _num_params(model) == sum((k * k * cin + 1) * cout for cin, cout, k in sizes)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2


def test_nin_global_average_pools_an_8x8_class_map() -> None:
    model = cnnzoo.create_model("nin_cifar").eval()
    seen = {}
    model.avgpool.register_forward_hook(lambda m, args, out: seen.update(shape=args[0].shape))
    logits = model(torch.randn(2, 3, 32, 32))
    assert seen["shape"] == (2, 10, 8, 8)
    assert logits.shape == (2, 10)
    cifar100 = cnnzoo.create_model("nin_cifar", num_classes=100).eval()
    assert cifar100(torch.randn(1, 3, 32, 32)).shape == (1, 100)


# --- FractalNet ----------------------------------------------------------------------------


def _small_fractal(columns: int, **overrides) -> FractalNet:
    kwargs = {"channels": (4, 6), "columns": columns, "dropout": 0.0}
    return FractalNet(**(kwargs | overrides))


@pytest.mark.parametrize("columns", [1, 2, 3, 4])
def test_expansion_rule_depth_and_size(columns: int) -> None:
    """A block of C columns has 2**C - 1 convolutions, 2**(C-1) on its longest path."""
    model = _small_fractal(columns).eval()
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert convs == 2 * (2**columns - 1)
    # Joins that follow each other are one: 2**(C-2) joins per block, each of 2..C inputs.
    joins = [m for m in model.blocks[0].modules() if isinstance(m, FractalJoin)]
    assert len(joins) == (2 ** (columns - 2) if columns > 1 else 1)
    assert max(len(j.columns) for j in joins) == columns
    assert columns == 1 or min(len(j.columns) for j in joins) == 2
    assert _longest_conv_path(model) == 2 * 2 ** (columns - 1)


@pytest.mark.parametrize(
    ("name", "depth"), [("fractalnet20_cifar", 20), ("fractalnet40_cifar", 40)]
)
def test_registered_fractalnets_have_their_depth(name: str, depth: int) -> None:
    assert _longest_conv_path(meta_model(name).eval()) == depth


def test_fractalnet20_parameters_against_the_paper() -> None:
    """The paper's layout has 33.7M parameters, not Table 1's 38.6M (a stated deviation)."""
    params = _num_params(meta_model("fractalnet20_cifar"))
    convs = sum(9 * (3 * cin * c + 4 * c * c) for cin, c in
                zip((3, 64, 128, 256, 512), (64, 128, 256, 512, 512), strict=True))  # fmt: skip
    assert params == convs + 2 * 7 * (64 + 128 + 256 + 512 + 512) + 512 * 10 + 10
    assert round(params / 1e6, 1) == 33.7
    spec = cnnzoo.get_spec("fractalnet20_cifar")
    assert any("38.6M" in d for d in spec.deviations)
    assert any("22.9M" in d for d in cnnzoo.get_spec("fractalnet40_cifar").deviations)


def test_fractalnet_eval_is_deterministic() -> None:
    model = _small_fractal(3, dropout=0.3).eval()
    x = torch.randn(2, 3, 8, 8)
    torch.manual_seed(0)
    first = model(x)
    torch.manual_seed(1)
    assert torch.equal(model(x), first)


def test_drop_path_off_trains_the_full_fractal() -> None:
    """With drop-path and dropout off, training runs every column: no randomness, every grad."""
    model = _small_fractal(3, local_drop_prob=0.0, global_drop_ratio=0.0).train()
    x = torch.randn(4, 3, 8, 8)
    torch.manual_seed(0)
    out = model(x)
    torch.manual_seed(1)
    assert torch.equal(model(x), out)
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_drop_path_overrides_reach_the_model() -> None:
    model = meta_model("fractalnet20_cifar", local_drop_prob=0.0, global_drop_ratio=0.0,
                       dropout=0.0, eval_column=2)  # fmt: skip
    assert (model.local_drop_prob, model.global_drop_ratio, model.eval_column) == (0.0, 0.0, 2)
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    joins = [m for m in meta_model("fractalnet20_cifar").modules() if isinstance(m, FractalJoin)]
    assert {j.local_drop_prob for j in joins} == {0.15}
    with pytest.raises(TypeError, match="unknown override"):
        cnnzoo.create_model("fractalnet20_cifar", drop_path=0.1)


@pytest.mark.parametrize(("num_inputs", "drop_prob"), [(2, 0.15), (3, 0.15), (4, 0.9), (2, 0.99)])
def test_local_drop_path_keeps_at_least_one_input(num_inputs: int, drop_prob: float) -> None:
    torch.manual_seed(0)
    masks = torch.stack([join_keep_mask(num_inputs, drop_prob) for _ in range(3000)])
    assert masks.any(dim=1).all()
    assert not masks.all(dim=1).all()  # and it does drop


def test_local_drop_rate_matches_p() -> None:
    """Each input drops with p=0.15, less the rescue when all drop: p - p**n / n per input.

    20,000 joins of 3 inputs: the standard error of the rate is about 0.0015; we allow 5 of them.
    """
    torch.manual_seed(0)
    n, p, draws = 3, 0.15, 20_000
    masks = torch.stack([join_keep_mask(n, p) for _ in range(draws)])
    dropped = 1.0 - masks.float().mean().item()
    tolerance = 5 * math.sqrt(p * (1 - p) / (n * draws))
    assert abs(dropped - (p - p**n / n)) < tolerance


def test_global_drop_path_mix_is_half_and_columns_uniform() -> None:
    torch.manual_seed(0)
    draws = torch.stack([sample_global_column(3, 0.5) for _ in range(6000)])
    global_share = (draws >= 0).float().mean().item()
    assert abs(global_share - 0.5) < 5 * math.sqrt(0.25 / 6000)
    counts = torch.bincount(draws[draws >= 0], minlength=3).float()
    assert counts.shape == (3,) and (counts / counts.sum() - 1 / 3).abs().max() < 0.04


def test_a_join_under_local_drop_path_averages_a_nonempty_subset() -> None:
    join = FractalJoin((0, 1, 2), local_drop_prob=0.5).train()
    inputs = [torch.full((1, 1, 1, 1), float(v)) for v in (1, 10, 100)]
    subset_means = {
        round(sum(s) / len(s), 4)
        for r in (1, 2, 3)
        for s in itertools.combinations((1, 10, 100), r)
    }
    torch.manual_seed(0)
    seen = {round(join(inputs, -1).item(), 4) for _ in range(400)}
    assert seen == subset_means  # every non-empty subset, and nothing else (no empty join)


def _column_convs(fractal: Fractal, column: int) -> list[nn.Module]:
    """The conv units of one column, read from the expansion rule's recursion."""
    if column == 0:
        return [fractal.conv]
    return _column_convs(fractal.first, column - 1) + _column_convs(fractal.second, column - 1)


def _column_forward(model: FractalNet, column: int, x: torch.Tensor) -> torch.Tensor:
    """Run only one column of every block: a plain network."""
    for block in model.blocks:
        for unit in _column_convs(block.fractal, column):
            x = unit(x)
        x = block.pool(x)
    return model.fc(model.flatten(model.avgpool(x)))


def test_global_drop_path_runs_exactly_one_column() -> None:
    model = _small_fractal(3, local_drop_prob=0.0, global_drop_ratio=1.0).train()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():  # training-mode batch norm: each column's output is fixed
        columns = [_column_forward(model, k, x) for k in range(3)]
        chosen = []
        for seed in range(10):
            torch.manual_seed(seed)
            out = model(x)
            matches = [k for k in range(3) if torch.allclose(out, columns[k], atol=1e-5)]
            assert len(matches) == 1
            chosen.append(matches[0])
    assert len(set(chosen)) > 1


def test_deepest_column_mode_equals_running_the_deepest_column() -> None:
    model = _small_fractal(4, eval_column=3).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out = model(x)
        assert torch.allclose(out, _column_forward(model, 3, x), atol=1e-6)
        model.eval_column = None
        assert not torch.allclose(model(x), out, atol=1e-4)


def test_fractalnet_train_graph_traces_and_keeps_its_randomness() -> None:
    model = _small_fractal(3).train()
    graph = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 3, 8, 8)
    torch.manual_seed(3)
    expected = model(x)
    torch.manual_seed(3)
    assert torch.allclose(graph(x), expected)
    outputs = {round(graph(x).sum().item(), 5) for _ in range(8)}
    assert len(outputs) > 1  # drop-path is sampled at run time, not frozen into the graph


def test_shared_drop_path_gate_unchanged() -> None:
    """DropPath now draws through `keep_mask`: same random stream and gates as before."""
    from cnnzoo.layers import DropPath

    x = torch.ones(6, 2)
    torch.manual_seed(5)
    out = DropPath(0.4, "sample").train()(x)
    torch.manual_seed(5)
    gate = (torch.rand(6, 1) < 0.6).float()
    assert torch.equal(out, x * gate / 0.6)


# --- torchvision-equal networks ------------------------------------------------------------

TV_EQUAL = {
    "densenet121": 7_978_856,
    "densenet161": 28_681_000,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "squeezenet1_0": 1_248_424,
    "squeezenet1_1": 1_235_496,
}


@pytest.mark.parametrize(("name", "params"), TV_EQUAL.items())
def test_parameters_and_keys_equal_torchvision(name: str, params: int) -> None:
    ours, theirs = meta_model(name), _tv_meta(name)
    assert _num_params(ours) == _num_params(theirs) == params == cnnzoo.get_spec(name).num_params
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert cnnzoo.get_spec(name).torchvision_name == name


@pytest.mark.parametrize("name", ["densenet121", "densenet161", "squeezenet1_0", "squeezenet1_1"])
def test_torchvision_weights_give_same_outputs(name: str) -> None:
    torch.manual_seed(0)
    reference = torchvision.models.get_model(name, weights=None)
    generator = torch.Generator().manual_seed(1)
    for m in reference.modules():  # so that eval-mode batch norm is not near the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
    model = cnnzoo.create_model(name)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (model.eval()(x) - reference.eval()(x)).abs().max() <= 1e-5


# --- DenseNet ------------------------------------------------------------------------------


def test_densenet121_has_torchvision_module_names() -> None:
    keys = set(meta_model("densenet121").state_dict())
    for key in ("features.conv0.weight", "features.norm0.weight", "features.norm5.bias",
                "features.denseblock1.denselayer1.norm1.weight",
                "features.denseblock1.denselayer1.conv1.weight",
                "features.denseblock1.denselayer1.norm2.weight",
                "features.denseblock1.denselayer1.conv2.weight",
                "features.transition1.norm.weight", "features.transition1.conv.weight",
                "classifier.weight"):  # fmt: skip
        assert key in keys


@pytest.mark.parametrize(
    ("name", "paper_millions"),
    [("densenet40_k12_cifar", 1.0), ("densenet_bc100_k12_cifar", 0.8),
     ("densenet_bc250_k24_cifar", 15.3), ("densenet_bc190_k40_cifar", 25.6)],
)  # fmt: skip
def test_cifar_densenets_match_table2_parameters(name: str, paper_millions: float) -> None:
    assert round(_num_params(meta_model(name)) / 1e6, 1) == paper_millions


def test_densenet40_has_no_bottleneck_nor_compression() -> None:
    model = meta_model("densenet40_k12_cifar")
    layers = [m for n, m in model.named_modules() if n.rsplit(".", 1)[-1].startswith("denselayer")]
    assert len(layers) == 36 and not any(hasattr(m, "conv2") for m in layers)
    transitions = [model.features.transition1.conv, model.features.transition2.conv]
    assert all(t.in_channels == t.out_channels for t in transitions)
    assert not hasattr(model.features, "transition3")


def test_dense_concatenations_are_visible_modules() -> None:
    """Every concatenation is a `Concat` module, each instance called once per forward."""
    model = meta_model("densenet_bc100_k12_cifar").eval()
    concats = [m for m in model.modules() if isinstance(m, Concat)]
    assert len(concats) == 3 * 16 + 3  # one per dense layer, one per block
    calls: list[nn.Module] = []
    for m in concats:
        m.register_forward_hook(lambda module, args, out: calls.append(module))
    model(torch.empty(1, 3, 32, 32, device="meta"))
    assert sorted(map(id, calls)) == sorted(map(id, concats))
    graph = torch.fx.symbolic_trace(model).graph
    assert sum(n.target is torch.cat for n in graph.nodes) == len(concats)


def test_memory_efficient_densenet_matches_plain() -> None:
    arch = DenseArch(4, (3, 3), "cifar", bottleneck=True, compression=0.5)
    plain = DenseNet(arch=arch, num_classes=5).train()
    efficient = DenseNet(arch=arch, num_classes=5, memory_efficient=True).train()
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(3, 3, 8, 8)
    from torch.utils import checkpoint

    with mock.patch.object(checkpoint, "checkpoint", wraps=checkpoint.checkpoint) as spy:
        out_efficient = efficient(x)
    assert spy.call_count == 6
    out_plain = plain(x)
    assert torch.allclose(out_efficient, out_plain, atol=1e-6)
    out_plain.square().sum().backward()
    out_efficient.square().sum().backward()
    for (name, p), q in zip(plain.named_parameters(), efficient.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name


# --- SqueezeNet ----------------------------------------------------------------------------


def test_squeezenet_has_torchvision_module_names() -> None:
    keys = set(meta_model("squeezenet1_0").state_dict())
    assert {"features.3.squeeze.weight", "features.3.expand1x1.weight",
            "features.3.expand3x3.weight", "classifier.1.weight"} <= keys  # fmt: skip


def test_squeezenet_has_50x_fewer_parameters_than_alexnet() -> None:
    """The title's claim, to its one significant figure (the ratio is 48.8)."""
    ratio = _num_params(meta_model("alexnet")) / _num_params(meta_model("squeezenet1_0"))
    assert round(ratio, -1) == 50


def test_fire_table_is_table1() -> None:
    fires = [f for f in LAYOUTS["1_0"].body if isinstance(f, FireSpec)]
    assert [f.squeeze for f in fires] == [16, 16, 32, 32, 48, 48, 64, 64]
    assert [f.out_channels for f in fires] == [128, 128, 256, 256, 384, 384, 512, 512]


def _fires(name: str) -> dict[int, Fire]:
    """Fire modules by their paper number (fire2..fire9)."""
    fires = [m for m in meta_model(name).features if isinstance(m, Fire)]
    return {i + 2: f for i, f in enumerate(fires)}


def test_bypass_placement() -> None:
    simple = _fires("squeezenet1_0_bypass")
    assert {n for n, f in simple.items() if f.add is not None} == {3, 5, 7, 9}
    assert all(f.shortcut is None for f in simple.values())
    complex_ = _fires("squeezenet1_0_complex_bypass")
    assert all(f.add is not None for f in complex_.values())
    assert {n for n, f in complex_.items() if f.shortcut is not None} == {2, 4, 6, 8}
    assert _num_params(meta_model("squeezenet1_0_complex_bypass")) - 1_248_424 == sum(
        cin * cout + cout for cin, cout in ((96, 128), (128, 256), (256, 384), (384, 512))
    )


def test_simple_bypass_adds_the_input_and_keeps_squeezenet_weights() -> None:
    spec = FireSpec(4, 8, 8)
    torch.manual_seed(0)
    plain, bypassed = Fire(16, spec), Fire(16, spec, bypass="simple")
    bypassed.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(2, 16, 5, 5)
    assert torch.allclose(bypassed(x), plain(x) + x)
    torch.manual_seed(0)
    reference = torchvision.models.squeezenet1_0(weights=None)
    model = cnnzoo.create_model("squeezenet1_0_bypass")
    model.load_state_dict(reference.state_dict(), strict=True)
