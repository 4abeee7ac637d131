"""Each recipe's learning rate at given steps."""

from __future__ import annotations

import math

import pytest

from cnnzoo.train.config import TrainConfig
from cnnzoo.train.recipes import RECIPES, default_recipe, get_recipe, resolve_config
from cnnzoo.train.schedule import LearningRate


def _schedule(recipe: str, epochs: int = 100, steps_per_epoch: int = 10, **kw) -> LearningRate:
    config = resolve_config("resnet20_cifar", recipe=recipe, epochs=epochs, **kw)
    return LearningRate(config, steps_per_epoch)


def test_resnet_cifar_divides_by_10_at_half_and_three_quarters() -> None:
    lr = _schedule("resnet-cifar", warmup_steps=0)  # 1,000 steps
    assert [lr.at(s) for s in (0, 499)] == [0.1, 0.1]
    assert lr.at(500) == pytest.approx(0.01) and lr.at(749) == pytest.approx(0.01)
    assert lr.at(750) == pytest.approx(0.001) and lr.at(999) == pytest.approx(0.001)


def test_resnet_cifar_warms_up_at_0_01_until_training_error_below_80_percent() -> None:
    lr = _schedule("resnet-cifar")
    assert lr.at(0) == 0.01 and lr.at(50) == 0.01
    for step in range(50):
        lr.observe_train_error(step, 0.85)  # still above 80%: warm-up continues
    assert lr.at(51) == 0.01
    lr.observe_train_error(51, 0.5)  # one lucky batch does not end it
    assert lr.at(52) == 0.01
    for step in range(52, 60):
        lr.observe_train_error(step, 0.7)
    assert lr.at(60) == 0.1


def test_warm_up_ends_after_its_step_budget() -> None:
    lr = _schedule("resnet-cifar")
    for step in range(400):
        lr.observe_train_error(step, 0.9)
    assert lr.warmup_done and lr.at(400) == 0.1


def test_wide_resnet_multiplies_by_0_2_at_30_60_80_percent() -> None:
    lr = _schedule("wrn-cifar")
    expected = {0: 0.1, 299: 0.1, 300: 0.02, 600: 0.004, 799: 0.004, 800: 0.0008}
    assert {s: lr.at(s) for s in expected} == pytest.approx(expected)
    assert lr.config.nesterov and lr.config.weight_decay == 5e-4


def test_densenet_recipe() -> None:
    lr = _schedule("densenet-cifar")
    assert lr.config.batch_size == 64 and lr.config.nesterov
    assert [lr.at(s) for s in (0, 500, 750)] == pytest.approx([0.1, 0.01, 0.001])


def test_googlenet_decays_4_percent_every_8_epochs() -> None:
    lr = _schedule("googlenet", steps_per_epoch=10)
    assert lr.at(79) == pytest.approx(0.01) and lr.at(80) == pytest.approx(0.0096)
    assert lr.at(160) == pytest.approx(0.01 * 0.96**2)
    assert lr.config.aux_loss_weight == 0.3


def test_fractalnet_divides_whenever_remaining_epochs_halve() -> None:
    lr = _schedule("fractalnet-cifar", epochs=400, steps_per_epoch=1)
    assert [lr.at(s) for s in (199, 200, 300, 350, 375)] == pytest.approx(
        [0.02, 0.002, 0.0002, 0.00002, 0.000002]
    )


def test_plateau_decays_after_patience_epochs_without_improvement() -> None:
    lr = _schedule("resnet-imagenet", plateau_patience=2)
    lr.end_epoch(1.0)
    for _ in range(2):
        lr.end_epoch(1.5)
    assert lr.at(0) == pytest.approx(0.1)
    lr.end_epoch(1.5)  # third epoch without improvement
    assert lr.at(0) == pytest.approx(0.01)


def test_cosine_starts_at_peak_and_ends_at_zero() -> None:
    lr = _schedule("lenet-digits", epochs=10, steps_per_epoch=10)
    assert lr.at(0) == pytest.approx(0.002)
    assert lr.at(50) == pytest.approx(0.001)
    assert lr.at(100) == pytest.approx(0.0, abs=1e-12)


def test_schedule_state_round_trips() -> None:
    lr = _schedule("resnet-imagenet", plateau_patience=0)
    lr.end_epoch(2.0)
    lr.end_epoch(3.0)
    restored = _schedule("resnet-imagenet", plateau_patience=0)
    restored.load_state_dict(lr.state_dict())
    assert restored.at(0) == lr.at(0) == pytest.approx(0.01)
    assert restored.best_val_loss == 2.0 and not math.isinf(restored.best_val_loss)


def test_every_recipe_has_a_citation_and_valid_fields() -> None:
    for name, recipe in RECIPES.items():
        assert recipe.citation
        config = TrainConfig(model="lenet5", recipe=name, **recipe.settings)
        assert config.lr > 0 and config.epochs > 0 and config.batch_size > 0


def test_default_recipe_comes_from_the_family() -> None:
    assert default_recipe("resnet", "cifar10") == "resnet-cifar"
    assert default_recipe("wide_resnet", "cifar10") == "wrn-cifar"
    assert resolve_config("lenet5").recipe == "lenet-digits"
    assert resolve_config("googlenet").recipe == "googlenet"


def test_unknown_recipe_and_option_suggest_the_closest() -> None:
    with pytest.raises(KeyError, match="resnet-cifar"):
        get_recipe("resnet_cifar")
    with pytest.raises(TypeError, match="batch_size"):
        resolve_config("lenet5", batch_sise=3)
