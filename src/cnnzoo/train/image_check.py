"""Does an image look like the ones a model was trained on? `predict` asks before it answers.

A model answers confidently on any input, so a black-on-white digit given to a model trained on
white-on-black digits gets a wrong answer at 97%. Two statistics catch the common mistakes: the
mean brightness (an inverted or over-exposed image lies far outside the training images' range)
and the background polarity (whether the centre is lighter than the border: light strokes on a
dark background, or the reverse). Both are measured on a sample of the run's own training images,
so a data set without a consistent polarity (photographs) is never warned about it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["ImageCheck", "ImageStats", "InputImageWarning", "image_stats"]

SAMPLE = 512  # training images the reference is measured on (evenly spaced)
CONSISTENT = 0.9  # the polarity is checked when at least this share of training images has it
POLARITY_MARGIN = 0.05  # |centre - border| below this (in [0, 1] brightness) has no polarity
BRIGHTNESS_SLACK = 0.1  # allowed beyond the training images' 1st..99th percentile brightness


class InputImageWarning(UserWarning):
    """An image's statistics disagree with the training data's; the message names the fix."""


@dataclass(frozen=True)
class ImageStats:
    """Brightness statistics of one image, in [0, 1] units (the mean over its channels).

    Attributes:
        brightness: the mean of all pixels.
        polarity: the centre's mean minus the border's (an outer ring of 1/8 of the smaller
            side, at least one pixel): positive for light strokes on a dark background.
    """

    brightness: float
    polarity: float


def image_stats(image: np.ndarray) -> ImageStats:
    """Statistics of an image given as [H, W] or [H, W, C] (uint8 0..255, or float in [0, 1]),
    or as [C, H, W] when its first axis is 1 or 3 and its last is not."""
    x = np.asarray(image)
    x = x.astype(np.float64) / 255 if x.dtype == np.uint8 else x.astype(np.float64)
    if x.ndim == 3 and x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
        x = np.moveaxis(x, 0, -1)
    gray = x.mean(-1) if x.ndim == 3 else x
    ring = max(1, round(min(gray.shape) / 8))
    centre = gray[ring:-ring, ring:-ring]
    if centre.size == 0:  # too small to have a border
        return ImageStats(float(gray.mean()), 0.0)
    border_sum = gray.sum() - centre.sum()
    border = border_sum / (gray.size - centre.size)
    return ImageStats(float(gray.mean()), float(centre.mean() - border))


@dataclass(frozen=True)
class ImageCheck:
    """The training images' statistics, and the comparison of an image with them.

    Attributes:
        data: the data set's name.
        brightness: the 1st and 99th percentile of the training images' mean brightness; None
            when the training data could not be opened (nothing is checked then).
        light_on_dark: the share of training images lighter in the centre than at the border,
            among those with a polarity.
    """

    data: str
    brightness: tuple[float, float] | None
    light_on_dark: float | None

    @classmethod
    def for_run(cls, trained) -> ImageCheck:
        """Measure a `TrainedModel`'s training images (a sample of `SAMPLE`)."""
        from cnnzoo.data import DataError, open_dataset
        from cnnzoo.registry import get_spec

        config = trained.config
        try:
            splits = open_dataset(
                config.data, seed=config.seed, input_size=get_spec(config.model).input_size,
                validation=config.validation,
            )  # fmt: skip
        except (DataError, OSError):
            return cls(trained.data.name, None, None)
        return cls.measure(trained.data.name, splits.train)

    @classmethod
    def measure(cls, name: str, dataset) -> ImageCheck:
        """The statistics of up to `SAMPLE` images of `dataset` (items `(image, label)`)."""
        picks = np.unique(np.linspace(0, len(dataset) - 1, min(SAMPLE, len(dataset))).astype(int))
        stats = [image_stats(np.asarray(dataset[int(i)][0])) for i in picks]
        brightness = np.array([s.brightness for s in stats])
        signs = [s.polarity > 0 for s in stats if abs(s.polarity) >= POLARITY_MARGIN]
        low, high = np.percentile(brightness, [1, 99])
        return cls(name, (float(low), float(high)), float(np.mean(signs)) if signs else None)

    @property
    def polarity(self) -> str | None:
        """The training images' polarity ("light on dark", "dark on light"), or None."""
        if self.light_on_dark is None:
            return None
        if self.light_on_dark >= CONSISTENT:
            return "light on dark"
        if self.light_on_dark <= 1 - CONSISTENT:
            return "dark on light"
        return None

    def expects(self) -> str:
        """What the training images look like, in words."""
        if self.brightness is None:
            return f"images like {self.data}'s (its training data is not available to compare)"
        low, high = self.brightness
        kind = {
            "light on dark": "light strokes on a dark background",
            "dark on light": "dark strokes on a light background",
        }.get(self.polarity or "", "no consistent background polarity")
        return f"images like {self.data}'s: mean brightness {low:.2f}..{high:.2f}, {kind}"

    def problems(self, stats: ImageStats) -> list[str]:
        """What about an image disagrees with the training images (empty: nothing)."""
        if self.brightness is None:
            return []
        found = []
        low, high = self.brightness
        if not low - BRIGHTNESS_SLACK <= stats.brightness <= high + BRIGHTNESS_SLACK:
            found.append(
                f"its mean brightness {stats.brightness:.2f} is outside the training images' "
                f"{low:.2f}..{high:.2f}"
            )
        polarity = self.polarity
        if polarity is not None and abs(stats.polarity) >= POLARITY_MARGIN:
            seen = "light on dark" if stats.polarity > 0 else "dark on light"
            if seen != polarity:
                found.append(f"it is {seen}, the training images are {polarity}")
        return found

    def inspect(self, path: object, image: np.ndarray, *, invert: bool = False) -> np.ndarray:
        """The image to classify (inverted when asked); warns with `InputImageWarning` when it
        looks unlike the training images, and names --invert when inverting would fix that."""
        if invert:
            image = 255 - image if image.dtype == np.uint8 else 1.0 - image
        stats = image_stats(image)
        found = self.problems(stats)
        if found:
            flipped = ImageStats(1.0 - stats.brightness, -stats.polarity)
            if not self.problems(flipped):
                fix = (
                    "it was inverted by --invert; drop --invert"
                    if invert
                    else "if it is inverted, pass --invert"
                )
            else:
                fix = "the answer may be wrong: check that it shows what the model was trained on"
            warnings.warn(
                f"{path} does not look like the training data ({self.data}): "
                f"{'; '.join(found)}; {fix}",
                InputImageWarning,
                stacklevel=2,
            )
        return image
