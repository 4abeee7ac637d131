"""FractalNet: Larsson, Maire, Shakhnarovich 2016, "FractalNet: Ultra-Deep Neural Networks
without Residuals", arXiv 1605.07648 (ICLR 2017).

A fractal block is the expansion rule of Sec. 2 written as code: f_1(z) = conv(z) and
f_{C+1}(z) = join(f_C(f_C(z)), conv(z)), where a join is the element-wise mean of its inputs.
Joins that follow each other merge into one (the paper's Fig. 1, and the authors' Caffe
generator), so a block of C columns has 2**(C-2) joins of 2..C inputs and its deepest column
runs 2**(C-1) convolutions. B = 5 blocks, each followed by 2x2 max pooling, take 32x32 CIFAR
images to 1x1; a linear layer gives the class scores. Depth is B * 2**(C-1): 20 layers for
C=3, 40 for C=4.

Regularization (Sec. 3.1, and the training setup of Sec. 4): local drop-path (every join drops
each input with p=0.15 and keeps at least one), global drop-path (one column, the same in every
block, for the whole network), mixed 50/50 per mini-batch, and dropout 0/0.1/0.2/0.3/0.4 in
blocks 1..5. The masks come from `cnnzoo.layers.drop_path`. In eval mode the network is
deterministic; `eval_column` runs a single column (``num_columns - 1`` is the paper's "deepest
column alone" network).

Deviations (each spec lists them all):
- Parameter counts differ from the paper's Table 1: its 20-layer layout has 33.7M parameters,
  not 38.6M, and the paper gives no widths for the 40-layer network (we use 32-64-128-256-256).
- Convolutions have no bias and batch norm has a learnt scale and shift (`ConvNormAct`); the
  authors' Caffe units have a conv bias and batch norm without scale/shift.
- Dropout follows the ReLU of every conv unit; the authors' Caffe code puts it between the
  convolution and batch norm.
- Every column is computed in training and dropped inputs are weighted by zero, which keeps the
  graph static (FX-traceable); the authors' layer skips the arithmetic of dropped inputs only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnzoo.errors import UsageError
from cnnzoo.layers import ConvNormAct, check_input
from cnnzoo.layers.drop_path import join_keep_mask, sample_global_column
from cnnzoo.specs import ModelSpec, Paper, Result, register

PAPER = Paper(
    title="FractalNet: Ultra-Deep Neural Networks without Residuals",
    authors="Larsson, Maire, Shakhnarovich",
    year=2016,
    arxiv="1605.07648",
)

# The training setup of Sec. 4: dropout of blocks 1..5, local drop-path rate of every join.
PAPER_DROPOUT = (0.0, 0.1, 0.2, 0.3, 0.4)
PAPER_LOCAL_DROP = 0.15
PAPER_GLOBAL_RATIO = 0.5  # half of the mini-batches use global drop-path, half local


def join_weights(
    columns: tuple[int, ...], drop_prob: float, path: Tensor | int, like: Tensor
) -> Tensor:
    """Weights of a join's inputs (they sum to 1), given the network's path for this batch.

    Args:
        columns: the block columns the join merges, in input order.
        drop_prob: local drop-path probability (0 in eval mode).
        path: a column index: keep only that column (global drop-path, or `eval_column`);
            -1: local drop-path. A join the chosen column does not pass through is off its
            path, its output unused, and it keeps every input.
        like: a tensor giving the device and dtype.
    """
    device = like.device
    path = torch.as_tensor(path, device=device)
    chosen = torch.tensor(columns, device=device) == path
    keep = chosen | ~chosen.any()
    if drop_prob > 0.0:
        keep = torch.where(path < 0, join_keep_mask(len(columns), drop_prob, device), keep)
    weights = keep.to(like.dtype)
    return weights / weights.sum()


# Leaves in FX graphs: the random and data-dependent parts stay single calls at run time.
torch.fx.wrap("join_weights")
torch.fx.wrap("sample_global_column")


class FractalJoin(nn.Module):
    """A join: the element-wise mean of its inputs, or their weighted mean under drop-path.

    Args:
        columns: the block columns it merges (for global drop-path and `eval_column`).
        local_drop_prob: probability of dropping each input in training (local drop-path).
    """

    def __init__(self, columns: tuple[int, ...], local_drop_prob: float) -> None:
        super().__init__()
        self.columns = columns
        self.local_drop_prob = local_drop_prob

    def forward(self, inputs: list[Tensor], path: Tensor | int | None = None) -> Tensor:
        stacked = torch.stack(inputs)
        if path is None:
            return stacked.mean(dim=0)
        drop_prob = self.local_drop_prob if self.training else 0.0
        weights = join_weights(self.columns, drop_prob, path, inputs[0])
        return (stacked * weights[:, None, None, None, None]).sum(dim=0)

    def extra_repr(self) -> str:
        return f"columns={self.columns}, local_drop_prob={self.local_drop_prob}"


class FractalConv(nn.Module):
    """The conv unit of a fractal block: conv3x3-BN-ReLU, then the block's dropout."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.unit = ConvNormAct(in_channels, out_channels, 3)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.unit(x))


