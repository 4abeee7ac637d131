"""The model registry: one frozen `ModelSpec` per registered name, the single source of truth.

A spec says which paper a network comes from, how to build it (`builder` called with the fixed
`arch` arguments), what it should measure (parameters, MACs) and where it departs from the paper.

As in torchvision and timm, the registry imports no model: the family modules register their
specs when they are imported, and the package face (`cnnzoo/__init__.py`) imports them all. Of
cnnzoo it imports only the two leaves that import nothing themselves (`errors`, `suggest`).
"""

from __future__ import annotations

import fnmatch
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cnnzoo.errors import OptionError, UnknownNameError, UsageError
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


@dataclass(frozen=True)
class Paper:
    """Where an architecture was published."""

    title: str
    authors: str
    year: int
    arxiv: str | None = None
    venue: str | None = None

    def cite(self) -> str:
        where = f"arXiv {self.arxiv}" if self.arxiv else (self.venue or "")
        return f"{self.authors} {self.year}, '{self.title}'" + (f", {where}" if where else "")


@dataclass(frozen=True)
class Result:
    """A published result, in percent, with the place it was published."""

    metric: str  # e.g. "imagenet_top1_acc", "cifar10_test_err"
    value: float  # percent
    source: str


@dataclass(frozen=True)
class ModelSpec:
    """Everything cnnzoo knows about one registered network.

    Attributes:
        name: registry name (lowercase paper name; a suffix marks a different geometry).
        family: architecture family, e.g. "resnet".
        paper: the publication that defines the network.
        builder: callable building the module; receives `name=`, the `arch` arguments and the
            user's overrides.
        arch: the fixed builder arguments that make this network what it is (not overridable).
        input_size: default input (C, H, W).
        dataset: the data set the network was designed for.
        num_classes: number of outputs of the default build.
        num_params: expected trainable parameter count of the default build.
        macs: expected multiply-accumulates of conv and linear layers for one image at
            `input_size`.
        results: published results with their sources.
        deviations: every place the implementation departs from the paper, and why.
        torchvision_name: the torchvision builder of the same network, if there is one; its
            state dicts load through `cnnzoo.from_torchvision`.
        aux_loss_weight: weight of auxiliary classifier losses in training (0 means none).
        summary: one line saying what the network is.
    """

    name: str
    family: str
    paper: Paper
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]
    dataset: str
    num_classes: int
    num_params: int
    macs: int
    summary: str
    arch: Mapping[str, Any] = field(default_factory=dict)
    results: tuple[Result, ...] = ()
    deviations: tuple[str, ...] = ()
    torchvision_name: str | None = None
    aux_loss_weight: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch", types.MappingProxyType(dict(self.arch)))

    def overrides(self) -> dict[str, inspect.Parameter]:
        """The keyword arguments a user may pass to `create_model` for this network."""
        params = inspect.signature(self.builder, eval_str=True).parameters
        return {
            k: p
            for k, p in params.items()
            if k not in self.arch and k != "name" and p.kind is not inspect.Parameter.VAR_KEYWORD
        }


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a spec to the registry; a name can be registered once."""
    if spec.name in _REGISTRY:
        raise UsageError(f"model {spec.name!r} is already registered")
    if spec.name != spec.name.lower():
        raise UsageError(f"registry names are lowercase, got {spec.name!r}")
    _REGISTRY[spec.name] = spec
    return spec


def natural_key(name: str) -> tuple:
    """Sort key that orders the numbers inside names by value: resnet20 < resnet56 < resnet110."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names in natural order (resnet20 < resnet110), optionally filtered.

    Args:
        pattern: a glob such as ``"resnet*"`` (when it holds ``*``, ``?`` or ``[``), else a
            substring such as ``"vgg"``; case is ignored.
    """
    names = sorted(_REGISTRY, key=natural_key)
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
        return _REGISTRY[name]
    except (KeyError, TypeError):
        hint = did_you_mean(str(name), _REGISTRY)
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
