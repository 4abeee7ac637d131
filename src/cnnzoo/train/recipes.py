"""The papers' training recipes, in one place, each with its citation.

A recipe is a set of `TrainConfig` values; command-line flags override any of them. A recipe's
learning rates and step counts belong to its batch size: run at another batch, the learning rate
scales linearly with it (Goyal et al. 2017, arXiv 1706.02677) and a warm-up's step budget
inversely (the same number of images), unless they are given explicitly (`resolve_config`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cnnzoo.data.datasets import flips_preserve_labels
from cnnzoo.data.transforms import AUGMENTATIONS, applies_flips, describe_augmentation
from cnnzoo.errors import OptionError, UnknownNameError
from cnnzoo.registry import get_spec
from cnnzoo.suggest import closest, did_you_mean
from cnnzoo.train.config import DERIVED_FIELDS, TrainConfig, field_names


@dataclass(frozen=True)
class Recipe:
    name: str
    citation: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


RESNET_CIFAR_WARMUP = {
    # Sec. 4.2: for ResNet-110, "0.01 to warm up the training until the training error is below
    # 80% (about 400 iterations)". Applied to every model: the rule ends it within a few dozen
    # iterations for shallower networks.
    "warmup_lr": 0.01,
    "warmup_steps": 400,
    "warmup_until_error": 0.8,
}

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "resnet-cifar",
            "He et al. 2015, arXiv 1512.03385, Sec. 4.2",
            {
                "optimizer": "sgd",
                "lr": 0.1,
                "momentum": 0.9,
                "weight_decay": 1e-4,
                "batch_size": 128,
                "schedule": "multistep",
                "milestones": (0.5, 0.75),
                "gamma": 0.1,
                "epochs": 182,
                "augment": "cifar",
                "validation": "split",
                **RESNET_CIFAR_WARMUP,
            },
            (
                "64k iterations at batch 128 on the 45k/5k split is about 182 epochs; lr / 10 at "
                "32k and 48k iterations, i.e. at 50% and 75% of training.",
            ),
        ),
        Recipe(
            "resnet-imagenet",
            "He et al. 2015, arXiv 1512.03385, Sec. 3.4",
            {
                "optimizer": "sgd",
                "lr": 0.1,
                "momentum": 0.9,
                "weight_decay": 1e-4,
                "batch_size": 256,
                "schedule": "plateau",
                "gamma": 0.1,
                "epochs": 120,
                "augment": "imagenet",
            },
        ),
        Recipe(
            "alexnet",
            "Krizhevsky et al. 2012, NIPS, Sec. 5",
            {
                "optimizer": "sgd",
                "lr": 0.01,
                "momentum": 0.9,
                "weight_decay": 5e-4,
                "batch_size": 128,
                "schedule": "plateau",
                "gamma": 0.1,
                "epochs": 90,
                "augment": "imagenet",
                "pca_color": True,
            },
        ),
        Recipe(
            "googlenet",
            "Szegedy et al. 2014, arXiv 1409.4842, Sec. 6",
            {
                "optimizer": "sgd",
                "lr": 0.01,
                "momentum": 0.9,
                "weight_decay": 2e-4,
                "batch_size": 128,
                "schedule": "every",
                "step_epochs": 8,
                "gamma": 0.96,
                "epochs": 250,
                "augment": "imagenet",
                "aux_loss_weight": 0.3,
            },
            (
                "The paper states momentum 0.9 and a 4% learning-rate decrease every 8 epochs; the "
                "initial rate and weight decay are not stated (0.01 and 2e-4 are common choices).",
            ),
        ),
        Recipe(
            "wrn-cifar",
            "Zagoruyko & Komodakis 2016, arXiv 1605.07146, Sec. 3",
            {
                "optimizer": "sgd",
                "lr": 0.1,
                "momentum": 0.9,
                "nesterov": True,
                "weight_decay": 5e-4,
                "batch_size": 128,
                "schedule": "multistep",
                "milestones": (0.3, 0.6, 0.8),
                "gamma": 0.2,
                "epochs": 200,
                "augment": "cifar",
            },
        ),
        Recipe(
            "densenet-cifar",
            "Huang et al. 2017, arXiv 1608.06993, Sec. 4.2",
            {
                "optimizer": "sgd",
                "lr": 0.1,
                "momentum": 0.9,
                "nesterov": True,
                "weight_decay": 1e-4,
                "batch_size": 64,
                "schedule": "multistep",
                "milestones": (0.5, 0.75),
                "gamma": 0.1,
                "epochs": 300,
                "augment": "cifar",
            },
        ),
        Recipe(
            "stochastic-depth-cifar",
            "Huang et al. 2016, arXiv 1603.09382, Sec. 4",
            {
                "optimizer": "sgd",
                "lr": 0.1,
                "momentum": 0.9,
                "nesterov": True,
                "weight_decay": 1e-4,
                "batch_size": 128,
                "schedule": "multistep",
                "milestones": (0.5, 0.75),
                "gamma": 0.1,
                "epochs": 500,
                "augment": "cifar",
            },
        ),
        Recipe(
            "fractalnet-cifar",
            "Larsson et al. 2016, arXiv 1605.07648, Sec. 4",
            {
                "optimizer": "sgd",
                "lr": 0.02,
                "momentum": 0.9,
                "weight_decay": 0.0,
                "batch_size": 100,
                "schedule": "multistep",
                "milestones": (0.5, 0.75, 0.875, 0.9375),
                "gamma": 0.1,
                "epochs": 400,
                "augment": "cifar",
            },
            ("lr / 10 'whenever the number of remaining epochs halves'.",),
        ),
        Recipe(
            "lenet-digits",
            "cnnzoo's recipe for the embedded digits (LeCun et al. 1998 trained on MNIST)",
            {
                "optimizer": "adam",
                "lr": 0.002,
                "weight_decay": 5e-4,
                "batch_size": 32,
                "schedule": "cosine",
                "epochs": 30,
                "augment": "digits",
                "validation": "split",
            },
            (
                "Adam, because the RBF output's squared distances give large logits that SGD "
                "at any one rate trained slowly (SGD 0.05: 31% test accuracy after 30 epochs; "
                "0.002: 84% after 12); Adam at 0.002 reaches 98% in 30 epochs.",
            ),
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    """The named recipe; an unknown name suggests the closest."""
    try:
        return RECIPES[name]
    except KeyError:
        hint = did_you_mean(name, RECIPES)
        hint = f" {hint}" if hint else ""
        raise UnknownNameError(
            f"unknown recipe {name!r}.{hint} Recipes: {', '.join(sorted(RECIPES))}."
        ) from None


# The recipe a model trains with unless told otherwise, by family and the data set it was
# designed for ("*" matches any data set).
DEFAULT_RECIPES: dict[tuple[str, str], str] = {
    ("lenet", "*"): "lenet-digits",
    ("alexnet", "*"): "alexnet",
    ("zfnet", "*"): "alexnet",
    ("vgg", "*"): "alexnet",  # VGG Sec. 3.1: AlexNet's SGD recipe with batch 256
    ("googlenet", "*"): "googlenet",
    ("resnet", "imagenet"): "resnet-imagenet",
    ("resnet", "cifar10"): "resnet-cifar",
    ("preact_resnet", "imagenet"): "resnet-imagenet",
    ("preact_resnet", "cifar10"): "resnet-cifar",
    ("wide_resnet", "cifar10"): "wrn-cifar",
    ("stochastic_depth", "*"): "stochastic-depth-cifar",
    ("fractalnet", "*"): "fractalnet-cifar",
    ("densenet", "cifar10"): "densenet-cifar",
}


def default_recipe(family: str, dataset: str) -> str:
    """The recipe for a family and data set; ImageNet models fall back to resnet-imagenet and
    CIFAR ones to resnet-cifar, the closest published recipes."""
    for key in ((family, dataset), (family, "*")):
        if key in DEFAULT_RECIPES:
            return DEFAULT_RECIPES[key]
    return "resnet-imagenet" if dataset == "imagenet" else "resnet-cifar"


def resolve_config(
    model: str,
    *,
    data: str = "digits",
    recipe: str | None = None,
    recipe_additions: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> TrainConfig:
    """A `TrainConfig` from the model's (or the named) recipe, then the overrides.

    When the batch size differs from the recipe's, the recipe's learning rates (lr and
    warmup_lr) scale linearly with it and its warm-up step budget inversely, unless that value
    is among the overrides; the config records the recipe's values and the rule applied
    (`recipe_lr`, `lr_rule`, `recipe_warmup_steps`, `warmup_rule`), and the training augmentation
    as applied to this model and data (`augment_applied`).

    Args:
        recipe_additions: settings added to the recipe, stated at the recipe's batch size (an
            experiment's warm-up borrowed from another paper); they scale as the recipe's do.

    Raises:
        UnknownNameError: (a `KeyError`) unknown model or recipe.
        OptionError: (a `TypeError`) an override that is not a config field (the closest
            fields are suggested), or one of the derived fields.
    """
    spec = get_spec(model)
    name = recipe or default_recipe(spec.family, spec.dataset)
    chosen = get_recipe(name)
    fields = set(field_names()) - set(DERIVED_FIELDS)
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted((set(given) - fields) | (set(overrides) - set(field_names())))
    if unknown:
        hints = {u: closest(u, fields, n=3) for u in unknown}
        raise OptionError(
            "unknown training option(s): "
            + "; ".join(f"{u} (did you mean {', '.join(h) or 'none'}?)" for u, h in hints.items())
        )
    base = {**chosen.settings, **(recipe_additions or {})}
    values = {**base, **given}
    values.update(scale_to_batch(base, given, values.get("batch_size", _default("batch_size"))))
    augment = values.get("augment")
    if augment in AUGMENTATIONS:
        values["augment_applied"] = describe_augmentation(
            augment,
            spec.input_size,
            applies_flips(augment, flips_preserve_labels(data)),
            bool(values.get("pca_color")),
        )
    return TrainConfig(model=model, data=data, recipe=name, notes=chosen.notes, **values)


def scale_to_batch(
    recipe: Mapping[str, Any], given: Mapping[str, Any], batch_size: int
) -> dict[str, Any]:
    """The linear scaling rule (Goyal et al. 2017, arXiv 1706.02677, Sec. 2.1): at a batch
    size k times the recipe's, the learning rates are k times the recipe's and a warm-up given
    in steps lasts 1/k times as many steps (it covers the same images). Values in `given` are
    kept as they are.

    Returns:
        The scaled values and their records (the `TrainConfig` fields lr, warmup_lr,
        warmup_steps, recipe_lr, lr_rule, recipe_warmup_steps, warmup_rule).
    """
    recipe_batch = recipe.get("batch_size", _default("batch_size"))
    recipe_lr = recipe.get("lr", _default("lr"))
    out: dict[str, Any] = {"recipe_lr": recipe_lr}
    if "warmup_steps" in recipe:
        out["recipe_warmup_steps"] = recipe["warmup_steps"]
    if batch_size == recipe_batch:
        return out
    ratio = f"{batch_size}/{recipe_batch}"
    if "lr" not in given:
        out["lr"] = recipe_lr * batch_size / recipe_batch
        out["lr_rule"] = (
            f"lr {out['lr']:g} = {recipe_lr:g} x {ratio}, linear scaling (Goyal et al. 2017)"
        )
    warmup_lr = recipe.get("warmup_lr", 0.0)
    if warmup_lr > 0:
        words = []
        if "warmup_steps" not in given and "warmup_steps" in recipe:
            steps = max(1, round(recipe["warmup_steps"] * recipe_batch / batch_size))
            out["warmup_steps"] = steps
            words.append(
                f"warm-up at most {steps} steps = {recipe['warmup_steps']} x "
                f"{recipe_batch}/{batch_size} (the same images)"
            )
        if "warmup_lr" not in given:
            out["warmup_lr"] = warmup_lr * batch_size / recipe_batch
            words.append(f"warm-up lr {out['warmup_lr']:g} = {warmup_lr:g} x {ratio}")
        if words:
            out["warmup_rule"] = ", ".join(words) + ", linear scaling (Goyal et al. 2017)"
    return out


def _default(name: str) -> Any:
    return TrainConfig.__dataclass_fields__[name].default