class Fractal(nn.Module):
    """f_C of the expansion rule, returning its C column outputs before their final join.

    f_1(z) = conv(z); f_C(z) = join(f_{C-1}(f_{C-1}(z)), conv(z)). The outer join is left to
    the caller so that it merges with the joins around it. Output i has passed 2**i convs.

    Args:
        columns: C.
        first_column: the block column of this fractal's column 0 (its joins need to know
            which block columns they merge).
    """

    def __init__(
        self,
        columns: int,
        in_channels: int,
        out_channels: int,
        dropout: float,
        local_drop_prob: float,
        first_column: int = 0,
    ) -> None:
        super().__init__()
        self.num_columns = columns
        self.conv = FractalConv(in_channels, out_channels, dropout)
        if columns > 1:
            args = (columns - 1, out_channels, dropout, local_drop_prob, first_column + 1)
            self.first = Fractal(args[0], in_channels, *args[1:])
            # f_1 is a single conv: f_1(f_1(z)) has no join between its two convs.
            self.join = (
                FractalJoin(tuple(range(first_column + 1, first_column + columns)),
                            local_drop_prob)
                if columns > 2
                else None
            )  # fmt: skip
            self.second = Fractal(args[0], out_channels, *args[1:])

    def forward(self, x: Tensor, path: Tensor | int | None = None) -> list[Tensor]:
        if self.num_columns == 1:
            return [self.conv(x)]
        inner = self.first(x, path)
        z = inner[0] if self.join is None else self.join(inner, path)
        return [self.conv(x), *self.second(z, path)]


class FractalBlock(nn.Module):
    """One block: a fractal of C columns, the join of all columns, 2x2 max pooling."""

    def __init__(
        self,
        columns: int,
        in_channels: int,
        out_channels: int,
        dropout: float,
        local_drop_prob: float,
    ) -> None:
        super().__init__()
        self.fractal = Fractal(columns, in_channels, out_channels, dropout, local_drop_prob)
        self.join = FractalJoin(tuple(range(columns)), local_drop_prob)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor, path: Tensor | int | None = None) -> Tensor:
        return self.pool(self.join(self.fractal(x, path), path))


class FractalNet(nn.Module):
    """A fractal network for CIFAR-sized inputs.

    Args:
        channels: filters of each block (one block per entry).
        columns: C, the number of columns of every block.
        dropout: dropout rate of every block, or one rate per block (0 disables).
        local_drop_prob: local drop-path probability of every join (0 disables).
        global_drop_ratio: fraction of mini-batches that use global drop-path (0 disables).
        eval_column: in eval mode, run only this column (0 = shallowest,
            ``columns - 1`` = deepest); None joins all columns.
    """

    def __init__(
        self,
        *,
        channels: tuple[int, ...],
        columns: int,
        dropout: float | tuple[float, ...] = PAPER_DROPOUT,
        local_drop_prob: float = PAPER_LOCAL_DROP,
        global_drop_ratio: float = PAPER_GLOBAL_RATIO,
        eval_column: int | None = None,
        num_classes: int = 10,
        in_chans: int = 3,
        name: str = "fractalnet",
    ) -> None:
        super().__init__()
        self.name, self.in_chans = name, in_chans
        rates = (dropout,) * len(channels) if isinstance(dropout, float | int) else dropout
        if len(rates) != len(channels):
            raise UsageError(f"{name}: {len(channels)} blocks but {len(rates)} dropout rates")
        if not 0.0 <= local_drop_prob < 1.0 or not 0.0 <= global_drop_ratio <= 1.0:
            raise UsageError("local_drop_prob must be in [0, 1), global_drop_ratio in [0, 1]")
        if eval_column is not None and not 0 <= eval_column < columns:
            raise UsageError(f"eval_column must be in [0, {columns}), got {eval_column}")
        self.num_columns = columns
        self.local_drop_prob = local_drop_prob
        self.global_drop_ratio = global_drop_ratio
        self.eval_column = eval_column
        blocks, cin = [], in_chans
        for cout, rate in zip(channels, rates, strict=True):
            blocks.append(FractalBlock(columns, cin, cout, float(rate), local_drop_prob))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        # Identity at 32x32 (five poolings leave 1x1); lets larger inputs reach the classifier.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)  # the authors' Caffe weight filler
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _path(self, x: Tensor) -> Tensor | int | None:
        """This batch's path: None (join every column), a column, or -1 (local drop-path)."""
        if not self.training:
            return self.eval_column
        if self.local_drop_prob == 0.0 and self.global_drop_ratio == 0.0:
            return None
        return sample_global_column(self.num_columns, self.global_drop_ratio, x.device)

    def forward(self, x: Tensor) -> Tensor:
        x = check_input(x, self.in_chans, self.name)
        path = self._path(x)
        for block in self.blocks:
            x = block(x, path)
        return self.fc(self.flatten(self.avgpool(x)))


