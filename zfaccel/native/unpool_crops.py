"""Launcher of the compiled switch unpooling on crops (kernels/unpool_crops.cpp): switches read in place."""

from __future__ import annotations

import torch

from zfaccel.native import _DTYPE_CODES, empty, extension
from zfaccel.native.conv_transpose_crops import crop_shape
from zfaccel.reference.crops import spread


def unpool_crops(x, switches, image_index, offset, kernel, stride, padding, dilation, map_size, relu) -> torch.Tensor:
    """x: (T, C, h, w) float32/float64 CPU -> (T, C, H', W') contiguous; see zfaccel.ops.crops."""
    # The crops of a conv5 projection at pool1 fill 157 MB for 64 targets: huge pages, faulted in by all threads.
    y = empty((*x.shape[:2], *spread(x.shape[-2:], kernel, stride, dilation)), x, x.dtype, torch.contiguous_format)
    x, switches = x.contiguous(), switches.contiguous()
    image_index, offset = image_index.contiguous(), offset.contiguous()
    extension().unpool_crops_cpu(
        x.data_ptr(), switches.data_ptr(), image_index.data_ptr(), offset.data_ptr(), y.data_ptr(),
        crop_shape(x, kernel, stride, dilation, map_size), switches.shape[2], switches.shape[3], switches.shape[0],
        padding[0], padding[1], relu, _DTYPE_CODES[x.dtype], torch.get_num_threads(),
    )  # fmt: skip
    return y
