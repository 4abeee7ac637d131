"""cnnzoo: the classic CNN architectures, faithful to their papers, runnable, measurable and
trainable.

The package face is lazy (PEP 562): `import cnnzoo` imports neither torch nor a model, and each
public name below is imported on its first use. So the command line (`python -m cnnzoo`,
`python -m cnnzoo.cli`) starts with its own code and can catch a Ctrl-C that comes while torch
is still being imported. The families register their specs when `cnnzoo.registry` is first
imported, which every lookup goes through.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cnnzoo._version import __version__

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from cnnzoo import models
    from cnnzoo.analysis import summary
    from cnnzoo.bench import optimize_for_inference
    from cnnzoo.comparison import compare
    from cnnzoo.export import export_model
    from cnnzoo.interop import from_torchvision, to_torchvision
    from cnnzoo.registry import ModelSpec, Paper, Result, create_model, get_spec, list_models
    from cnnzoo.viz import draw

# public name -> the module it comes from
_PUBLIC = {
    "ModelSpec": "cnnzoo.registry",
    "Paper": "cnnzoo.registry",
    "Result": "cnnzoo.registry",
    "compare": "cnnzoo.comparison",
    "create_model": "cnnzoo.registry",
    "draw": "cnnzoo.viz",
    "export_model": "cnnzoo.export",
    "from_torchvision": "cnnzoo.interop",
    "get_spec": "cnnzoo.registry",
    "list_models": "cnnzoo.registry",
    "optimize_for_inference": "cnnzoo.bench",
    "summary": "cnnzoo.analysis",
    "to_torchvision": "cnnzoo.interop",
}

__all__ = [
    "ModelSpec",
    "Paper",
    "Result",
    "__version__",
    "compare",
    "create_model",
    "draw",
    "export_model",
    "from_torchvision",
    "get_spec",
    "list_models",
    "models",
    "optimize_for_inference",
    "summary",
    "to_torchvision",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
    elif name == "models":
        value = importlib.import_module("cnnzoo.models")
    else:
        raise AttributeError(f"module 'cnnzoo' has no attribute {name!r}")
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC, "models"})
