"""How images reach a model: size and per-channel normalisation, and loading image files.

A model may declare ``input_size``, ``mean`` and ``std`` attributes (ZFNet, AlexNet,
VGG and the demo model do); otherwise ImageNet's 224 px and statistics apply.
Images are never squashed: the shorter side is resized to the input size and the
centre cut out, as torchvision's ``Resize(size)`` then ``CenterCrop(size)`` do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zfaccel.models.image_files import read_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Preprocessing:
    """Read as RGB in [0, 1], resize the shorter side to ``size`` and cut out the centre ``size`` x ``size``,
    subtract ``mean``, divide by ``std``."""

    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def normalize(self, rgb: torch.Tensor) -> torch.Tensor:
        """rgb: (..., 3, H, W) float in [0, 1] -> normalised, same shape."""
        mean = torch.tensor(self.mean, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
        return (rgb - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of normalize, clipped to [0, 1] (for pictures)."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * std + mean).clamp(0, 1)

    def load(self, path: str | os.PathLike) -> torch.Tensor:
        """An image file -> (3, size, size) float32, normalised.

        FileNotFoundError / ValueError naming the file when it is missing or unreadable.
        """
        return self.normalize(resize_center_crop(read_rgb(path), self.size))

    def load_many(self, paths: str | os.PathLike | Iterable[str | os.PathLike]) -> torch.Tensor:
        """One image file or several -> (N, 3, size, size) float32, normalised."""
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        if isinstance(paths, bytes) or not isinstance(paths, Iterable):
            raise TypeError(f"paths must be an image path or a list of them, got {type(paths).__name__}")
        paths = list(paths)
        if not paths:
            raise ValueError("paths is empty: give at least one image file")
        for i, path in enumerate(paths):
            if not isinstance(path, str | os.PathLike):
                raise TypeError(f"paths[{i}] must be a str or os.PathLike, got {type(path).__name__}")
        return torch.stack([self.load(path) for path in paths])


def resize_center_crop(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) float -> (3, size, size), same dtype: the shorter side resized to ``size``, the centre cut out.

    As torchvision's Resize(size) (bilinear, antialiased; the longer side becomes
    int(size * long / short)) then CenterCrop(size) (top = round((h - size) / 2), with
    Python's round: 12.5 -> 12), so a 100 x 50 image keeps its middle 50 x 50, never squashed.
    """
    h, w = rgb.shape[-2:]
    short, long = min(h, w), max(h, w)
    new_long = int(size * long / short)
    new_h, new_w = (new_long, size) if w <= h else (size, new_long)
    if (new_h, new_w) != (h, w):
        rgb = F.interpolate(rgb[None], size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)[0]
    top, left = int(round((new_h - size) / 2)), int(round((new_w - size) / 2))
    return rgb[:, top : top + size, left : left + size]


def preprocessing_for(model: nn.Module) -> Preprocessing:
    """The model's declared preprocessing, or ImageNet's at 224 px."""
    return Preprocessing(
        getattr(model, "input_size", 224),
        tuple(getattr(model, "mean", IMAGENET_MEAN)),
        tuple(getattr(model, "std", IMAGENET_STD)),
    )


def load_images(paths: str | os.PathLike | Iterable[str | os.PathLike], model: nn.Module) -> torch.Tensor:
    """Image files as a batch for ``model``: (N, 3, size, size) float32, preprocessed as ``model`` declares.

    ``paths`` is one path or a list of them; FileNotFoundError / ValueError name a missing or
    unreadable file.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return preprocessing_for(model).load_many(paths)


class ImageFolder(torch.utils.data.Dataset):
    """The image files of a folder (sorted by name, not recursive) as (3, size, size) tensors.

    ``files`` lists them; item i is ``(image, i)``. ValueError when the folder holds no images.
    """

    def __init__(self, folder: str | os.PathLike, preprocessing: Preprocessing) -> None:
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"data folder {str(folder)!r} is not a folder")
        if not folder.is_dir():
            raise FileNotFoundError(f"data folder {str(folder)!r} does not exist")
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise ValueError(f"data folder {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        self.preprocessing = preprocessing

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.preprocessing.load(self.files[i]), i
