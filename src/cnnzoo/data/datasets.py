"""`open_dataset`: one string names a data set and where it lives."""

from __future__ import annotations

from cnnzoo.data import cifar, digits, imagefolder
from cnnzoo.data.cifar import VARIANTS, load_cifar
from cnnzoo.data.digits import load_digits
from cnnzoo.data.errors import DataError
from cnnzoo.data.imagefolder import load_imagefolder
from cnnzoo.data.splits import VALIDATION_MODES, DataSplits
from cnnzoo.data.synthetic import DEFAULT_SIZE, load_synthetic
from cnnzoo.suggest import did_you_mean

SPEC_FORMS = ("digits", "cifar10:DIR", "cifar100:DIR", "imagefolder:DIR", "synthetic[:N]")


def open_dataset(
    spec: str,
    *,
    seed: int = 0,
    input_size: tuple[int, int, int] | None = None,
    validation: str = "split",
) -> DataSplits:
    """Open the data set that `spec` names.

    Args:
        spec: "digits" (the embedded default), "cifar10:DIR", "cifar100:DIR",
            "imagefolder:DIR", or "synthetic" / "synthetic:N" (N training images, default
            1,024). DIR is the data's folder (`~` allowed).
        seed: seeds the synthetic data. The held-out splits of the real data sets do not depend
            on it: they are fixed, so runs with different seeds are comparable.
        input_size: the model's (C, H, W); required by "synthetic" (the image shape), used by
            "imagefolder" for its load sizes (default (3, 224, 224)), ignored otherwise.
        validation: "split" validates on data held out of the training set (digits: a fixed
            stratified 10%; CIFAR: the last 5,000 training images, the ResNet paper's 45k/5k
            split; image folders: val/ or a fixed stratified 10%), "test" validates on the test
            set and trains on all training data, "none" trains on all of it without validation.

    Raises:
        DataError: an unknown or malformed spec, or missing, incomplete or corrupt data.
    """
    name, _, argument = spec.partition(":")
    if validation not in VALIDATION_MODES:
        raise DataError(
            f"unknown validation mode {validation!r}; choose one of {', '.join(VALIDATION_MODES)}"
        )
    if name == "digits" and not argument:
        return load_digits(validation=validation)
    if name == "synthetic":
        if input_size is None:
            raise DataError(
                "synthetic data needs the model's input shape: pass input_size=(C, H, W)"
            )
        return load_synthetic(_count(spec, argument), input_size, seed=seed, validation=validation)
    if name in VARIANTS and argument:
        return load_cifar(name, argument, validation=validation)
    if name == "imagefolder" and argument:
        return load_imagefolder(argument, input_size or (3, 224, 224), validation=validation)
    raise DataError(_explain(spec, name))


def flips_preserve_labels(spec: str) -> bool:
    """What the data set `spec` names declares about mirrors (`DataSplits.flips_preserve_labels`),
    known without opening it; False for the synthetic data and anything unknown."""
    name = spec.partition(":")[0]
    declared = {
        "digits": digits.FLIPS_PRESERVE_LABELS,
        "imagefolder": imagefolder.FLIPS_PRESERVE_LABELS,
        **{variant: cifar.FLIPS_PRESERVE_LABELS for variant in VARIANTS},
    }
    return declared.get(name, False)


def _count(spec: str, argument: str) -> int:
    if not argument:
        return DEFAULT_SIZE
    if argument.isdigit() and int(argument) > 0:
        return int(argument)
    raise DataError(f"data spec {spec!r}: N in synthetic:N must be a positive whole number")


def _explain(spec: str, name: str) -> str:
    forms = ", ".join(SPEC_FORMS)
    if name == "digits":
        return f"data spec {spec!r}: digits takes no folder (it is built in); use 'digits'"
    if name in (*VARIANTS, "imagefolder"):
        return f"data spec {spec!r}: {name} needs the data's folder: '{name}:DIR'"
    names = [form.split(":")[0].split("[")[0] for form in SPEC_FORMS]
    hint = did_you_mean(name, names, n=1)
    hint = f" {hint}" if hint else ""
    return f"unknown data set {name!r} in data spec {spec!r}.{hint} Valid forms: {forms}."
