"""Errors of the torchvision weight interchange (the happy path is in the contract test)."""

from __future__ import annotations

import pytest
import torch
import torchvision

import cnnzoo
from cnnzoo.interop import StateDictMismatchError


def _tv_state(name: str, **kwargs) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None, **kwargs).state_dict()


def test_paper_model_refuses_torchvision_weights_and_names_the_tv_form() -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model("resnet50")
    with pytest.raises(StateDictMismatchError, match=r"no torchvision equivalent.*resnet50_tv"):
        cnnzoo.from_torchvision(model, _tv_state("resnet50"))


def test_wrong_form_lists_keys_and_names_the_model_that_fits() -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model("resnet18")
    with pytest.raises(StateDictMismatchError) as info:
        cnnzoo.from_torchvision(model, _tv_state("resnet34"))
    message = str(info.value)
    assert "does not fit resnet18" in message
    assert "unexpected keys: layer1.2.bn1.bias" in message
    assert "it fits: resnet34" in message


def test_other_num_classes_is_explained() -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model("vgg11", num_classes=10)
    with pytest.raises(StateDictMismatchError) as info:
        cnnzoo.from_torchvision(model, _tv_state("vgg11"))
    message = str(info.value)
    assert "classifier.6.weight: state dict (1000, 4096) vs model (10, 4096)" in message
    assert "num_classes" in message


def test_googlenet_state_dict_with_aux_heads_needs_aux_logits() -> None:
    state = _tv_state("googlenet", aux_logits=True, init_weights=False)
    with torch.device("meta"):
        plain = cnnzoo.create_model("googlenet_tv")
        with_aux = cnnzoo.create_model("googlenet_tv", aux_logits=True)
    with pytest.raises(StateDictMismatchError, match="unexpected keys: aux1"):
        cnnzoo.from_torchvision(plain, state)
    # with the heads built, every key fits (assign: the meta model takes the tensors as they are)
    assert cnnzoo.from_torchvision(with_aux, state) is with_aux


def test_non_zoo_module_is_refused() -> None:
    with pytest.raises(TypeError, match="expected a cnnzoo model"):
        cnnzoo.to_torchvision(torch.nn.Linear(2, 2))
