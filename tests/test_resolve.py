"""One resolver for what the user named: a registered name, a module, a factory, a run folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

import cnnzoo
from cnnzoo.errors import CheckpointError, UnknownNameError, UsageError
from cnnzoo.resolve import RANDOM_INIT, resolve


def test_registered_name_is_analyzed_by_name() -> None:
    target = resolve("resnet20_cifar")
    assert (target.kind, target.name, target.input_size) == (
        "registered",
        "resnet20_cifar",
        (3, 32, 32),
    )
    assert target.weights == RANDOM_INIT and target.analyzable() == "resnet20_cifar"
    assert isinstance(target.build(), nn.Module)


def test_module_and_factories(tmp_path: Path) -> None:
    model = cnnzoo.create_model("lenet5")
    target = resolve(model)
    assert (target.kind, target.name, target.input_size) == ("module", "lenet5", (1, 32, 32))
    assert target.build() is model
    source = tmp_path / "mine.py"
    source.write_text(
        "from torch import nn\ndef make():\n    return nn.Sequential(nn.Conv2d(3, 4, 3))\n"
    )
    target = resolve(f"{source}:make")
    assert (target.kind, target.name, target.input_size) == ("factory", "Sequential", None)
    assert isinstance(target.analyzable(), nn.Sequential)
    target = resolve("torch.nn:Identity")  # package.module:factory
    assert target.kind == "factory" and isinstance(target.module, nn.Identity)


def test_what_cannot_be_resolved_says_why(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: resnet50"):
        resolve("resnet5")
    with pytest.raises(UsageError, match="no such file: .*nope.py"):
        resolve(f"{tmp_path}/nope.py:make")
    with pytest.raises(UsageError, match="has no callable named 'missing'"):
        resolve("torch.nn:missing")
    with pytest.raises(UsageError, match="is not a run directory \\(no such folder\\)"):
        resolve(f"{tmp_path}/no_run")
    with pytest.raises(CheckpointError, match="neither a run directory"):
        resolve(tmp_path)
