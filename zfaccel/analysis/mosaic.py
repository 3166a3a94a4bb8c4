"""Tiles of pictures for the figures (torch and numpy only: no drawing library).

Projections are shown contrast-stretched each to its own range, as in the paper: its smallest value
black, its largest white, over the cells that lie inside the image. Image patches are shown as the
model saw them (normalisation undone). A mosaic is one uint8 array of tiles, so that a figure shows
hundreds of them as one image.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

BACKGROUND = 235  # light grey: between tiles, and where a tile has nothing to show
GAP = 2  # pixels between tiles


def normalize_projection(p: torch.Tensor) -> torch.Tensor:
    """(..., 3, h, w) projections -> [0, 1], each divided by its own largest |value|, zero at 0.5 (how
    FeatureEvolution records them: the figures stretch them again with ``stretch``)."""
    scale = p.abs().flatten(-3).amax(-1).clamp_min(1e-12)[..., None, None, None]
    return (0.5 + 0.5 * p / scale).clamp(0, 1)


def stretch(p: torch.Tensor, inside: torch.Tensor | None = None) -> torch.Tensor:
    """(..., 3, h, w) projections -> float32 in [0, 1], each mapped linearly from its own [min, max]
    (over all three channels, so colours keep their balance) to [0, 1]; a constant one is 0.5 grey.
    ``inside``: bool, broadcastable to (..., 1, h, w), the cells that count (the rest, e.g. beyond the
    image's edge, become BACKGROUND grey)."""
    p = p.float()
    keep = torch.ones_like(p, dtype=torch.bool) if inside is None else inside.expand_as(p)
    lo = torch.where(keep, p, torch.inf).flatten(-3).amin(-1)[..., None, None, None]
    hi = torch.where(keep, p, -torch.inf).flatten(-3).amax(-1)[..., None, None, None]
    span = hi - lo
    flat = ~(span > 0)  # constant, or no cell inside
    out = torch.where(flat, torch.full_like(p, 0.5), (p - lo) / torch.where(flat, 1.0, span))
    return torch.where(keep, out, BACKGROUND / 255).clamp(0, 1)


def resize(tiles: torch.Tensor, size: int) -> torch.Tensor:
    """(n, 3, h, w) in [0, 1] -> (n, 3, size, size); nearest when enlarging small fields, so
    that 7-pixel conv1 projections stay crisp, bilinear when shrinking."""
    if tiles.shape[-1] == size and tiles.shape[-2] == size:
        return tiles
    mode = "nearest" if tiles.shape[-1] < size else "bilinear"
    return F.interpolate(
        tiles.float(), size=(size, size), mode=mode, **({} if mode == "nearest" else {"antialias": True})
    )


def grid(tiles: torch.Tensor, columns: int, gap: int = GAP) -> np.ndarray:
    """(n, 3, t, t) in [0, 1] -> an (rows * (t + gap) - gap, columns * (t + gap) - gap, 3) uint8 mosaic,
    row by row, BACKGROUND between the tiles."""
    n, _, t, _ = tiles.shape
    rows = math.ceil(n / columns)
    out = np.full((rows * (t + gap) - gap, columns * (t + gap) - gap, 3), BACKGROUND, np.uint8)
    pixels = (tiles.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, c = divmod(i, columns)
        out[r * (t + gap) : r * (t + gap) + t, c * (t + gap) : c * (t + gap) + t] = pixels[i]
    return out
