"""The deconvnet's "unpool, rectify, filter" on crops in pure PyTorch: the two steps one after the other."""

from __future__ import annotations

import torch

from zfaccel.reference.conv_transpose_crops import conv_transpose_crops
from zfaccel.reference.unpool_crops import unpool_crops


def unpool_conv_transpose_crops(
    x, switches, image_index, offset, kernel, stride, padding, dilation, map_size, unpool_relu,
    weight, conv_stride, conv_dilation, groups, conv_offset, conv_map_size, relu,
) -> torch.Tensor:  # fmt: skip
    """x: (T, C, h, w) float pooled crops -> (T, C_out, H', W') x.dtype (see zfaccel.ops.crops)."""
    unpooled = unpool_crops(x, switches, image_index, offset, kernel, stride, padding, dilation, map_size, unpool_relu)
    return conv_transpose_crops(unpooled, weight, conv_stride, conv_dilation, groups, conv_offset, conv_map_size, relu)
