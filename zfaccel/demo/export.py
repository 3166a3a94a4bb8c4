"""The shapes data as image files, for the commands that read folders (``zfaccel sweep``, ``topk``).

``write_image_folder`` writes PNGs in torchvision's ImageFolder layout (one subfolder per
class, named as the bundled model names its classes), so that a sweep with
``--target label`` knows each image's true class.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from zfaccel.demo.shapes import CLASSES, images, labels


def write_image_folder(folder: str | os.PathLike, count: int = 200, *, split: str = "test", seed: int = 0) -> Path:
    """Write the first ``count`` images of a shapes split as ``folder/<class>/<split>_<index>.png``
    (64 x 64 RGB); returns ``folder``. Existing files of the same names are replaced."""
    pixels = images(split, count, seed)  # validates split, count and seed
    folder = Path(folder)
    for c in CLASSES:
        (folder / c).mkdir(parents=True, exist_ok=True)
    width = len(str(count - 1))
    for i, (image, label) in enumerate(zip(pixels, labels(count).tolist(), strict=True)):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / CLASSES[label] / f"{split}_{i:0{width}d}.png")
    return folder
