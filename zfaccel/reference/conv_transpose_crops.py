"""The deconvnet's transposed convolution on crops in pure PyTorch: torch's transposed convolution, then masking."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zfaccel.reference.crops import mask_outside


def conv_transpose_crops(x, weight, stride, dilation, groups, offset, map_size, relu) -> torch.Tensor:
    """x: (T, C, h, w) float -> (T, C_out, H', W') x.dtype, contiguous (see zfaccel.ops.crops)."""
    y = mask_outside(F.conv_transpose2d(x, weight, None, stride, 0, 0, groups, dilation), offset, map_size)
    return (torch.relu(y) if relu else y).contiguous()
