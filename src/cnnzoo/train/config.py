"""The training configuration: one frozen dataclass, filled from a named recipe and overrides."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from cnnzoo.errors import UsageError

Schedule = Literal["multistep", "every", "plateau", "cosine", "constant"]
Precision = Literal["fp32", "bf16", "fp16", "auto"]  # auto: measured, see train.precision


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of a run. Units are in the comments."""

    model: str
    data: str = "digits"  # data set spec: digits, cifar10:DIR, cifar100:DIR, imagefolder:DIR, ...
    recipe: str = "lenet-digits"
    epochs: int = 30
    batch_size: int = 64  # global: split evenly across distributed processes
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.05  # peak learning rate
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4  # L2 penalty on all parameters
    schedule: Schedule = "cosine"
    milestones: tuple[float, ...] = ()  # multistep: fractions of all steps where lr *= gamma
    gamma: float = 0.1  # lr factor at each milestone / every `step_epochs` / on plateau
    step_epochs: int = 8  # "every": epochs between lr decays
    plateau_patience: int = 5  # "plateau": epochs without validation improvement before decay
    warmup_lr: float = 0.0  # warm-up learning rate (0: no warm-up)
    warmup_steps: int = 0  # warm-up lasts at most this many steps (optimizer updates)
    warmup_until_error: float = 1.0  # ... or until the running training error falls below this
    label_smoothing: float = 0.0
    aux_loss_weight: float | None = None  # auxiliary heads; None takes the model spec's weight
    model_options: tuple[tuple[str, Any], ...] = ()  # create_model overrides, e.g. drop_path_rate
    augment: str | None = None  # None: the data set's default augmentation; "none" disables
    pca_color: bool = False  # AlexNet's PCA colour augmentation
    validation: Literal["split", "test"] = "split"
    seed: int = 0
    precision: Precision = "fp32"
    channels_last: bool = False
    compile: bool = False
    deterministic: bool = False
    num_workers: int = 0  # data loader worker processes (image decoding)
    log_every: int = 20  # steps between plain log lines when output is not a terminal
    max_steps: int | None = None  # stop after this many optimizer steps (quick checks)
    out: str | None = None  # run directory; default runs/MODEL-DATA-TIMESTAMP
    max_memory: str | None = None  # refuse to start if the analyzer's estimate exceeds, "8GiB"
    notes: tuple[str, ...] = field(default=())
    # Derived by `resolve_config`, recorded so that config.json says what was applied and why.
    recipe_lr: float | None = None  # the recipe's lr, at the recipe's batch size
    lr_rule: str = ""  # "lr 0.025 = 0.1 x 32/128, linear scaling ..."; empty: not scaled
    recipe_warmup_steps: int | None = None  # the recipe's warm-up step budget, at its batch
    warmup_rule: str = ""  # "warm-up at most 1600 steps = 400 x 128/32 ..."; empty: not scaled
    augment_applied: str = ""  # the training augmentation as applied to this model and data
    precision_rule: str = ""  # what --precision auto measured and chose; empty: given

    def __post_init__(self) -> None:
        # A fixed choice (precision, optimizer, ...) set from Python is checked here, as the
        # command line's choices are: a misspelled "bf61" would otherwise train in fp32.
        from cnnzoo.errors import UsageError
        from cnnzoo.suggest import did_you_mean

        for name, kind in typing.get_type_hints(type(self)).items():
            choices = _literal_choices(kind)
            value = getattr(self, name)
            if choices and value not in choices:
                hint = did_you_mean(str(value), [str(c) for c in choices if c is not None], 3)
                hint = f" {hint}" if hint else ""
                raise UsageError(
                    f"{name}={value!r} is not valid.{hint} Choose one of "
                    f"{', '.join(repr(c) for c in choices)}."
                )
        _check_positive(self)
        if self.max_memory is not None:
            from cnnzoo.analysis import parse_bytes

            parse_bytes(self.max_memory)  # "memory size must look like 8GiB or 512MB, ..."

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config saved with `to_json` (lists become tuples again)."""
        hints = typing.get_type_hints(cls)
        fixed = {}
        for key, value in values.items():
            if key not in hints:
                raise UsageError(f"unknown configuration field {key!r} in saved config")
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            fixed[key] = value
        return cls(**fixed)


# Fields that `resolve_config` fills in; they are records, not options.
DERIVED_FIELDS = (
    "recipe_lr",
    "lr_rule",
    "recipe_warmup_steps",
    "warmup_rule",
    "augment_applied",
    "precision_rule",
)


def _check_positive(config: TrainConfig) -> None:
    """Values that would train nothing, or nothing sensible, are refused with the fix."""
    from cnnzoo.errors import UsageError

    wrong = []
    if config.epochs < 1:
        wrong.append(f"epochs={config.epochs} (--epochs) trains nothing: give 1 or more")
    if config.batch_size < 1:
        wrong.append(f"batch_size={config.batch_size} (--batch-size) must be 1 or more")
    if not config.lr > 0:  # also refuses NaN
        wrong.append(f"lr={config.lr} (--lr) must be above 0, e.g. the recipe's 0.1")
    if config.max_steps is not None and config.max_steps < 1:
        wrong.append(
            f"max_steps={config.max_steps} (--max-steps) trains nothing: give 1 or more, or "
            "leave it out to train every epoch"
        )
    if wrong:
        raise UsageError("; ".join(wrong))


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _literal_choices(kind: Any) -> tuple[Any, ...]:
    """The allowed values of a `Literal[...]` (or `Literal[...] | None`) annotation, else ()."""
    if typing.get_origin(kind) is typing.Literal:
        return typing.get_args(kind)
    args = typing.get_args(kind)
    if type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and typing.get_origin(inner[0]) is typing.Literal:
            return (*typing.get_args(inner[0]), None)
    return ()
