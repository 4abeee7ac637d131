"""The lecture companion: CS231n's CNN-architectures lecture, walked through with cnnzoo's own
commands (docs/lecture.md and docs/lecture.ipynb are generated from `content.py`)."""

from cnnzoo.lecture.page import build, run

__all__ = ["build", "run"]
