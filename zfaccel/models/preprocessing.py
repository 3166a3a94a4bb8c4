"""How images reach a model: size and per-channel normalisation, and reading image files.

A model may declare ``input_size``, ``mean`` and ``std`` attributes (ZFNet and the
demo model do); otherwise ImageNet's 224 px and statistics apply, as for
torchvision's AlexNet and VGG.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Preprocessing:
    """Resize to ``size`` x ``size`` (bilinear), scale to [0, 1], subtract ``mean``, divide by ``std``."""

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
        """An image file -> (3, size, size) float32, normalised. ValueError naming the file if unreadable."""
        from PIL import Image, UnidentifiedImageError

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"image {str(path)!r} does not exist")
        try:
            with Image.open(path) as img:
                img = img.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
                rgb = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise ValueError(f"cannot read image {str(path)!r}: {err}") from err
        return self.normalize(rgb)


def preprocessing_for(model: nn.Module) -> Preprocessing:
    """The model's declared preprocessing, or ImageNet's at 224 px."""
    return Preprocessing(
        getattr(model, "input_size", 224),
        tuple(getattr(model, "mean", IMAGENET_MEAN)),
        tuple(getattr(model, "std", IMAGENET_STD)),
    )


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
