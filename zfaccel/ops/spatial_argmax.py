"""zfaccel.spatial_argmax: each map's maximum and where it is (the reduction behind top-9 mining)."""

from __future__ import annotations

import torch

from zfaccel import library
from zfaccel.backends import check_name
from zfaccel.checks import check_tensor


def spatial_argmax(x: torch.Tensor, *, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """The maximum of every (H, W) map and its flat index, in one pass.

    Args:
        x: (N, C, H, W) or (C, H, W) float (float32, float64, float16, bfloat16), any strides.
        backend: "auto", "triton", "native" (CPU tensors) or "torch".

    Returns:
        values: (N, C) (or (C,)) x.dtype, each map's maximum.
        indices: int64, same shape: its flat index ``row * W + col``. As torch.max: the first
            maximum in row-major order; a map holding NaN gives its first NaN.
    """
    check_tensor(x, "x")
    check_name(backend)
    batched = x.dim() == 4
    x4 = x if batched else x.unsqueeze(0)
    values, indices = library.spatial_argmax(x4, backend)
    return (values, indices) if batched else (values[0], indices[0])
