"""Drop-path (Stochastic Depth, Huang et al. 2016): schedule, determinism and unbiasedness.

Statistical tests use fixed seeds and a 4-sigma tolerance on binomial frequencies, so they are
deterministic and would fail on a wrong schedule, a missing rescale or a shared/independent mix-up.
"""

from __future__ import annotations

import math

import pytest
import torch

from cnnzoo import create_model, get_spec
from cnnzoo.layers import DropPath, ResidualBlock, linear_decay
from cnnzoo.models.resnet import ResNet, cifar_stages

MODES = ("batch", "sample")
SIGMAS = 4.0


pytestmark = pytest.mark.usefixtures("one_thread")


def binomial_tol(p: float, n: int) -> float:
    """SIGMAS standard deviations of the frequency of an event of probability p in n draws."""
    return SIGMAS * math.sqrt(p * (1 - p) / n)


def tiny_resnet(mode: str, drop_path_rate: float = 0.5) -> ResNet:
    """Twelve basic blocks of 4 channels: the real `ResNet` and schedule, cheap to run."""
    return ResNet(
        stages=cifar_stages(4, (4, 4, 4)), stem="cifar", stem_channels=4, bottleneck=False,
        drop_path_rate=drop_path_rate, drop_path_mode=mode, num_classes=2,
    )  # fmt: skip


def drop_paths(model: torch.nn.Module) -> list[DropPath]:
    return [m for m in model.modules() if isinstance(m, DropPath)]


def test_batch_is_the_default_mode():
    assert DropPath(0.1).mode == "batch"
    assert ResidualBlock(4, 4, drop_path=0.1).drop_path.mode == "batch"
    for name in ("resnet56_cifar", "preact_resnet164_cifar", "wrn28_10_cifar", "resnext50_32x4d"):
        assert get_spec(name).overrides()["drop_path_mode"].default == "batch"


def test_linear_decay_rule():
    # Huang et al. Eq. (4): survival p_l = 1 - (l / L)(1 - p_L); drop = 1 - p_l.
    probs = linear_decay(54, 0.5)
    assert len(probs) == 54
    for block, drop in enumerate(probs, start=1):
        assert drop == pytest.approx(1 - (1 - (block / 54) * (1 - 0.5)))
    assert probs[-1] == pytest.approx(0.5)
    assert linear_decay(3, 0.0) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("mode", MODES)
