"""cnnzoo: the classic CNN architectures, faithful to their papers, runnable, measurable and
trainable."""

from cnnzoo.analysis import summary
from cnnzoo.interop import from_torchvision, to_torchvision
from cnnzoo.registry import ModelSpec, Paper, Result, create_model, get_spec, list_models

__version__ = "0.1.0"

__all__ = [
    "ModelSpec",
    "Paper",
    "Result",
    "__version__",
    "create_model",
    "from_torchvision",
    "get_spec",
    "list_models",
    "summary",
    "to_torchvision",
]
