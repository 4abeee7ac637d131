"""Local response normalization with the AlexNet paper's formula and constants."""

from __future__ import annotations

from torch import nn

# AlexNet paper, Section 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75.
PAPER_K, PAPER_SIZE, PAPER_ALPHA, PAPER_BETA = 2.0, 5, 1e-4, 0.75


class LocalResponseNorm(nn.LocalResponseNorm):
    """b = a / (k + alpha * sum over n neighbouring maps of a^2) ** beta, as in the AlexNet paper.

    PyTorch (like Caffe) divides alpha by n; the paper does not, so alpha is scaled by n here and
    the module computes exactly the paper's formula.
    """

    def __init__(
        self,
        size: int = PAPER_SIZE,
        alpha: float = PAPER_ALPHA,
        beta: float = PAPER_BETA,
        k: float = PAPER_K,
    ) -> None:
        super().__init__(size=size, alpha=alpha * size, beta=beta, k=k)
        self.paper_alpha = alpha
