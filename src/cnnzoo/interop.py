"""Weight interchange with torchvision.

A zoo model whose spec names a `torchvision_name` has the same module layout as torchvision's
builder of that name, so state dicts carry over key for key. What these functions add is
checking: a state dict of the wrong form is refused with the missing, unexpected and mismatched
keys listed and the registered model it would fit named.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from torch import Tensor, nn

from cnnzoo.analysis import meta_model
from cnnzoo.registry import get_spec, list_models

__all__ = ["StateDictMismatchError", "from_torchvision", "to_torchvision"]


class StateDictMismatchError(ValueError):
    """A state dict does not have the form of the model it is loaded into."""


def _zoo_name(model: nn.Module) -> str:
    name = getattr(model, "name", None)
    if not isinstance(name, str):
        raise TypeError(
            f"expected a cnnzoo model (from cnnzoo.create_model), got {type(model).__name__}"
        )
    return name


@functools.cache
def _torchvision_forms() -> dict[str, dict[str, tuple[int, ...]]]:
    """Key -> shape of every default-built model that has a torchvision equivalent."""
    forms = {}
    for name in list_models():
        if get_spec(name).torchvision_name is None:
            continue
        model = meta_model(name)
        forms[name] = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return forms


def _fitting_models(shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Registered models whose default state dict has exactly these keys (shapes may differ only
    in the classifier's number of classes)."""
    fits = []
    for name, form in _torchvision_forms().items():
        if form.keys() != shapes.keys():
            continue
        differing = [k for k in form if form[k] != shapes[k]]
        if len(differing) <= 2:  # the classifier's weight and bias (another num_classes)
            fits.append(name)
    return fits


def _describe_mismatch(
    model_name: str, model_shapes: Mapping[str, tuple[int, ...]], shapes: dict
) -> str:
    missing = sorted(model_shapes.keys() - shapes.keys())
    unexpected = sorted(shapes.keys() - model_shapes.keys())
    wrong = sorted(
        f"{k}: state dict {shapes[k]} vs model {model_shapes[k]}"
        for k in model_shapes.keys() & shapes.keys()
        if model_shapes[k] != shapes[k]
    )
    lines = [f"the state dict does not fit {model_name}:"]
    for title, keys in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("mismatched shapes", wrong),
    ):
        if keys:
            shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
            lines.append(f"  {title}: {shown}")
    fits = [n for n in _fitting_models(shapes) if n != model_name]
    if fits:
        lines.append(f"  it fits: {', '.join(fits)} (cnnzoo.create_model({fits[0]!r}))")
    elif wrong and not missing and not unexpected:
        lines.append("  only shapes differ: was it saved with another num_classes or in_chans?")
    return "\n".join(lines)


def from_torchvision(model: nn.Module, state_dict: Mapping[str, Tensor]) -> nn.Module:
    """Load a torchvision state dict (for example a pretrained weight file read from disk with
    ``torch.load(path, weights_only=True)``) into the matching zoo model.

    Args:
        model: a model from `cnnzoo.create_model` whose spec has a `torchvision_name`.
        state_dict: the torchvision model's state dict.

    Returns:
        The same model, with the weights loaded.

    Raises:
        StateDictMismatchError: the model has no torchvision equivalent, or the state dict is of
            another form; the message lists missing, unexpected and mismatched keys and names
            the model that would fit.
    """
    name = _zoo_name(model)
    spec = get_spec(name)
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    if spec.torchvision_name is None:
        fits = _fitting_models(shapes)
        hint = f" The state dict fits {', '.join(fits)}." if fits else ""
        raise StateDictMismatchError(
            f"{name} has no torchvision equivalent (it follows the paper, see "
            f"`cnnzoo info {name}`), so torchvision weights would compute something else.{hint}"
        )
    model_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if model_shapes != shapes:
        raise StateDictMismatchError(_describe_mismatch(name, model_shapes, shapes))
    model.load_state_dict(state_dict, strict=True)
    return model


def to_torchvision(model: nn.Module) -> dict[str, Tensor]:
    """A state dict that torchvision's model of the same form loads with ``strict=True``.

    Raises:
        StateDictMismatchError: the model has no torchvision equivalent.
    """
    name = _zoo_name(model)
    spec = get_spec(name)
    if spec.torchvision_name is None:
        raise StateDictMismatchError(
            f"{name} has no torchvision equivalent; see `cnnzoo list` for the models that do."
        )
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