_FRACTAL_NOTE = (
    "Parameter count: the paper's Table 1 gives 38.6M for the 20-layer network, but its layout "
    "(B=5, C=3, channels 64-128-256-512-512, 3x3 convs, one linear layer) has 33.7M; the "
    "authors' Caffe generator builds the same 33.7M network (khanrc/pt.fractalnet notes the "
    "same gap). We build the layout the paper describes."
)
_TABLE1 = "Larsson et al., arXiv 1605.07648, Table 1"
_TABLE1_KHANRC = _TABLE1 + " (as quoted in the khanrc/pt.fractalnet README)"
_COMMON_DEVIATIONS = (
    "Convolutions have no bias and batch norm learns a scale and shift (conv-BN-ReLU as in "
    "the paper's text); the authors' Caffe units have a conv bias and batch norm without "
    "scale/shift.",
    "Dropout follows the ReLU of every conv unit; the authors' Caffe code puts it between "
    "the convolution and batch norm.",
    "Pooling follows each block's final join (the paper's Fig. 1); the authors' Caffe code "
    "pools each column before that join.",
    "Adaptive average pooling before the linear layer (identity at 32x32).",
    "Training computes every column and weights dropped join inputs by zero (a static, "
    "FX-traceable graph); the function computed equals the paper's drop-path.",
)


def _register(
    name: str, channels: tuple[int, ...], columns: int, num_params: int, macs: int,
    results: tuple[Result, ...], deviations: tuple[str, ...],
) -> None:  # fmt: skip
    depth = len(channels) * 2 ** (columns - 1)
    widths = "-".join(map(str, channels))
    register(
        ModelSpec(
            name=name,
            family="fractalnet",
            paper=PAPER,
            builder=FractalNet,
            arch={"channels": channels, "columns": columns},
            summary=f"FractalNet, {depth} layers: B={len(channels)} blocks of C={columns} "
            f"columns, {widths} filters",
            input_size=(3, 32, 32),
            dataset="cifar10",
            num_classes=10,
            num_params=num_params,
            macs=macs,
            results=results,
            deviations=(*deviations, *_COMMON_DEVIATIONS),
        )
    )


_register(
    "fractalnet20_cifar", (64, 128, 256, 512, 512), columns=3,
    num_params=33_724_618, macs=845_222_912,
    results=(
        Result("cifar10_test_err", 10.18, _TABLE1_KHANRC),
        Result("cifar10_aug_test_err", 5.22, _TABLE1 + " (C10+, 38.6M params)"),
        Result("cifar100_aug_test_err", 23.30, _TABLE1 + " (C100+)"),
        Result("cifar10_test_err_droppath_dropout", 7.33, _TABLE1_KHANRC),
        Result("cifar10_aug_test_err_droppath_dropout", 4.60, _TABLE1),
        Result("cifar100_aug_test_err_droppath_dropout", 23.73, _TABLE1),
        Result("svhn_test_err_droppath_dropout", 1.87, _TABLE1),
        Result("cifar10_aug_test_err_deepest_column", 4.68, _TABLE1_KHANRC),
        Result("cifar100_aug_test_err_deepest_column", 24.32, _TABLE1_KHANRC),
    ),
    deviations=(_FRACTAL_NOTE,),
)  # fmt: skip
_register(
    "fractalnet40_cifar", (32, 64, 128, 256, 256), columns=4,
    num_params=19_040_714, macs=510_790_144,
    results=(
        Result("cifar10_aug_test_err", 5.24,
               _TABLE1 + " (40 layers, 22.9M params; value from memory, unconfirmed)"),
    ),
    deviations=(
        "The paper gives no channel widths for its 40-layer network (Table 1: 22.9M "
        "parameters), and no power-of-two width table gives 22.9M with C=4 (64-128-256-512-512 "
        "gives 76M; a base width of 35 would give 22.8M). We halve the 20-layer network's "
        "widths (32-64-128-256-256), keeping its doubling rule: 19.0M parameters.",
        _FRACTAL_NOTE,
    ),
)  # fmt: skip
