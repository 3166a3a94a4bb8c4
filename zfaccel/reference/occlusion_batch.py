"""Occluded inputs built from an image, a baseline and occluder positions, in pure PyTorch."""

from __future__ import annotations

import torch


def occlusion_batch(
    images: torch.Tensor,
    baseline: torch.Tensor,
    positions: torch.Tensor,
    window: tuple[int, int],
    crop_origins: torch.Tensor,
    crop_size: tuple[int, int],
) -> torch.Tensor:
    """images, baseline: (B, C, H, W) float; positions: (P, 3) int64 (image, row, col);
    crop_origins: (P, 2) int64 -> (P, C, ch, cw) images.dtype (see zfaccel.ops.occlusion_batch)."""
    _, c, h, w = images.shape
    ch, cw = crop_size
    dev = images.device
    rows = crop_origins[:, 0, None] + torch.arange(ch, device=dev)  # (P, ch) absolute rows
    cols = crop_origins[:, 1, None] + torch.arange(cw, device=dev)  # (P, cw)
    b = positions[:, 0, None, None, None]
    chan = torch.arange(c, device=dev)[None, :, None, None]
    r = rows.clamp(0, h - 1)[:, None, :, None]
    s = cols.clamp(0, w - 1)[:, None, None, :]
    inside_r = (rows >= positions[:, 1, None]) & (rows < positions[:, 1, None] + window[0])
    inside_c = (cols >= positions[:, 2, None]) & (cols < positions[:, 2, None] + window[1])
    occluded = (inside_r[:, :, None] & inside_c[:, None, :])[:, None]  # (P, 1, ch, cw)
    valid_r = (rows >= 0) & (rows < h)
    valid_c = (cols >= 0) & (cols < w)
    valid = (valid_r[:, :, None] & valid_c[:, None, :])[:, None]
    picked = torch.where(occluded, baseline[b, chan, r, s], images[b, chan, r, s])
    return torch.where(valid, picked, torch.zeros((), dtype=images.dtype, device=dev))
