"""Registered models on the meta device: shapes only, built in milliseconds.

Beside `registry.create_model` because it is the same call with no memory behind it; the
analyzer, the interop checks and the tests use it to look at a network without building it.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnzoo.registry import create_model

_INIT_METHODS = frozenset(
    {"normal_", "uniform_", "trunc_normal_", "fill_", "zero_", "copy_", "exponential_"}
)


class _SkipInitOnMeta(torch.overrides.TorchFunctionMode):
    """Makes weight initialization a no-op on meta tensors. There is nothing to initialize, and
    PyTorch's meta kernels for random init are slow (over 1 s for ResNet-1202's convs)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in _INIT_METHODS and args and getattr(args[0], "is_meta", False):
            return args[0]
        return func(*args, **(kwargs or {}))


def meta_model(name: str, **overrides: object) -> nn.Module:
    """Build a registered model on the meta device, shapes only, in milliseconds.

    Args:
        name: a registered name (see `cnnzoo.list_models`).
        **overrides: the builder's named overrides, as `create_model` takes them.
    """
    with torch.device("meta"), _SkipInitOnMeta():
        return create_model(name, **overrides)
