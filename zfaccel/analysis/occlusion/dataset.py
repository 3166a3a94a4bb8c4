"""The images of a dataset sweep: which ones, in which order, with which labels, and reading one.

A sweep's data is a folder of image files (searched recursively), a text file listing
one path per line, a list of paths, or a torch ``Dataset`` of ``(image, label)`` items
already preprocessed. Files are indexed in sorted path order (relative to the folder,
``/``-separated), so index i means the same file on every run and every rank. A
folder whose images all lie in subfolders (torchvision's ImageFolder layout) gives
each image a label: its top-level subfolder's name.

Reading happens in DataLoader workers (``SweepImages``): a file that cannot be read
becomes a failed item carrying its error, never an exception, so that one corrupt
image cannot stop a long run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from zfaccel.identity import listing_identity
from zfaccel.models.preprocessing import IMAGE_SUFFIXES, Preprocessing

LISTING_SUFFIXES = (".txt", ".lst", ".list")  # a text file of paths rather than an image


@dataclass(frozen=True)
class Listing:
    """What a sweep runs over.

    root: the folder ``paths`` are relative to (None for a Dataset); paths: (N,) strings, sorted
    (``dataset[i]`` for a Dataset); folder_label: (N,) index into ``folder_classes`` per image, or
    None without ImageFolder layout; identity: a hash of the listing (other files -> other hash).
    """

    root: Path | None
    paths: list[str]
    identity: str
    folder_classes: list[str] | None = None
    folder_label: list[int] | None = None
    dataset: Dataset | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def file(self, i: int) -> Path:
        """The absolute path of image ``i`` (a file source only)."""
        if self.root is None:
            raise ValueError("this sweep's images came from a Dataset, not from files")
        return self.root / self.paths[i]


def _images_below(folder: Path) -> list[str]:
    """Every image file below ``folder`` (recursively, following no links to folders twice), as sorted
    posix paths relative to it. Hidden files and folders (".name") are skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(dirpath, name).relative_to(folder).as_posix())
    return sorted(found)


def _folder_listing(folder: Path) -> Listing:
    paths = _images_below(folder)
    if not paths:
        raise ValueError(f"data folder {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    classes = labels = None
    if all("/" in p for p in paths):  # ImageFolder layout: every image inside a class subfolder
        tops = [p.split("/", 1)[0] for p in paths]
        classes = sorted(set(tops))
        index = {name: k for k, name in enumerate(classes)}
        labels = [index[t] for t in tops]
    return Listing(folder.resolve(), paths, listing_identity(paths), classes, labels)


def _text_listing(file: Path) -> Listing:
    """One path per line (blank lines and '#' comments skipped); relative paths are relative to the
    file's folder, and the listing's root is the folder all files lie in. Files are not opened here:
    a missing one fails when the sweep reads it."""
    base = file.resolve().parent
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read the list of images {str(file)!r}: {err}") from err
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise ValueError(f"the list of images {str(file)!r} names no files")
    return _paths_listing([e if os.path.isabs(e) else str(base / e) for e in entries])


def _paths_listing(paths: Sequence[str | os.PathLike], root: Path | None = None) -> Listing:
    absolute = [os.path.abspath(p) for p in paths]
    if root is None:
        root = Path(os.path.commonpath([os.path.dirname(p) for p in absolute]))
    rel = sorted(Path(os.path.relpath(p, root)).as_posix() for p in absolute)
    return Listing(root, rel, listing_identity(rel))


def _dataset_listing(data: Dataset) -> Listing:
    if not hasattr(data, "__len__"):
        raise TypeError("data must have a length: a map-style torch Dataset (an IterableDataset cannot be resumed)")
    n = len(data)
    if n == 0:
        raise ValueError("data is an empty Dataset")
    paths = [f"dataset[{i}]" for i in range(n)]
    return Listing(None, paths, f"{type(data).__module__}.{type(data).__qualname__} of {n} items", dataset=data)


def list_images(data: str | os.PathLike | Sequence[str | os.PathLike] | Dataset, name: str = "data") -> Listing:
    """The listing of ``data``: a folder, a text file of paths, a list of paths, or a Dataset.

    FileNotFoundError / ValueError / TypeError naming ``name`` when it is missing, empty or of
    another kind.
    """
    if isinstance(data, Dataset):
        return _dataset_listing(data)
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if path.is_dir():
            return _folder_listing(path)
        if path.is_file():
            if path.suffix.lower() in IMAGE_SUFFIXES:
                return _paths_listing([path])
            return _text_listing(path)
        raise FileNotFoundError(f"{name} {str(path)!r} does not exist")
    if isinstance(data, Sequence) and data and all(isinstance(p, str | os.PathLike) for p in data):
        return _paths_listing(list(data))
    if isinstance(data, Sequence) and not data:
        raise ValueError(f"{name} is an empty list")
    raise TypeError(
        f"{name} must be a folder, a text file of paths, a list of paths or a torch Dataset, got {type(data).__name__}"
    )


class SweepImages(Dataset):
    """Item i of a listing as ``(i, image (3, S, S) float32, label, error)``, for DataLoader workers.

    ``label`` is the folder's or the Dataset's label (-1 where there is none); ``error`` is "" for an
    image that was read, else why it could not be (the image is then zeros). Only file reading is
    caught: a Dataset that raises is a bug in the Dataset and propagates.
    """

    def __init__(self, listing: Listing, preprocessing: Preprocessing) -> None:
        self.listing = listing
        self.preprocessing = preprocessing
        self.size = preprocessing.size

    def __len__(self) -> int:
        return len(self.listing)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, int, str]:
        listing = self.listing
        if listing.dataset is not None:
            return self._dataset_item(i)
        label = -1 if listing.folder_label is None else listing.folder_label[i]
        try:
            return i, self.preprocessing.load(listing.file(i)), label, ""
        except (ValueError, OSError) as err:  # unreadable, corrupt, missing or not an image
            return i, torch.zeros(3, self.size, self.size), label, str(err)

    def _dataset_item(self, i: int) -> tuple[int, torch.Tensor, int, str]:
        item = self.listing.dataset[i]
        image, label = (item[0], item[1]) if isinstance(item, tuple | list) and len(item) > 1 else (item, -1)
        if isinstance(image, tuple | list):
            image = image[0]
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or not image.is_floating_point():
            raise TypeError(f"data[{i}] must be a float (3, H, W) image tensor or an (image, label) pair, "
                            f"got {type(image).__name__} {tuple(getattr(image, 'shape', ()))}")  # fmt: skip
        if isinstance(label, torch.Tensor):
            label = label.item() if label.numel() == 1 else -1
        return i, image.float(), int(label) if isinstance(label, int | float) else -1, ""
