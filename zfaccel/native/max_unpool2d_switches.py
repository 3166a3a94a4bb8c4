"""Launcher of the compiled switch-unpool kernels (kernels/max_unpool2d_switches.{cpp,cu})."""

from __future__ import annotations

import torch

from zfaccel.checks import memory_format
from zfaccel.geometry import PoolGeometry
from zfaccel.native import empty, launch


def max_unpool2d_switches(y: torch.Tensor, switches: torch.Tensor, g: PoolGeometry, relu: bool) -> torch.Tensor:
    """y: (N, C, OH, OW) float, switches: uint8 same shape -> x_hat: (N, C, H, W) y.dtype, y's layout."""
    fmt = memory_format(y)
    y = y.contiguous(memory_format=fmt)
    switches = switches.contiguous(memory_format=fmt)
    n, c = y.shape[:2]
    x = empty((n, c, *g.input_size), y, y.dtype, fmt)
    launch("max_unpool2d_switches", (y, switches, x), g.native_shape(n, c), relu)
    return x
