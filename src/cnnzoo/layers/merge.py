"""Merges as visible modules, so analyzers and diagrams see every residual add and concatenation."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Add(nn.Module):
    """Element-wise sum of a residual branch and its shortcut."""

    def forward(self, branch: Tensor, shortcut: Tensor) -> Tensor:
        return branch + shortcut


class Concat(nn.Module):
    """Concatenation along the channel dimension (inception branches, dense connectivity)."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, tensors: list[Tensor]) -> Tensor:
        return torch.cat(tensors, self.dim)
