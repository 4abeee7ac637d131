"""Whole-model totals. MACs are counted on the meta device: no memory is allocated and no
arithmetic is done, so counting VGG-19 takes milliseconds and ResNet-1202 well under a second."""

from __future__ import annotations

from torch import nn

from cnnzoo.analysis.report import summary


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
    report = summary(model, tuple(input_size), batch_size=batch_size)
    if report.failure is not None:
        f = report.failure
        raise ValueError(f"{report.model}: forward pass failed at {f.layer}: {f.message}")
    return report.totals.macs
