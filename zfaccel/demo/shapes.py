"""The shapes data: generated 64 x 64 pictures of ten kinds of coloured object on cluttered backgrounds.

Nothing is downloaded: images are drawn on demand (zfaccel.demo.drawing), in
chunks of ``CHUNK`` images, chunk c of a split from its own seed sequence
``(seed, split, c)``. So a split is the same on every call, a smaller size is a
prefix of a larger one, and train and test (different split numbers) never
share an image. Labels cycle through the classes (image i shows class
i % 10), so every class has size / 10 images, give or take one.

Colours are random and kept apart from the background, so the class is in the
outline alone: edges, corners and curves, the features the paper's
visualisations show.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from zfaccel.demo.drawing import OUTLINES, PARTS, SIZE, draw, draw_with_coverage, parts

CLASSES: tuple[str, ...] = tuple(OUTLINES)
SPLITS = {"train": 0, "test": 1}
PART_STREAM = 2  # part_images' seed sequences (seed, 2, class): no split's
CHUNK = 500  # images drawn per call of draw(): about 50 MB of float32 work arrays
# Per-channel mean and standard deviation of the pixels in [0, 1], measured on the first
# 10,000 training images with measure_stats (seed 0); 2,000 test images agree within 0.007.
MEAN: tuple[float, float, float] = (0.5053, 0.5035, 0.5021)
STD: tuple[float, float, float] = (0.2358, 0.2350, 0.2341)

# (split, seed) -> the longest uint8 (N, 3, 64, 64) prefix drawn so far, shared by all datasets.
_CACHE: dict[tuple[str, int], torch.Tensor] = {}
_LOCK = threading.Lock()


def check_split(split: str, size: int, seed: int) -> None:
    """ValueError/TypeError naming the argument unless split is 'train'/'test', size >= 1 and seed >= 0 ints."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    for name, value, low in (("size", size, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
        if value < low:
            raise ValueError(f"{name} must be at least {low}, got {value}")


def _chunk(split: str, seed: int, index: int) -> torch.Tensor:
    """Chunk ``index`` of a split: (CHUNK, 3, 64, 64) uint8."""
    rng, chunk_labels = _rng_and_labels(split, seed, index)
    return torch.from_numpy(draw(chunk_labels, rng))


def _rng_and_labels(split: str, seed: int, index: int) -> tuple[np.random.Generator, np.ndarray]:
    """Chunk ``index``'s generator and labels: what draws it."""
    rng = np.random.default_rng([seed, SPLITS[split], index])
    labels = (np.arange(index * CHUNK, (index + 1) * CHUNK) % len(CLASSES)).astype(np.int64)
    return rng, labels


