"""LeNet-5: LeCun, Bottou, Bengio, Haffner 1998, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 86(11):2278-2324, Section II.B.

`lenet5` follows the paper: 32x32 input, C1 6@5x5, S2 trainable subsampling, C3 16@5x5 with the
partial connection table (Table I), S4, C5 120@5x5, F6 84, the scaled tanh A*tanh(S*a) with
A = 1.7159 and S = 2/3 (Appendix A), and Euclidean RBF output units with fixed codes. That makes
60,000 trainable parameters, the paper's figure.

Deviations (also in the spec): the RBF codes are a fixed, seeded +1/-1 code instead of the
paper's hand-drawn 7x12 character bitmaps (not published as data), and the output is used as
logits (negated squared distances) under cross-entropy instead of the paper's MAP criterion.

`lenet5_modern` is the form people usually mean today: ReLU, max pooling, full C3, linear output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnzoo.layers import Concat, check_input
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="Gradient-Based Learning Applied to Document Recognition",
    authors="LeCun, Bottou, Bengio, Haffner",
    year=1998,
    venue="Proc. IEEE 86(11):2278-2324",
)

# Table I: which S2 maps (columns 0-5) feed each C3 map (0-15).
C3_CONNECTIONS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


class ScaledTanh(nn.Module):
    """f(a) = A tanh(S a), A = 1.7159, S = 2/3 (paper, Appendix A)."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        return self.amplitude * torch.tanh(self.slope * x)


class TrainableSubsampling(nn.Module):
    """S2/S4: sum each 2x2 window, multiply by a trainable coefficient, add a trainable bias
    (one pair per feature map)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2)
        self.weight = nn.Parameter(torch.ones(channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        window_sum = self.pool(x) * 4.0
        return window_sum * self.weight + self.bias


class PartialConv2d(nn.Module):
    """C3: a 5x5 convolution in which output map j sees only the input maps of its table row.

    Rows with the same number of inputs form one grouped convolution over the gathered input
    maps, so the layer has exactly the paper's 1,516 parameters and 151,600 connections, and
    nothing is computed for the missing connections.
    """

    def __init__(
        self, connections: tuple[tuple[int, ...], ...], in_channels: int, kernel_size: int = 5
    ) -> None:
        super().__init__()
        runs: list[list[tuple[int, ...]]] = []
        for row in connections:  # consecutive rows of equal fan-in share one grouped conv
            if runs and len(runs[-1][0]) == len(row):
                runs[-1].append(row)
            else:
                runs.append([row])
        self.num_runs = len(runs)
        for i, run in enumerate(runs):
            if max(max(row) for row in run) >= in_channels:
                raise ValueError("connection table names an input map that does not exist")
            gathered = torch.tensor([m for row in run for m in row])
            self.register_buffer(f"inputs{i}", gathered)
            conv = nn.Conv2d(len(gathered), len(run), kernel_size, groups=len(run))
            setattr(self, f"conv{i}", conv)
        self.concat = Concat()

    def forward(self, x: Tensor) -> Tensor:
        outputs = []
        for i in range(self.num_runs):
            gathered = x.index_select(1, getattr(self, f"inputs{i}"))
            outputs.append(getattr(self, f"conv{i}")(gathered))
        return self.concat(outputs)


class EuclideanRBF(nn.Module):
    """Output layer: y_i = sum_j (x_j - w_ij)^2 with fixed codes w_i in {-1, +1}^84.

    Returns -y, so the most likely class has the largest value and the output can be used as
    logits. The codes are a buffer: the paper keeps them fixed, so they are not parameters.
    """

    def __init__(self, in_features: int, num_classes: int, seed: int = 1998) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        codes = torch.randint(0, 2, (num_classes, in_features), generator=generator) * 2.0 - 1.0
        self.register_buffer("codes", codes)

    def forward(self, x: Tensor) -> Tensor:
        diff = x.unsqueeze(1) - self.codes  # (N, classes, features)
        return -(diff * diff).sum(-1)


class LeNet5(nn.Module):
    """LeNet-5 as published (see the module docstring)."""

    def __init__(self, *, num_classes: int = 10, in_chans: int = 1, name: str = "lenet5") -> None:
        super().__init__()
        self.name, self.in_chans = name, in_chans
        self.c1 = nn.Conv2d(in_chans, 6, 5)
        self.act1 = ScaledTanh()
        self.s2 = TrainableSubsampling(6)
        self.act2 = ScaledTanh()
        self.c3 = PartialConv2d(C3_CONNECTIONS, 6)
        self.act3 = ScaledTanh()
        self.s4 = TrainableSubsampling(16)
        self.act4 = ScaledTanh()
        self.c5 = nn.Conv2d(16, 120, 5)
        self.act5 = ScaledTanh()
        self.flatten = nn.Flatten()
        self.f6 = nn.Linear(120, 84)
        self.act6 = ScaledTanh()
        self.output = EuclideanRBF(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = check_input(x, self.in_chans, self.name)
        x = self.act2(self.s2(self.act1(self.c1(x))))
        x = self.act4(self.s4(self.act3(self.c3(x))))
        x = self.flatten(self.act5(self.c5(x)))
        return self.output(self.act6(self.f6(x)))


class LeNet5Modern(nn.Module):
    """LeNet-5 as usually rebuilt today: ReLU, 2x2 max pooling, full C3, linear classifier."""

    def __init__(
        self, *, num_classes: int = 10, in_chans: int = 1, name: str = "lenet5_modern"
    ) -> None:
        super().__init__()
        self.name, self.in_chans = name, in_chans
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = check_input(x, self.in_chans, self.name)
        return self.classifier(self.flatten(self.features(x)))


register(
    ModelSpec(
        name="lenet5",
        family="lenet",
        paper=PAPER,
        builder=LeNet5,
        summary="LeNet-5 as published: partial C3, trainable subsampling, scaled tanh, RBF output",
        input_size=(1, 32, 32),
        dataset="mnist",
        num_classes=10,
        num_params=60_000,
        macs=325_680,
        results=(
            Result("mnist_test_err", 0.95, "LeCun et al. 1998, Proc. IEEE, MNIST results"),
            Result(
                "mnist_test_err_with_distortions",
                0.8,
                "LeCun et al. 1998, Proc. IEEE (trained with distorted images); unconfirmed",
            ),
        ),
        deviations=(
            "C3 is computed as three grouped convolutions (maps with 3, 4 and 6 inputs) over "
            "gathered input maps and concatenated: the same function and parameters as Table I.",
            "The RBF output codes are a fixed seeded +1/-1 code of length 84, not the paper's "
            "hand-drawn 7x12 bitmaps of the characters (not published as data).",
            "The negated RBF distances are used as logits under cross-entropy, not with the "
            "paper's MAP criterion (Sec. II.C).",
            "Weights start from PyTorch's default uniform initialization, not the paper's "
            "uniform in +-2.4/F_in (Appendix A).",
        ),
    )
)

register(
    ModelSpec(
        name="lenet5_modern",
        family="lenet",
        paper=PAPER,
        builder=LeNet5Modern,
        summary="LeNet-5 with ReLU, max pooling, full C3 and a linear output",
        input_size=(1, 32, 32),
        dataset="mnist",
        num_classes=10,
        num_params=61_706,
        macs=416_520,
        deviations=(
            "Not the paper's network: ReLU instead of scaled tanh, max pooling instead of "
            "trainable subsampling, C3 fully connected to S2, and a linear output layer instead "
            "of RBF units.",
        ),
    )
)
