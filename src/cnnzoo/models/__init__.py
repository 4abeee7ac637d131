"""One module per architecture family; importing a module registers its specs."""

from cnnzoo.models import (
    alexnet,
    densenet,
    fractalnet,
    googlenet,
    lenet,
    nin,
    preact_resnet,
    resnet,
    resnext,
    squeezenet,
    stochastic_depth,
    vgg,
    wide_resnet,
    zfnet,
)

__all__ = [
    "alexnet",
    "densenet",
    "fractalnet",
    "googlenet",
    "lenet",
    "nin",
    "preact_resnet",
    "resnet",
    "resnext",
    "squeezenet",
    "stochastic_depth",
    "vgg",
    "wide_resnet",
    "zfnet",
]
