"""Data sets in their real on-disk formats and batched tensor augmentation.

`open_dataset(spec)` gives a `DataSplits` (train / val / test datasets and the facts a trainer
needs); `make_transform(splits, input_size, train=...)` gives the `BatchTransform` that turns a
batch of its images into a model's normalized input. Nothing here downloads.
"""

from cnnzoo.data.datasets import SPEC_FORMS, open_dataset
from cnnzoo.data.errors import DataError
from cnnzoo.data.imagefolder import ImageFolderDataset, load_image
from cnnzoo.data.safe_pickle import RestrictedUnpickler, load_pickle
from cnnzoo.data.splits import VALIDATION_MODES, DataSplits, ImageTensorDataset
from cnnzoo.data.synthetic import SyntheticImages
from cnnzoo.data.transforms import AUGMENTATIONS, BatchTransform, make_transform

__all__ = [
    "AUGMENTATIONS",
    "SPEC_FORMS",
    "VALIDATION_MODES",
    "BatchTransform",
    "DataError",
    "DataSplits",
    "ImageFolderDataset",
    "ImageTensorDataset",
    "RestrictedUnpickler",
    "SyntheticImages",
    "load_image",
    "load_pickle",
    "make_transform",
    "open_dataset",
]
