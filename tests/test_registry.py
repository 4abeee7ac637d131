"""The public registry API and its errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import cnnzoo
from cnnzoo.errors import OptionError, UnknownNameError, UsageError
from cnnzoo.registry import natural_key
from cnnzoo.specs import SPECS


def test_list_models_sorts_naturally_and_filters_by_glob_or_substring() -> None:
    names = cnnzoo.list_models()
    assert len(names) == len(set(names)) and set(names) == set(SPECS)
    assert names == sorted(names, key=natural_key)
    cifar = cnnzoo.list_models("resnet*_cifar")
    assert (
        cifar.index("resnet20_cifar")
        < cifar.index("resnet56_cifar")
        < cifar.index("resnet110_cifar")
    )  # numbers by value, not resnet110 before resnet20
    vgg = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
    assert cnnzoo.list_models("vgg*") == vgg
    assert cnnzoo.list_models("vgg") == vgg  # a plain word matches as a substring
    assert cnnzoo.list_models("VGG16") == ["vgg16", "vgg16_bn"]
    assert cnnzoo.list_models("_bn") == [n for n in vgg if n.endswith("_bn")]
    assert "resnet20_cifar" in cnnzoo.list_models("*_cifar")
    assert cnnzoo.list_models("no_such_*") == [] and cnnzoo.list_models("no_such") == []


def test_registry_errors_are_usage_errors_of_the_old_types() -> None:
    """The CLI prints a UsageError as one line; Python callers who caught KeyError / TypeError
    keep working, and the message is not quoted as KeyError's own would be."""
    with pytest.raises(UnknownNameError) as info:
        cnnzoo.get_spec("resnet5")
    assert isinstance(info.value, KeyError) and isinstance(info.value, UsageError)
    assert str(info.value).startswith("unknown model 'resnet5'. Did you mean: resnet50")
    with pytest.raises(OptionError) as info:
        cnnzoo.create_model("lenet5", num_class=3)
    assert isinstance(info.value, TypeError) and isinstance(info.value, UsageError)


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(KeyError) as info:
        cnnzoo.create_model("resnet5")
    message = info.value.args[0]
    assert "unknown model 'resnet5'" in message
    assert "resnet50" in message and "resnet56_cifar" in message


def test_misspelled_name_suggests_by_similarity() -> None:
    with pytest.raises(KeyError, match="alexnet"):
        cnnzoo.get_spec("alexnte")


def test_unknown_override_names_the_valid_ones() -> None:
    with pytest.raises(TypeError) as info:
        cnnzoo.create_model("resnet18", num_class=10)
    message = str(info.value)
    assert "num_class" in message and "num_classes" in message and "zero_init_residual" in message


def test_architecture_arguments_are_not_overridable() -> None:
    # The depth is what makes resnet20_cifar what it is; changing it is a different model.
    with pytest.raises(TypeError, match="unknown override"):
        cnnzoo.create_model("resnet20_cifar", depth=56)


@pytest.mark.parametrize(
    ("override", "expected"),
    [({"num_classes": "10"}, "int"), ({"zero_init_residual": 1}, "bool"),
     ({"shortcut": "C"}, "'A', 'B'"), ({"num_classes": True}, "int")],
)  # fmt: skip
def test_override_of_the_wrong_type_is_refused(override: dict, expected: str) -> None:
    with pytest.raises(TypeError, match=expected):
        cnnzoo.create_model("resnet20_cifar", **override)


def test_overrides_take_effect() -> None:
    model = cnnzoo.create_model("resnet20_cifar", num_classes=100, in_chans=1, shortcut="B")
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 100)
    # Option B adds projection parameters that option A does not have.
    assert sum(p.numel() for p in model.parameters()) > cnnzoo.get_spec("resnet20_cifar").num_params


def test_spec_is_frozen() -> None:
    spec = cnnzoo.get_spec("vgg16")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.num_params = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.arch["config"] = "A"  # type: ignore[index]


def test_every_spec_is_complete() -> None:
    for name in cnnzoo.list_models():
        spec = cnnzoo.get_spec(name)
        assert spec.name == name and spec.family and spec.summary
        assert spec.paper.title and spec.paper.authors and 1989 <= spec.paper.year <= 2017
        assert spec.paper.arxiv or spec.paper.venue
        assert len(spec.input_size) == 3 and spec.num_classes > 1
        assert spec.num_params > 0 and spec.macs > 0
        assert all(r.source for r in spec.results)
        if not name.endswith("_tv"):
            assert spec.dataset in {"imagenet", "cifar10", "cifar100", "mnist"}


def test_wrong_rank_input_is_refused() -> None:
    model = cnnzoo.create_model("lenet5")
    with pytest.raises(ValueError, match=r"4-D batch.*unsqueeze"):
        model(torch.randn(1, 32, 32))


def test_wrong_channels_message_says_how_to_fix() -> None:
    model = cnnzoo.create_model("resnet20_cifar")
    with pytest.raises(ValueError) as info:
        model(torch.randn(1, 1, 32, 32))
    message = str(info.value)
    assert "resnet20_cifar expects 3 input channel(s)" in message
    assert "in_chans=1" in message
