"""Launcher of the compiled max-pool-with-switches kernels (kernels/max_pool2d_switches.{cpp,cu})."""

from __future__ import annotations

import torch

from zfaccel.checks import memory_format
from zfaccel.geometry import PoolGeometry
from zfaccel.native import empty, launch


def max_pool2d_switches(x: torch.Tensor, g: PoolGeometry, relu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, C, H, W) float -> y: (N, C, OH, OW) x.dtype, switches: uint8 (N, C, OH, OW), x's layout."""
    fmt = memory_format(x)
    x = x.contiguous(memory_format=fmt)  # other strides are copied once
    n, c = x.shape[:2]
    size = (n, c, *g.output_size)
    y = empty(size, x, x.dtype, fmt)
    s = empty(size, x, torch.uint8, fmt)
    launch("max_pool2d_switches", (x, y, s), g.native_shape(n, c), relu)
    return y, s
