"""The input check every zoo model runs first, so a wrong input fails with a useful message."""

from __future__ import annotations

import torch
from torch import Tensor

from cnnzoo.errors import UsageError


def check_input(x: Tensor, in_chans: int, model_name: str) -> Tensor:
    """Return `x` unchanged if it is an (N, in_chans, H, W) batch; raise ValueError otherwise.

    Under `torch.fx.symbolic_trace` shapes are unknown, so the check steps aside and the traced
    graph starts directly with the network.
    """
    if isinstance(x, torch.fx.Proxy):
        return x
    if x.dim() != 4:
        raise UsageError(
            f"{model_name} expects a 4-D batch (N, {in_chans}, H, W); got a tensor of shape "
            f"{tuple(x.shape)}. Add a batch dimension with x.unsqueeze(0)."
        )
    if x.shape[1] != in_chans:
        raise UsageError(
            f"{model_name} expects {in_chans} input channel(s), shape (N, {in_chans}, H, W); got "
            f"{x.shape[1]} channel(s) in shape {tuple(x.shape)}. Convert the images to "
            f"{in_chans} channel(s), or create the model with in_chans={x.shape[1]}."
        )
    return x
