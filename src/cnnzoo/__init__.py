"""cnnzoo: the classic CNN architectures, faithful to their papers, runnable, measurable and
trainable.

The package face: importing `cnnzoo` imports every family module (`cnnzoo.models`), which
registers their specs, as torchvision's and timm's package faces do. The registry itself imports no
model.
"""

from cnnzoo import models  # noqa: F401  (registers every family's specs)
from cnnzoo._version import __version__
from cnnzoo.analysis import summary
from cnnzoo.bench import optimize_for_inference
from cnnzoo.comparison import compare
from cnnzoo.export import export_model
from cnnzoo.interop import from_torchvision, to_torchvision
from cnnzoo.registry import ModelSpec, Paper, Result, create_model, get_spec, list_models
from cnnzoo.viz import draw

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
    "optimize_for_inference",
    "summary",
    "to_torchvision",
]
