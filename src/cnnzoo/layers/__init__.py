"""Blocks shared across families, one concept per module."""

from cnnzoo.layers.conv import ConvNormAct
from cnnzoo.layers.drop_path import DropPath, linear_decay
from cnnzoo.layers.inception import Inception, InceptionChannels, NaiveInception
from cnnzoo.layers.input import check_input
from cnnzoo.layers.lrn import LocalResponseNorm
from cnnzoo.layers.merge import Add, Concat
from cnnzoo.layers.residual import ResidualBlock
from cnnzoo.layers.shortcut import ZeroPadShortcut, make_shortcut, projection_shortcut

__all__ = [
    "Add",
    "Concat",
    "ConvNormAct",
    "DropPath",
    "Inception",
    "InceptionChannels",
    "LocalResponseNorm",
    "NaiveInception",
    "ResidualBlock",
    "ZeroPadShortcut",
    "check_input",
    "linear_decay",
    "make_shortcut",
    "projection_shortcut",
]
