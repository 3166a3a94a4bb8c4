"""Occluded inputs built from an image, a baseline and occluder positions, in pure PyTorch."""

from __future__ import annotations

import torch

from zfaccel.reference.max_unpool2d_switches import accumulation_dtype


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
    b, r, s, occluded, valid = _cells(tuple(images.shape[-2:]), positions, window, crop_origins, crop_size)
    chan = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    picked = torch.where(occluded, baseline[b, chan, r, s], images[b, chan, r, s])
    return torch.where(valid, picked, torch.zeros((), dtype=images.dtype, device=images.device)).contiguous()


def _cells(
    size: tuple[int, int],
    positions: torch.Tensor,
    window: tuple[int, int],
    crop_origins: torch.Tensor,
    crop_size: tuple[int, int],
):
    """Where each output cell reads: the image index b (P, 1, 1, 1), the clamped rows r (P, 1, ch, 1)
    and columns s (P, 1, 1, cw), and the bool masks (P, 1, ch, cw) ``occluded`` and ``valid`` (inside)."""
    h, w = size
    ch, cw = crop_size
    dev = positions.device
    rows = crop_origins[:, 0, None] + torch.arange(ch, device=dev)  # (P, ch) absolute rows
    cols = crop_origins[:, 1, None] + torch.arange(cw, device=dev)  # (P, cw)
    b = positions[:, 0, None, None, None]
    r = rows.clamp(0, h - 1)[:, None, :, None]
    s = cols.clamp(0, w - 1)[:, None, None, :]
    inside_r = (rows >= positions[:, 1, None]) & (rows < positions[:, 1, None] + window[0])
    inside_c = (cols >= positions[:, 2, None]) & (cols < positions[:, 2, None] + window[1])
    occluded = (inside_r[:, :, None] & inside_c[:, None, :])[:, None]  # (P, 1, ch, cw)
    valid_r = (rows >= 0) & (rows < h)
    valid_c = (cols >= 0) & (cols < w)
    valid = (valid_r[:, :, None] & valid_c[:, None, :])[:, None]
    return b, r, s, occluded, valid


def occlusion_batch_transpose(
    grad: torch.Tensor,
    images_shape: tuple[int, int, int, int],
    positions: torch.Tensor,
    window: tuple[int, int],
    crop_origins: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The op's gradients (grad_images, grad_baseline), each (B, C, H, W) grad.dtype, for ``grad``
    (P, C, ch, cw): every output cell inside the image adds its gradient to the pixel it copied,
    of the baseline where occluded, of the image elsewhere (sums in float32 for 16-bit types)."""
    b, r, s, occluded, valid = _cells(tuple(images_shape[-2:]), positions, window, crop_origins, grad.shape[-2:])
    chan = torch.arange(grad.shape[1], device=grad.device)[None, :, None, None]
    acc = grad.to(accumulation_dtype(grad.dtype))
    zero = torch.zeros((), dtype=acc.dtype, device=grad.device)
    out = []
    for mask in (valid & ~occluded, valid & occluded):
        total = torch.zeros(images_shape, dtype=acc.dtype, device=grad.device)
        total = total.index_put((b, chan, r, s), torch.where(mask, acc, zero), accumulate=True)
        out.append(total.to(grad.dtype))
    return out[0], out[1]
