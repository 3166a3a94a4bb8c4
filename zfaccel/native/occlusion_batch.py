"""Launcher of the compiled occluded-batch kernels (kernels/occlusion_batch.{cpp,cu})."""

from __future__ import annotations

import contextlib

import torch

from zfaccel.native import _DTYPE_CODES, empty, extension


def occlusion_batch(
    images: torch.Tensor,
    baseline: torch.Tensor,
    positions: torch.Tensor,
    window: tuple[int, int],
    crop_origins: torch.Tensor,
    crop_size: tuple[int, int],
) -> torch.Tensor:
    """images, baseline: (B, C, H, W) float, any strides (stride 0 too); positions: (P, 3) int64;
    crop_origins: (P, 2) int64 -> (P, C, ch, cw) images.dtype (see zfaccel.ops.occlusion_batch).

    Images and baseline are read in place through their strides: no copy, even of a
    channels-last or expanded tensor."""
    b, c, h, w = images.shape
    p = positions.shape[0]
    out = empty((p, c, *crop_size), images, images.dtype, torch.contiguous_format)
    if p == 0:
        return out
    positions, crop_origins = positions.contiguous(), crop_origins.contiguous()
    args = (
        images.data_ptr(), baseline.data_ptr(), positions.data_ptr(), crop_origins.data_ptr(), out.data_ptr(),
        (b, c, h, w, p, *window, *crop_size), images.stride(), baseline.stride(), _DTYPE_CODES[images.dtype],
    )  # fmt: skip
    if images.device.type == "cpu":
        extension().occlusion_batch_cpu(*args, torch.get_num_threads())
    else:
        with torch.cuda.device(images.device) if images.device.type == "cuda" else contextlib.nullcontext():
            extension().occlusion_batch_cuda(*args, torch.cuda.current_stream(images.device).cuda_stream)
    return out
