"""What the user named, resolved once for every command: a registered name, a module, a factory
(``path/to/file.py:factory`` or ``package.module:factory``) or a trained run folder.

`summary`, `draw`, `report` and `export` all go through `resolve`, so a name means the same
everywhere and a mistake gets the same answer (the registry's suggestions, a missing file, a
folder that holds no run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

from cnnzoo.analysis.loading import is_factory, load_factory
from cnnzoo.errors import UsageError
from cnnzoo.registry import create_model, get_spec, list_models

__all__ = ["RANDOM_INIT", "Target", "resolve"]

RANDOM_INIT = "random initialization"


@dataclass(frozen=True)
class Target:
    """A resolved model.

    Attributes:
        kind: "registered", "run" (a trained run folder or checkpoint), "factory" or "module".
        name: the registered name, or the module's class name.
        input_size: the default input (C, H, W): the spec's; None for an unregistered module.
        weights: where the weights come from: `RANDOM_INIT`, ``"run DIR, checkpoint CKPT"``, or
            what the factory or caller built.
        module: the built module (None for a registered name until `build`).
        trained: the `cnnzoo.train.evaluate.TrainedModel` of a run (its classes, mean and std).
    """

    kind: Literal["registered", "run", "factory", "module"]
    name: str
    input_size: tuple[int, ...] | None
    weights: str
    module: nn.Module | None = None
    trained: Any = None

    @property
    def registered(self) -> bool:
        return self.name in list_models()

    def build(self) -> nn.Module:
        """The module, with its weights (a registered name is built fresh)."""
        return self.module if self.module is not None else create_model(self.name)

    def analyzable(self) -> nn.Module | str:
        """What the analyzer takes: a registered name (built on the meta device, no memory) or
        the module."""
        return self.name if self.kind == "registered" else self.build()


def resolve(target: nn.Module | str | Path) -> Target:
    """Resolve what the user named.

    Args:
        target: a module; a registered name; a run directory or checkpoint folder; or a factory,
            ``path/to/file.py:factory`` or ``package.module:factory``.

    Raises:
        UnknownNameError: an unregistered name (the closest names are suggested).
        UsageError: a missing file or factory, a path that is neither a run nor a file.
        CheckpointError: a folder that holds no run or checkpoint, or a damaged one.
    """
    if isinstance(target, nn.Module):
        name = getattr(target, "name", None)
        name = name if isinstance(name, str) else type(target).__name__
        return Target("module", name, _spec_size(name), "the module given", target)
    text = str(target)
    if text in list_models():
        return Target("registered", text, tuple(get_spec(text).input_size), RANDOM_INIT)
    if Path(text).is_dir():
        from cnnzoo.train.evaluate import load_trained

        trained = load_trained(text)
        weights = f"run {Path(text)}, checkpoint {trained.checkpoint}"
        size = _spec_size(trained.config.model)
        return Target("run", trained.config.model, size, weights, trained.model, trained)
    if is_factory(text):
        module = load_factory(text)
        name = getattr(module, "name", None)
        name = name if isinstance(name, str) else type(module).__name__
        return Target("factory", name, _spec_size(name), f"as {text} builds it", module)
    if "/" in text or text.startswith("."):
        raise UsageError(
            f"{text} is not a run directory (no such folder) nor path/to/file.py:factory"
        )
    get_spec(text)  # raises the registry's error, with its suggestions
    raise AssertionError("unreachable: get_spec accepted an unlisted name")


def _spec_size(name: str) -> tuple[int, ...] | None:
    return tuple(get_spec(name).input_size) if name in list_models() else None