def images(split: str = "train", size: int = 12_000, seed: int = 0) -> torch.Tensor:
    """The first ``size`` images of a split as (size, 3, 64, 64) uint8 RGB, drawn once per process."""
    check_split(split, size, seed)
    with _LOCK:
        have = _CACHE.get((split, seed))
        if have is None or len(have) < size:
            done = 0 if have is None else len(have) // CHUNK
            parts = [] if have is None else [have[: done * CHUNK]]
            parts += [_chunk(split, seed, c) for c in range(done, -(-size // CHUNK))]
            have = _CACHE[(split, seed)] = torch.cat(parts)
    return have[:size]


def object_masks(split: str = "test", size: int = 2_000, seed: int = 0) -> torch.Tensor:
    """Where the object is in each of the first ``size`` images of a split: (size, 64, 64) bool, the
    pixels its outline covers more than half of (coverage > 0.5; the clutter is not the object).

    The images are drawn again from their seeds (the same pictures as :func:`images`, which this
    neither reads nor changes), about 0.3 s per 500; the masks are not cached.
    """
    check_split(split, size, seed)
    masks = []
    for c in range(-(-size // CHUNK)):
        rng, chunk_labels = _rng_and_labels(split, seed, c)
        masks.append(torch.from_numpy(draw_with_coverage(chunk_labels, rng)[1] > 0.5))
    return torch.cat(masks)[:size]


def labels(size: int) -> torch.Tensor:
    """The labels of the first ``size`` images of any split: (size,) int64, image i shows class i % 10."""
    return torch.arange(size) % len(CLASSES)


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> float32 normalised with MEAN and STD, what the demo model expects."""
    mean = torch.tensor(MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(3, 1, 1)
    return (pixels.float() / 255 - mean) / std


def measure_stats(pixels: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation in [0, 1] of uint8 (N, 3, H, W) images."""
    x = pixels.double().div(255).transpose(0, 1).reshape(3, -1)
    return tuple(x.mean(1).tolist()), tuple(x.std(1).tolist())


class ShapesDataset(Dataset):
    """The shapes data as a torch Dataset: item i is (image (3, 64, 64) float32 normalised, label int).

    Args:
        split: "train" or "test" (disjoint: drawn from different seeds).
        size: how many images (the first ``size`` of the split).
        seed: which version of the data; 0 is the one the bundled model was trained and tested on.

    ``pixels`` (size, 3, 64, 64) uint8 and ``targets`` (size,) int64 hold the whole split,
    for batched training without a per-item loop. Other generated data with ten classes in the same
    order (image i shows class i % 10) subclass it with their own ``classes`` and ``draw``.
    """

    classes = CLASSES
    image_size = SIZE

    def __init__(self, split: str = "train", size: int = 12_000, seed: int = 0) -> None:
        check_split(split, size, seed)
        self.split, self.seed = split, seed
        self.pixels = self.draw(split, size, seed)
        self.targets = labels(size)

    @staticmethod
    def draw(split: str, size: int, seed: int) -> torch.Tensor:
        """The first ``size`` images of ``split`` and ``seed``: (size, 3, 64, 64) uint8."""
        return images(split, size, seed)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} images")
        return normalize(self.pixels[i]), int(self.targets[i])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, size={len(self)}, seed={self.seed})"


def demo_test_set(size: int = 2_000) -> ShapesDataset:
    """The held-out images ``zfaccel demo`` mines and shows: the first ``size`` of the test split, seed 0."""
    return ShapesDataset("test", size, 0)


class PartImages(NamedTuple):
    """Images of one class with the positions of its named parts (see ``part_images``)."""

    images: torch.Tensor  # (size, 3, 64, 64) float32, normalised as the demo model expects
    parts: dict[str, torch.Tensor]  # part name -> (size, 2) float32 (row, col) pixel centres
    masks: torch.Tensor  # (size, 64, 64) bool, the pixels the object covers (at least half)


def part_images(class_name: str, size: int, seed: int = 0, *, centred: bool = False) -> PartImages:
    """``size`` images of ``class_name`` and where its named parts are: the data for the correspondence study.

    Classes with parts: star (5 tips), square and frame (4 corners), cross (4 arm ends), diamond (4 points),
    triangle (2 corners and the tip); the names are ``zfaccel.demo.drawing.PARTS[class_name]``. The images
    come from their own seed sequence ``(seed, PART_STREAM, class)``, so they are none of the train or
    test split's, which stay as they were; the whole object lies inside every image. ``centred`` puts it in
    the middle of every image (its size, turn and colour still vary): parts then sit at about the same pixels
    in every image, as the eyes of the paper's frontal dog faces do.
    """
    if class_name not in PARTS:
        raise ValueError(f"class_name must be one of {', '.join(PARTS)} (the classes with named parts), "
                         f"got {class_name!r}")  # fmt: skip
    check_split("test", size, seed)
    if not isinstance(centred, bool):
        raise TypeError(f"centred must be a bool, got {type(centred).__name__}")
    rng = np.random.default_rng([seed, PART_STREAM, CLASSES.index(class_name)])
    pixels, where, masks = parts(class_name, size, rng, centred)
    positions = {name: torch.from_numpy(p) for name, p in where.items()}
    return PartImages(normalize(torch.from_numpy(pixels)), positions, torch.from_numpy(masks))
