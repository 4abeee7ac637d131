"""What the command line names: a model (registered or a factory in a Python file), an input size
and a memory budget. Plain functions, so Python users can call them too."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from torch import nn

_UNITS = {"": 1, "B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_UNITS |= {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def load_model(target: str) -> nn.Module | str:
    """A registered model name (returned as is) or ``path/to/file.py:factory``.

    The factory is a callable in the file that takes no arguments and returns an `nn.Module`
    (a class or a function). The file is imported as a module, so it runs like any script the
    user chooses to run.
    """
    if ":" not in target or not target.split(":", 1)[0].endswith(".py"):
        return target
    path_text, factory_name = target.rsplit(":", 1)
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    module_name = "cnnzoo_user_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    factory = getattr(module, factory_name, None)
    if factory is None or not callable(factory):
        raise ValueError(f"{path} has no callable named {factory_name!r}")
    model = factory()
    if not isinstance(model, nn.Module):
        raise ValueError(f"{target} returned {type(model).__name__}, not an nn.Module")
    return model


def parse_input_size(text: str) -> tuple[int, ...]:
    """'3x227x227' -> (3, 227, 227); also accepts commas."""
    parts = [p for p in re.split(r"[x,X*\s]+", text.strip()) if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"input size must look like 3x224x224, got {text!r}")
    return tuple(int(p) for p in parts)


def parse_bytes(text: str) -> int:
    """'8GiB' -> 8589934592, '512MB' -> 512000000, '1e9' -> 1000000000."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"memory size must look like 8GiB or 512MB, got {text!r}")
    return int(float(match.group(1)) * _UNITS[unit])
