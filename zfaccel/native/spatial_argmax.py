"""Launcher of the compiled per-map max/argmax kernel (kernels/spatial_argmax.cpp)."""

from __future__ import annotations

import torch

from zfaccel.native import _DTYPE_CODES, extension


def spatial_argmax(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, C, H, W) float CPU tensor -> values (N, C) x.dtype, indices (N, C) int64."""
    x = x.contiguous()  # one map after another
    n, c = x.shape[:2]
    values = torch.empty((n, c), dtype=x.dtype)
    indices = torch.empty((n, c), dtype=torch.int64)
    extension().spatial_argmax_cpu(
        x.data_ptr(),
        values.data_ptr(),
        indices.data_ptr(),
        n * c,
        x.shape[2] * x.shape[3],
        _DTYPE_CODES[x.dtype],
        torch.get_num_threads(),
    )
    return values, indices
