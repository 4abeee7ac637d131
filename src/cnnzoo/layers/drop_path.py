"""Drop-path: randomly skip a residual branch in training (Stochastic Depth, FractalNet).

Two semantics are in use and both are provided:

- ``"batch"`` (Huang et al. 2016, arXiv 1603.09382, Sec. 3): one Bernoulli draw per mini-batch;
  a kept branch is not rescaled in training, and at test time the branch is multiplied by its
  survival probability.
- ``"sample"`` (timm, torchvision's StochasticDepth "row" mode): one draw per sample; kept
  branches are scaled by 1/p in training, and the test-time network is the plain one.

Both are unbiased: the expected training output equals the evaluation output.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

DropPathMode = Literal["batch", "sample"]


class DropPath(nn.Module):
    """Multiply a branch by a random 0/1 gate in training.

    Args:
        drop_prob: probability that the branch is dropped (1 - survival probability).
        mode: "batch" (the paper's) or "sample" (timm's); see the module docstring.
    """

    def __init__(self, drop_prob: float, mode: DropPathMode = "batch") -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        if mode not in ("batch", "sample"):
            raise ValueError(f"drop-path mode must be 'batch' or 'sample', got {mode!r}")
        self.drop_prob = drop_prob
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        survival = 1.0 - self.drop_prob
        if self.drop_prob == 0.0:
            return x
        if not self.training:
            return x * survival if self.mode == "batch" else x
        if self.mode == "batch":
            gate = (torch.rand(1, device=x.device) < survival).to(x.dtype)
            return x * gate
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        gate = (torch.rand(shape, device=x.device) < survival).to(x.dtype)
        return x * gate / survival

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, mode={self.mode!r}"


def linear_decay(num_blocks: int, final_drop_prob: float) -> list[float]:
    """The paper's linear decay rule: block l of L drops with probability (l / L) * (1 - p_L).

    Returns the drop probability of each block, l = 1..L (the last one equals `final_drop_prob`).
    """
    return [final_drop_prob * (i + 1) / num_blocks for i in range(num_blocks)]
