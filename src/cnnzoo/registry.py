"""The model registry: look up, list and build the registered networks.

A spec (`cnnzoo.specs.ModelSpec`) says which paper a network comes from, how to build it
(`builder` called with the fixed `arch` arguments), what it should measure (parameters, MACs) and
where it departs from the paper. The family modules register their specs when they are imported
(through `cnnzoo.specs`, which imports no model); this module imports them all first, so a lookup
sees every network however cnnzoo was imported.
"""

from __future__ import annotations

import fnmatch
import inspect
import re
import types
import typing
from typing import Any

from torch import nn

from cnnzoo import models  # noqa: F401  (imports every family, which registers its specs)
from cnnzoo.errors import OptionError, UnknownNameError
from cnnzoo.specs import SPECS, ModelSpec, Paper, Result, register
from cnnzoo.suggest import closest, did_you_mean

__all__ = [
    "ModelSpec",
    "Paper",
    "Result",
    "create_model",
    "get_spec",
    "list_models",
    "register",
]


def natural_key(name: str) -> tuple:
    """Sort key that orders the numbers inside names by value: resnet20 < resnet56 < resnet110."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names in natural order (resnet20 < resnet110), optionally filtered.

    Args:
        pattern: a glob such as ``"resnet*"`` (when it holds ``*``, ``?`` or ``[``), else a
            substring such as ``"vgg"``; case is ignored.
    """
    names = sorted(SPECS, key=natural_key)
    if pattern is None:
        return names
    query = pattern.lower()
    if any(ch in query for ch in "*?["):
        return [n for n in names if fnmatch.fnmatchcase(n, query)]
    return [n for n in names if query in n]


def closest_names(name: str, candidates: list[str], n: int = 5) -> list[str]:
    """The names a user most likely meant (`cnnzoo.suggest.closest`; kept for callers)."""
    return closest(name, candidates, n)


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model.

    Raises:
        UnknownNameError: (a `KeyError`) the name is not registered; the message suggests the
            closest names.
    """
    try:
        return SPECS[name]
    except (KeyError, TypeError):
        hint = did_you_mean(str(name), SPECS)
        raise UnknownNameError(
            f"unknown model {name!r}.{' ' + hint if hint else ''} "
            "Run `cnnzoo list` to see all models."
        ) from None


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered network.

    Args:
        name: a registered name (see `list_models`).
        **overrides: named, typed options of the network, such as ``num_classes``,
            ``in_chans`` or ``zero_init_residual``; `get_spec(name).overrides()` lists them.

    Raises:
        UnknownNameError: (a `KeyError`) unknown name.
        OptionError: (a `TypeError`) an unknown override, or an override of the wrong type.
    """
    spec = get_spec(name)
    allowed = spec.overrides()
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        close = [c for u in unknown for c in closest(u, allowed, n=1)]
        hint = f"Did you mean: {', '.join(close)}? " if close else ""
        raise OptionError(
            f"{name}: unknown override(s) {', '.join(unknown)}. {hint}"
            f"Valid overrides: {', '.join(sorted(allowed))}."
        )
    for key, value in overrides.items():
        _check_type(name, key, value, allowed[key].annotation)
    return spec.builder(name=spec.name, **spec.arch, **overrides)


def _check_type(model: str, key: str, value: Any, annotation: Any) -> None:
    if annotation is inspect.Parameter.empty or _matches(value, annotation):
        return
    raise OptionError(
        f"{model}: override {key}={value!r} has the wrong type; expected {_describe(annotation)}."
    )


def _matches(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True  # annotations we do not check (callables, generics) accept anything


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))
