"""The lecture companion: CS231n's CNN-architectures lecture, walked through with cnnzoo's own
commands (docs/lecture.md and docs/lecture.ipynb are generated from `content.py` by
`python -m cnnzoo.lecture --out docs`)."""

from cnnzoo.lecture.page import run

__all__ = ["run"]
