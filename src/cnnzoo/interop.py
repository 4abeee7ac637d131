"""Weight interchange with torchvision.

A zoo model whose spec names a `torchvision_name` has the same module layout as torchvision's
builder of that name, so state dicts carry over key for key. What these functions add is
checking: a state dict of the wrong form is refused with the missing, unexpected and mismatched
keys listed and the registered model it would fit named.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping

from torch import Tensor, nn

from cnnzoo.analysis import meta_model
from cnnzoo.registry import get_spec, list_models

__all__ = [
    "StateDictMismatchError",
    "check_state_dict",
    "fitting_models",
    "from_torchvision",
    "to_torchvision",
]


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
    return {n: _form(n) for n in list_models() if get_spec(n).torchvision_name is not None}


def _fits(form: Mapping[str, tuple[int, ...]], shapes: Mapping[str, tuple[int, ...]]) -> bool:
    if form.keys() != shapes.keys():
        return False
    differing = [k for k in form if form[k] != shapes[k]]
    return len(differing) <= 2  # the classifier's weight and bias (another num_classes)


def _fitting_models(shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Registered models with a torchvision equivalent whose default state dict has exactly these
    keys (shapes may differ only in the classifier's number of classes)."""
    return [name for name, form in _torchvision_forms().items() if _fits(form, shapes)]


@functools.cache
def _form(name: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in meta_model(name).state_dict().items()}


def fitting_models(
    shapes: Mapping[str, tuple[int, ...]], first: Iterable[str] = (), seconds: float = 10.0
) -> list[str]:
    """Registered models whose default state dict has these keys and shapes (up to the
    classifier's number of classes), searching `first` and then the rest of the zoo.

    Each model is built on the meta device (no memory, no arithmetic); the search stops at the
    first fit found after `first`, or after `seconds`.
    """
    registered = list_models()
    first = [n for n in first if n in registered]
    ordered = list(dict.fromkeys(first + registered))
    deadline = time.perf_counter() + seconds
    fits = []
    for i, name in enumerate(ordered):
        if _fits(_form(name), shapes):
            fits.append(name)
        if (fits and i >= len(first)) or time.perf_counter() > deadline:
            break
    return fits


def check_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor], hint: str = "") -> None:
    """Refuse a state dict that does not have the form of `model`, before loading it.

    Args:
        model: a model from `cnnzoo.create_model`.
        state_dict: the weights to load.
        hint: a registered name to try first when looking for the model they fit (e.g. the
            model a checkpoint says it holds).

    Raises:
        StateDictMismatchError: the message lists missing, unexpected and mismatched keys and
            names the registered model the state dict fits.
    """
    name = _zoo_name(model)
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    model_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if model_shapes != shapes:
        fits = fitting_models(shapes, first=[hint] if hint else [])
        raise StateDictMismatchError(_describe_mismatch(name, model_shapes, shapes, fits))


def _describe_mismatch(
    model_name: str,
    model_shapes: Mapping[str, tuple[int, ...]],
    shapes: dict,
    fits: list[str] | None = None,
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
    fits = [n for n in (_fitting_models(shapes) if fits is None else fits) if n != model_name]
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
