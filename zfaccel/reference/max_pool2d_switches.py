"""Max-pooling with switches in pure PyTorch: the oracle, and the fallback on any device."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zfaccel.checks import memory_format
from zfaccel.geometry import PoolGeometry
from zfaccel.reference.switches_to_indices import indices_to_switches


def max_pool2d_switches(x: torch.Tensor, g: PoolGeometry, relu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, C, H, W) float -> y: (N, C, OH, OW) x.dtype, switches: uint8 (N, C, OH, OW).

    y is aten's max_pool2d (ReLU'd when ``relu``) and the switches are aten's own
    argmax indices turned into window offsets, so ties and NaN follow torch.
    """
    y, idx = F.max_pool2d(x, g.kernel, g.stride, g.padding, g.dilation, ceil_mode=g.ceil_mode, return_indices=True)
    switches = indices_to_switches(idx, g)
    if relu:
        y = torch.relu(y)
    fmt = memory_format(x)
    return y.contiguous(memory_format=fmt), switches.contiguous(memory_format=fmt)
