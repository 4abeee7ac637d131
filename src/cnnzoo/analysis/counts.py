"""Whole-model totals. MACs are counted on the meta device: no memory is allocated and no
arithmetic is done, so counting ResNet-1202 or VGG-19 takes milliseconds."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters; `parameters()` yields a shared tensor once, so it counts once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, input_size: tuple[int, ...], batch_size: int = 1) -> int:
    """Multiply-accumulates of the convolutions and matrix products of one forward pass.

    Runs in eval mode under PyTorch's FLOP counter (2 FLOPs per MAC) on a meta-device copy, so
    the caller's model, its weights, device and mode are left untouched. Build the model under
    ``torch.device("meta")`` to skip the copy.
    """
    tensors = [*model.parameters(), *model.buffers()]
    on_meta = all(t.is_meta for t in tensors)
    meta_model = model if on_meta else copy.deepcopy(model).to("meta")
    was_training = meta_model.training
    meta_model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            meta_model(torch.empty(batch_size, *input_size, device="meta"))
    finally:
        meta_model.train(was_training)
    return counter.get_total_flops() // 2


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
