"""Training: config and recipes, the loop, checkpoints, distributed runs and experiments."""

from cnnzoo.train.checkpoint import CheckpointError, CheckpointStore
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.loop import RunResult, TrainingDiverged, TrainingInterrupted, fit
from cnnzoo.train.recipes import RECIPES, get_recipe

__all__ = [
    "RECIPES",
    "CheckpointError",
    "CheckpointStore",
    "RunResult",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingInterrupted",
    "fit",
    "get_recipe",
]
