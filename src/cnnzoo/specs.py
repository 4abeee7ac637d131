"""What a family module needs to register its networks: `ModelSpec` and its parts, and `register`.

A leaf of the package: it imports no model, so every family module can import it. Lookups
(`list_models`, `get_spec`, `create_model`) live in `cnnzoo.registry`, which imports the
families first, so that a lookup always sees every registered network.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cnnzoo.errors import UsageError


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


SPECS: dict[str, ModelSpec] = {}  # every registered spec by name; filled by `register`


def register(spec: ModelSpec) -> ModelSpec:
    """Add a spec to the registry; a name can be registered once."""
    if spec.name in SPECS:
        raise UsageError(f"model {spec.name!r} is already registered")
    if spec.name != spec.name.lower():
        raise UsageError(f"registry names are lowercase, got {spec.name!r}")
    SPECS[spec.name] = spec
    return spec
