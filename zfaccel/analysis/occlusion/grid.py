"""The occluder grid: where the occluder's top-left corner goes, and the default window and stride.

Positions run at 0, s, 2s, ... along each axis while the window lies wholly inside
the image, image-major then row-major. This module is the leaf of the occlusion
package: everything else may import it, it imports nothing of the package.
"""

from __future__ import annotations

import math

import torch

from zfaccel.geometry import to_pair


def positive_pair(value: object, name: str) -> tuple[int, int]:
    """An int or a pair of ints, each at least 1: TypeError/ValueError naming ``name``."""
    pair = to_pair(value, name)
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive, got {pair}")
    return pair


def default_window(size: int) -> int:
    """The occluder side that suits images of ``size`` pixels: the power of two nearest to a fifth of
    the side, as the paper's 32 px square on 224 px images (224 / 5 = 45 -> 32); 16 at 64 px."""
    return 2 ** max(0, round(math.log2(max(size, 1) / 5)))


def default_geometry(
    image_size: tuple[int, int], window: object = None, stride: object = None
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(window, stride) as (height, width) pairs: given values are checked (``positive_pair``); a missing
    window fits the image's shorter side (``default_window``), a missing stride is a quarter of the
    window (the paper's 32 / 8)."""
    if window is None:
        side = default_window(min(image_size))
        window_hw = (side, side)
    else:
        window_hw = positive_pair(window, "window")
    stride_hw = (
        (max(1, window_hw[0] // 4), max(1, window_hw[1] // 4)) if stride is None else positive_pair(stride, "stride")
    )
    return window_hw, stride_hw


def grid(size: tuple[int, int], window: tuple[int, int], stride: tuple[int, int]) -> tuple[int, int]:
    """(nH, nW): occluder corners at 0, s, 2s, ... while the window lies wholly inside the image."""
    return tuple((size[i] - window[i]) // stride[i] + 1 for i in range(2))


def positions_of(b: int, n: tuple[int, int], stride: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(B * nH * nW, 3) int64 rows (image, row, col), image-major then row-major."""
    img = torch.arange(b).repeat_interleave(n[0] * n[1])
    rows = (torch.arange(n[0]) * stride[0]).repeat_interleave(n[1]).repeat(b)
    cols = (torch.arange(n[1]) * stride[1]).repeat(n[0] * b)
    return torch.stack([img, rows, cols], 1).to(device)
