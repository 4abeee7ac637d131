"""cnnzoo: the classic CNN architectures, faithful to their papers, runnable, measurable and
trainable."""

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
