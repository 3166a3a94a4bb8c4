"""How top-k mining reads its data: a Dataset, a DataLoader, an iterable of batches or a folder.

Items that cannot be read (a ValueError from the dataset, e.g. Preprocessing.load on a corrupt
file) are skipped and reported, unless ``strict``; every other error is a bug in the dataset and
propagates. Each batch carries the dataset indices of its images, so images after a skipped one
keep their index in the dataset (in a folder: in its sorted file list).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset

from zfaccel.models.preprocessing import ImageFolder, Preprocessing

Failure = tuple[int, str, str]  # (index into the dataset, path or item name, error message)


class Batch(NamedTuple):
    """indices: (B,) int64 dataset indices of ``images``: (B, C, H, W) (None when B == 0, every item of
    the batch unreadable); failures: the batch's skipped items, in index order."""

    indices: torch.Tensor
    images: torch.Tensor | None
    failures: list[Failure]


def as_dataset(dataset, preprocessing: Preprocessing):
    """A folder (str or PathLike) -> ImageFolder read with ``preprocessing``; a Dataset, DataLoader or
    iterable as it is; TypeError for anything else."""
    if isinstance(dataset, str | os.PathLike):
        return ImageFolder(dataset, preprocessing)
    if isinstance(dataset, DataLoader | Dataset) or hasattr(dataset, "__getitem__") or isinstance(dataset, Iterable):
        return dataset
    raise TypeError(
        f"dataset must be a torch Dataset, a DataLoader or a folder of images, got {type(dataset).__name__}"
    )


def random_access(data) -> bool:
    """Whether items are read one by one (a Dataset or folder) rather than in the loader's batches."""
    return not isinstance(data, DataLoader) and hasattr(data, "__getitem__") and hasattr(data, "__len__")


def _image_of(item) -> torch.Tensor:
    image = item[0] if isinstance(item, tuple | list) else item
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"dataset items must be image tensors or (image, ...) tuples, got {type(image).__name__}")
    return image


def _item_name(data, i: int) -> str:
    return str(data.files[i]) if isinstance(data, ImageFolder) else f"{type(data).__name__}[{i}]"


def batches(data, batch_size: int, start: int, strict: bool) -> Iterator[Batch]:
    """The data from item ``start`` on, in batches: of ``batch_size`` items from a Dataset (its unreadable
    items skipped unless ``strict``), or a DataLoader's / iterable's own batches (read whole: an error
    there propagates, since the loader cannot go on past it)."""
    if not random_access(data):
        seen = 0
        for batch in data:
            images = _image_of(batch)
            if images.dim() == 3:
                images = images.unsqueeze(0)
            if seen + len(images) > start:  # batches wholly before `start` were mined already
                skip = max(0, start - seen)
                yield Batch(torch.arange(seen + skip, seen + len(images)), images[skip:], [])
            seen += len(images)
        return
    for lo in range(start, len(data), batch_size):
        indices, images, failures = [], [], []
        for i in range(lo, min(lo + batch_size, len(data))):
            try:
                item = data[i]
            except ValueError as err:
                if strict:
                    raise
                failures.append((i, _item_name(data, i), str(err)))
                continue
            indices.append(i)
            images.append(_image_of(item))
        yield Batch(torch.tensor(indices, dtype=torch.long), torch.stack(images) if images else None, failures)


def load(data, indices: Sequence[int]) -> torch.Tensor:
    """The images at ``indices`` (dataset indices), (len(indices), C, H, W); errors propagate (these
    were read once already, during mining)."""
    source = data.dataset if isinstance(data, DataLoader) else data
    if not hasattr(source, "__getitem__"):
        raise TypeError("projecting the top activations needs a dataset with random access (a Dataset, a DataLoader "
                        "over one, or a folder); pass project=False for a plain iterable")  # fmt: skip
    return torch.stack([_image_of(source[i]) for i in indices])
