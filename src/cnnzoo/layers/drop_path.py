"""Drop-path: randomly skip a residual branch in training (Stochastic Depth, FractalNet).

Two semantics are in use and both are provided:

- ``"batch"`` (Huang et al. 2016, arXiv 1603.09382, Sec. 3): one Bernoulli draw per mini-batch;
  a kept branch is not rescaled in training, and at test time the branch is multiplied by its
  survival probability.
- ``"sample"`` (timm, torchvision's StochasticDepth "row" mode): one draw per sample; kept
  branches are scaled by 1/p in training, and the test-time network is the plain one.

Both are unbiased: the expected training output equals the evaluation output.

``"batch"`` is the default (of `DropPath`, `ResidualBlock` and every ResNet builder) because
cnnzoo's specs reproduce papers, and the paper that defines stochastic depth drops a branch for
the whole mini-batch: `resnet110_sd_cifar` means that network. The price is noisier training
with small mini-batches and a test-time rescaling, which is why timm draws a gate per sample;
``drop_path_mode="sample"`` selects that.

FractalNet (Larsson et al. 2016, arXiv 1605.07648, Sec. 3.1) drops the inputs of its joins
instead of residual branches: `join_keep_mask` (local drop-path) and `sample_global_column`
(global drop-path, one column for the whole network) give its masks. All drop-path randomness
comes from `keep_mask`, and every helper is tensor-only (no Python branch on a random value),
so networks stay traceable with `torch.fx` and run on the meta device.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from cnnzoo.errors import UsageError

DropPathMode = Literal["batch", "sample"]


def keep_mask(
    shape: tuple[int, ...], drop_prob: float, device: torch.device | str | None = None
) -> Tensor:
    """A boolean mask whose entries are independently True (kept) with probability 1 - drop_prob."""
    return torch.rand(shape, device=device) < 1.0 - drop_prob


def join_keep_mask(
    num_inputs: int, drop_prob: float, device: torch.device | str | None = None
) -> Tensor:
    """Local drop-path of a FractalNet join: which of its `num_inputs` inputs survive.

    Each input is dropped with probability `drop_prob`; when all of them are, one chosen
    uniformly at random is kept (the paper: "we make sure at least one survives"; the authors'
    Caffe join layer restores one at random). So the expected fraction dropped is
    ``drop_prob - drop_prob**num_inputs / num_inputs``, slightly below `drop_prob`.

    Returns:
        a bool tensor of shape (num_inputs,) with at least one True.
    """
    keep = keep_mask((num_inputs,), drop_prob, device)
    rescue = torch.arange(num_inputs, device=device) == torch.randint(num_inputs, (), device=device)
    return keep | (rescue & ~keep.any())


def sample_global_column(
    num_columns: int, global_ratio: float, device: torch.device | str | None = None
) -> Tensor:
    """FractalNet's per-mini-batch choice between local and global drop-path.

    With probability `global_ratio` the mini-batch uses global drop-path: a single column,
    chosen uniformly, is kept in every join of the network. Otherwise the joins drop inputs
    locally (see `join_keep_mask`). The paper mixes the two 50/50.

    Returns:
        a 0-d int64 tensor: the column index, or -1 for a local drop-path mini-batch.
    """
    use_global = ~keep_mask((), global_ratio, device)
    column = torch.randint(num_columns, (), device=device)
    return torch.where(use_global, column, torch.full_like(column, -1))


class DropPath(nn.Module):
    """Multiply a branch by a random 0/1 gate in training.

    Args:
        drop_prob: probability that the branch is dropped (1 - survival probability).
        mode: "batch" (the paper's) or "sample" (timm's); see the module docstring.
    """

    def __init__(self, drop_prob: float, mode: DropPathMode = "batch") -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise UsageError(f"drop_prob must be in [0, 1), got {drop_prob}")
        if mode not in ("batch", "sample"):
            raise UsageError(f"drop-path mode must be 'batch' or 'sample', got {mode!r}")
        self.drop_prob = drop_prob
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        survival = 1.0 - self.drop_prob
        if self.drop_prob == 0.0:
            return x
        if not self.training:
            return x * survival if self.mode == "batch" else x
        if self.mode == "batch":
            return x * keep_mask((1,), self.drop_prob, x.device).to(x.dtype)
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        return x * keep_mask(shape, self.drop_prob, x.device).to(x.dtype) / survival

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, mode={self.mode!r}"


def linear_decay(num_blocks: int, final_drop_prob: float) -> list[float]:
    """The paper's linear decay rule: block l of L drops with probability (l / L) * (1 - p_L).

    Returns the drop probability of each block, l = 1..L (the last one equals `final_drop_prob`).
    """
    return [final_drop_prob * (i + 1) / num_blocks for i in range(num_blocks)]
