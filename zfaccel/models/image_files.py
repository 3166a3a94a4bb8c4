"""Reading an image file, whatever its pixel mode, as RGB in [0, 1].

Pillow's ``convert("RGB")`` clips 16-bit samples to 255, so a 16-bit grey PNG
(mode I;16, 0..65535) came out almost all white: 16384, a quarter of full scale,
became 255. Here each mode is scaled by its own full scale instead:

- 8-bit modes (1, L, LA, P, PA, RGB, RGBA, CMYK, YCbCr, ...): Pillow's RGB conversion, / 255;
  alpha is dropped, as Pillow and torchvision's image loader drop it;
- I;16 and its byte orders (16-bit grey): / 65535;
- I (32-bit ints; older Pillow reads 16-bit PNGs so): / 65535, clipped to [0, 1];
- F (32-bit floats): as they are, clipped to [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

# Full scale of 16-bit samples, for I;16* and for I, which holds them in older Pillow.
FULL_SCALE_16 = 65535.0


def read_rgb(path: str | os.PathLike) -> torch.Tensor:
    """An image file -> (3, H, W) float32 RGB in [0, 1], at the file's own size.

    Multi-frame files (GIF, TIFF) give their first frame. FileNotFoundError when the
    file is missing, ValueError naming the file when it is a folder or not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"image path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"image {str(path)!r} is not a file")
    try:
        with Image.open(path) as img:
            rgb = _rgb_array(img)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image {str(path)!r}: {err}") from err
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def _rgb_array(img) -> np.ndarray:
    """A PIL image -> (H, W, 3) float32 in [0, 1]; ValueError for a mode Pillow cannot make RGB."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        grey = np.asarray(img).astype(np.float32)  # astype also undoes I;16B's big-endian byte order
        if mode != "F":
            grey /= FULL_SCALE_16
        grey = np.clip(grey, 0.0, 1.0)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("P", "PA"):
        # Via RGBA: a palette with a transparency entry converts to RGB with a Pillow warning otherwise.
        return np.asarray(img.convert("RGBA"), dtype=np.float32)[:, :, :3] / 255.0
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