def test_eval_is_deterministic_and_draws_nothing(mode):
    drop = DropPath(0.3, mode).eval()
    x = torch.randn(4, 3, 5, 5)
    rng = torch.get_rng_state()
    out = drop(x)
    assert torch.equal(drop(x), out)
    assert torch.equal(torch.get_rng_state(), rng)
    # "batch" scales by the survival probability at test time; "sample" rescaled in training.
    assert torch.equal(out, x * 0.7 if mode == "batch" else x)

    model = tiny_resnet(mode).eval()
    x = torch.randn(2, 3, 8, 8)
    rng = torch.get_rng_state()
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.equal(first, second)
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("mode", MODES)
def test_dropped_fraction_per_block_follows_linear_decay(mode):
    torch.manual_seed(0)
    model = tiny_resnet(mode, drop_path_rate=0.5).train()
    gates = drop_paths(model)
    assert [g.drop_prob for g in gates] == pytest.approx(linear_decay(12, 0.5))
    assert all(g.mode == mode for g in gates)

    dropped = [0] * len(gates)

    def recorder(index):
        def hook(module, inputs, output):
            per_sample = output.flatten(1).abs().sum(1) == 0
            dropped[index] += int(per_sample.sum())

        return hook

    handles = [g.register_forward_hook(recorder(i)) for i, g in enumerate(gates)]
    batch, calls = (2, 400) if mode == "batch" else (32, 100)
    x = torch.randn(batch, 3, 8, 8)
    with torch.no_grad():
        for _ in range(calls):
            model(x)
    for h in handles:
        h.remove()
    # In "batch" mode the samples of a call share one draw: count calls, not samples.
    draws = calls if mode == "batch" else calls * batch
    counts = [d // batch for d in dropped] if mode == "batch" else dropped
    for gate, count in zip(gates, counts, strict=True):
        assert abs(count / draws - gate.drop_prob) <= binomial_tol(gate.drop_prob, draws), (
            f"block with p={gate.drop_prob:.3f} dropped {count}/{draws}"
        )
    # The schedule is visible: the deepest block drops far more often than the first.
    assert counts[-1] > 4 * counts[0]


def mean_of_draws(fn, n: int) -> torch.Tensor:
    # Accumulate in float64: float32 rounding over thousands of sums would swamp the tolerance.
    total = fn().double()
    for _ in range(n - 1):
        total = total + fn().double()
    return (total / n).float()


def unbiased_tol(mode: str, survival: float, n: int, scale: torch.Tensor) -> torch.Tensor:
    """Bound on |mean of n training outputs - eval output| for a branch of size `scale`.

    "batch": mean = (k/n) * branch vs survival * branch; "sample": mean = (k/n) / survival *
    branch vs branch, per sample.
    """
    tol = binomial_tol(survival, n) * scale.abs()
    return (tol if mode == "batch" else tol / survival) + 1e-5


@pytest.mark.parametrize("mode", MODES)
def test_drop_path_module_is_unbiased(mode):
    torch.manual_seed(1)
    drop = DropPath(0.4, mode)
    x = torch.randn(4, 3, 5, 5)
    expected = drop.eval()(x)
    drop.train()
    n = 4000
    mean = mean_of_draws(lambda: drop(x), n)
    tol = unbiased_tol(mode, 0.6, n, x)
    assert torch.all((mean - expected).abs() <= tol)
    # The tolerance is tight enough to catch a missing rescale (a bias of 40% of the branch).
    assert torch.all(tol < 0.4 * x.abs() * (1 if mode == "batch" else 1 / 0.6) + 1e-5)


@pytest.mark.parametrize("preact", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_residual_block_is_unbiased(mode, preact):
    torch.manual_seed(2)
    block = ResidualBlock(6, 6, preact=preact, drop_path=0.3, drop_path_mode=mode).eval()
    x = torch.randn(4, 6, 5, 5)
    seen = {}
    # A post-activation block ends in a ReLU, which is not linear in the gate: its expectation
    # is preserved at the residual addition, so the test watches the `Add` module's output.
    block.add.register_forward_hook(lambda m, i, out: seen.__setitem__("sum", out.clone()))
    block.drop_path.register_forward_hook(lambda m, i, out: seen.__setitem__("branch", i[0]))
    with torch.no_grad():
        block(x)
        expected, branch = seen["sum"], seen["branch"].clone()
        block.drop_path.train()  # BN stays in eval mode: only the gate is random
        n = 2000

        def draw():
            block(x)
            return seen["sum"]

        mean = mean_of_draws(draw, n)
    assert torch.all((mean - expected).abs() <= unbiased_tol(mode, 0.7, n, branch))


def test_batch_mode_drops_the_whole_mini_batch_together():
    torch.manual_seed(3)
    drop = DropPath(0.5, "batch").train()
    x = torch.ones(16, 2, 3, 3)
    outcomes = set()
    for _ in range(200):
        out = drop(x)
        kept = out.flatten(1).sum(1) > 0
        assert kept.all() or not kept.any()
        assert torch.equal(out, x) or torch.equal(out, torch.zeros_like(x))  # no rescaling
        outcomes.add(bool(kept[0]))
    assert outcomes == {True, False}


def test_sample_mode_drops_samples_independently():
    torch.manual_seed(4)
    survival, batch, draws = 0.5, 64, 400
    drop = DropPath(1 - survival, "sample").train()
    x = torch.ones(batch, 1, 2, 2)
    kept_per_draw = []
    for _ in range(draws):
        out = drop(x)
        values = out.flatten(1)[:, 0]
        # Kept samples are rescaled by 1 / survival, dropped ones are zero.
        assert torch.all((values == 0) | (values == 1 / survival))
        kept_per_draw.append(int((values > 0).sum()))
    kept = torch.tensor(kept_per_draw, dtype=torch.float64)
    frac = kept.sum().item() / (batch * draws)
    assert abs(frac - survival) <= binomial_tol(survival, batch * draws)
    # Independent gates: kept counts per draw are Binomial(64, 0.5), variance 16; one shared
    # gate (batch mode) would give 64 * 64 * 0.25 = 1024.
    assert kept.var().item() < 2 * batch * survival * (1 - survival)


def test_stochastic_depth_specs_use_the_papers_schedule():
    for name, depth in (("resnet110_sd_cifar", 110), ("resnet1202_sd_cifar", 1202)):
        spec = get_spec(name)
        assert spec.arch["depth"] == depth
        assert spec.arch["drop_path_rate"] == 0.5  # p_L = 0.5, Huang et al. Sec. 4
        assert "drop_path_rate" not in spec.overrides()
        assert spec.overrides()["drop_path_mode"].default == "batch"
    # Building the 110-layer one is cheap; the 1202-layer one shares the builder.
    gates = drop_paths(create_model("resnet110_sd_cifar"))
    assert [g.drop_prob for g in gates] == pytest.approx(linear_decay(54, 0.5))
    assert all(g.mode == "batch" for g in gates)
    sample = create_model("resnet110_sd_cifar", drop_path_mode="sample")
    assert all(g.mode == "sample" for g in drop_paths(sample))
    with pytest.raises(TypeError):
        create_model("resnet110_sd_cifar", drop_path_rate=0.2)
