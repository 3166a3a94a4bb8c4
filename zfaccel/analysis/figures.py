"""Pictures of the analyses, drawn with Pillow (no display needed).

Projections are contrast-normalised one by one, as in the paper: divided by
their largest magnitude and centred on grey, so zero is grey and the sign of
the reconstruction shows as lighter or darker. Image patches are shown as the
model saw them (normalisation undone).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zfaccel.reference.crops import inside

BACKGROUND = 235  # light grey between tiles
GAP, BLOCK_GAP, LABEL_HEIGHT = 2, 10, 12


def normalize_projection(p: torch.Tensor) -> torch.Tensor:
    """(..., 3, h, w) projections -> [0, 1], each divided by its own largest |value|, zero at 0.5."""
    scale = p.abs().flatten(-3).amax(-1).clamp_min(1e-12)[..., None, None, None]
    return (0.5 + 0.5 * p / scale).clamp(0, 1)


def resize(tiles: torch.Tensor, size: int) -> torch.Tensor:
    """(n, 3, h, w) in [0, 1] -> (n, 3, size, size); nearest when enlarging small fields, so
    that 5-pixel conv1 projections stay crisp, bilinear when shrinking."""
    if tiles.shape[-1] == size and tiles.shape[-2] == size:
        return tiles
    mode = "nearest" if tiles.shape[-1] < size else "bilinear"
    return F.interpolate(
        tiles.float(), size=(size, size), mode=mode, **({} if mode == "nearest" else {"antialias": True})
    )


def grid(tiles: torch.Tensor, columns: int) -> np.ndarray:
    """(n, 3, t, t) in [0, 1] -> an (rows * (t + gap), columns * (t + gap), 3) uint8 mosaic."""
    n, _, t, _ = tiles.shape
    rows = math.ceil(n / columns)
    out = np.full((rows * (t + GAP) - GAP, columns * (t + GAP) - GAP, 3), BACKGROUND, np.uint8)
    pixels = (tiles.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, c = divmod(i, columns)
        out[r * (t + GAP) : r * (t + GAP) + t, c * (t + GAP) : c * (t + GAP) + t] = pixels[i]
    return out


def save_png(canvas: np.ndarray, labels: list[tuple[int, int, str]], path: str | os.PathLike) -> Path:
    """Write an (H, W, 3) uint8 canvas with (x, y, text) labels as a PNG; its folder is created."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for x, y, text in labels:
        draw.text((x, y), text, fill=(40, 40, 40))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def render_top_activations(top, path: str | os.PathLike, *, tile: int = 48, max_channels: int | None = 64) -> Path:
    """Fig. 2 for one layer: per channel, a grid of its top-k projections beside the matching
    image patches, channels in a square arrangement. Returns the PNG's path."""
    if top.projections is None:
        raise ValueError("these top activations were not projected (top_activations(..., project=True))")
    c, k = top.values.shape
    shown = range(min(c, max_channels) if max_channels else c)
    side = math.ceil(math.sqrt(k))
    blocks, labels = [], []
    for r in shown:
        missing = top.image_index[r] < 0
        proj = normalize_projection(top.projections[r])
        patch = top.preprocessing.denormalize(top.patches[r])
        outside = ~inside(top.boxes[r], tuple(patch.shape[-2:]), top.image_size)  # beyond the image's edge
        patch = torch.where(outside, BACKGROUND / 255, patch)
        proj[missing], patch[missing] = BACKGROUND / 255, BACKGROUND / 255
        left, right = grid(resize(proj, tile), side), grid(resize(patch, tile), side)
        block = np.full((LABEL_HEIGHT + left.shape[0], left.shape[1] * 2 + BLOCK_GAP // 2, 3), BACKGROUND, np.uint8)
        block[LABEL_HEIGHT:, : left.shape[1]] = left
        block[LABEL_HEIGHT:, left.shape[1] + BLOCK_GAP // 2 :] = right
        blocks.append((block, f"{top.layer} ch {int(top.channels[r])}"))
    columns = math.ceil(math.sqrt(len(blocks)))
    bh, bw = blocks[0][0].shape[:2]
    rows = math.ceil(len(blocks) / columns)
    canvas = np.full((rows * (bh + BLOCK_GAP) + BLOCK_GAP, columns * (bw + BLOCK_GAP) + BLOCK_GAP, 3), 255, np.uint8)
    for i, (block, label) in enumerate(blocks):
        r, col = divmod(i, columns)
        y, x = BLOCK_GAP + r * (bh + BLOCK_GAP), BLOCK_GAP + col * (bw + BLOCK_GAP)
        canvas[y : y + bh, x : x + bw] = block
        labels.append((x, y, label))
    return save_png(canvas, labels, path)


MIN_TILE = 128  # small inputs (the demo's 64 px) are shown enlarged 2x, nearest, so they stay crisp


def render_projection_rows(
    image: torch.Tensor,
    rows: list[tuple[str, torch.Tensor]],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    tile: int | None = None,
    columns: int = 8,
) -> Path:
    """One image beside rows of its projections: ``image`` (3, H, W) in [0, 1]; each row is a label
    and (n, 3, H, W) projections (e.g. the strongest channels of conv1..conv5). Tiles are shown at
    the input's resolution (``tile`` pixels, default max(H, 128)), ``columns`` to a line: a row of
    more projections wraps onto further lines. ``title`` (e.g. the prediction) heads the picture."""
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be a positive int, got {columns!r}")
    tile = tile or max(int(image.shape[-1]), MIN_TILE)
    lines = [(label if k == 0 else "", proj[k : k + columns]) for label, proj in rows
             for k in range(0, max(len(proj), 1), columns)]  # fmt: skip
    n = max(len(p) for _, p in lines)
    top = LABEL_HEIGHT + GAP if title else 0
    line_h = tile + LABEL_HEIGHT + GAP
    canvas = np.full((top + len(lines) * line_h + BLOCK_GAP, (n + 1) * (tile + GAP) + BLOCK_GAP, 3), 255, np.uint8)
    picture = grid(resize(image[None], tile), 1)
    labels = [(BLOCK_GAP // 2, BLOCK_GAP // 2, title)] if title else []
    for i, (label, proj) in enumerate(lines):
        y = BLOCK_GAP // 2 + top + i * line_h + LABEL_HEIGHT
        if label:
            canvas[y : y + tile, :tile] = picture
            labels.append((tile + GAP, y - LABEL_HEIGHT, label))
        if len(proj):
            strip = grid(resize(normalize_projection(proj), tile), len(proj))
            canvas[y : y + tile, tile + GAP : tile + GAP + strip.shape[1]] = strip
    return save_png(canvas, labels, path)
