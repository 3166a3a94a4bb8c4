"""Launcher of the compiled max-pool-with-switches kernels (kernels/max_pool2d_switches.{cpp,cu})."""

from __future__ import annotations

import torch

from zfaccel.checks import memory_format
from zfaccel.geometry import PoolGeometry
from zfaccel.native import launch


def max_pool2d_switches(x: torch.Tensor, g: PoolGeometry, relu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, C, H, W) float -> y: (N, C, OH, OW) x.dtype, switches: uint8 (N, C, OH, OW), x's layout."""
    fmt = memory_format(x)
    x = x.contiguous(memory_format=fmt)  # other strides are copied once
    n, c = x.shape[:2]
    size = (n, c, *g.output_size)
    y = torch.empty(size, dtype=x.dtype, device=x.device, memory_format=fmt)
    s = torch.empty(size, dtype=torch.uint8, device=x.device, memory_format=fmt)
    launch("max_pool2d_switches", (x, y, s), g.native_shape(n, c), relu)
    return y, s
