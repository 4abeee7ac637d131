"""Whole-model totals. MACs are counted on the meta device: no memory is allocated and no
arithmetic is done, so counting VGG-19 takes milliseconds and ResNet-1202 well under a second."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters; `parameters()` yields a shared tensor once, so it counts once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, input_size: tuple[int, ...], batch_size: int = 1) -> int:
    """Multiply-accumulates of the convolutions and matrix products of one forward pass.

    Counted by the analyzer (`cnnzoo.summary`) on meta tensors: the caller's model, its weights,
    device and mode are left untouched, and nothing is computed. The count equals
    `torch.utils.flop_counter.FlopCounterMode`'s FLOPs / 2, which the tests check for every
    registered model.
    """
    from cnnzoo.analysis.report import summary

    report = summary(model, tuple(input_size), batch_size=batch_size)
    if report.failure is not None:
        f = report.failure
        raise ValueError(f"{report.model}: forward pass failed at {f.layer}: {f.message}")
    return report.totals.macs


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
    """Build a registered model on the meta device, shapes only, in milliseconds."""
    from cnnzoo.registry import create_model

    with torch.device("meta"), _SkipInitOnMeta():
        return create_model(name, **overrides)
