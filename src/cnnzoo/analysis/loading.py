"""What the command line names, at the analyzer's level: a model (registered or a factory in a
Python file), an input size and a memory budget. Plain functions, so Python users can call them
too. `cnnzoo.resolve` builds on these and adds trained run folders.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from cnnzoo.errors import UsageError

_UNITS = {"": 1, "B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_UNITS |= {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}

_MODULE_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def is_factory(target: str) -> bool:
    """Whether `target` names a factory, ``path/to/file.py:factory`` or
    ``package.module:factory``."""
    where, sep, factory = target.rpartition(":")
    return bool(sep and factory and (where.endswith(".py") or _MODULE_PATH.fullmatch(where)))


def load_factory(target: str) -> nn.Module:
    """Call the factory that ``path/to/file.py:factory`` or ``package.module:factory`` names.

    The factory is a callable that takes no arguments and returns an `nn.Module` (a class or a
    function). A file is imported as a module, so it runs like any script the user chooses to run.

    Raises:
        UsageError: no such file or module, no such callable, or it returns no `nn.Module`.
    """
    where, _, factory_name = target.rpartition(":")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise UsageError(f"no such file: {path} (in {target!r}; give path/to/file.py:factory)")
        module_name = "cnnzoo_user_" + re.sub(r"\W", "_", path.stem)
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as err:
            raise UsageError(f"no module named {err.name!r} (in {target!r})") from None
    factory = getattr(module, factory_name, None)
    if factory is None or not callable(factory):
        raise UsageError(f"{where} has no callable named {factory_name!r}")
    model = factory()
    if not isinstance(model, nn.Module):
        raise UsageError(f"{target} returned {type(model).__name__}, not an nn.Module")
    return model


def load_model(target: str) -> nn.Module | str:
    """A registered model name (returned as is) or the module a factory (see `load_factory`)
    builds. For run folders too, use `cnnzoo.resolve.resolve`."""
    return load_factory(target) if is_factory(target) else target


def parse_input_size(text: str | Sequence[int]) -> tuple[int, int, int]:
    """One input as CxHxW: '3x227x227' -> (3, 227, 227); commas and spaces also separate. A size
    already parsed (the command line's `--input` type gives a tuple) is checked and returned.

    Raises:
        UsageError: not three positive whole numbers; for two (HxW) the message shows the
            CxHxW form with those sizes.
    """
    if not isinstance(text, str):
        text = "x".join(str(v) for v in text)
    parts = [p for p in re.split(r"[x,X*\s]+", text.strip()) if p]
    numbers = all(p.isdigit() and int(p) > 0 for p in parts)
    if numbers and len(parts) == 3:
        c, h, w = (int(p) for p in parts)
        return c, h, w
    example = f"3x{parts[0]}x{parts[1]}" if numbers and len(parts) == 2 else "3x224x224"
    raise UsageError(
        f"give one input as CxHxW (channels x height x width, each a positive whole number), "
        f"e.g. {example}; got {text!r}"
    )


def parse_bytes(text: str) -> int:
    """'8GiB' -> 8589934592, '512MB' -> 512000000, '1e9' -> 1000000000."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else None
    try:
        value = float(match.group(1)) if match else None
    except ValueError:
        value = None
    if value is None or unit not in _UNITS or not value > 0:
        raise UsageError(f"memory size must look like 8GiB or 512MB, got {text!r}")
    return int(value * _UNITS[unit])
