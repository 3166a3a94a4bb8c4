"""Launcher of the compiled unpool + transposed convolution on crops (kernels/unpool_conv_transpose_crops.cpp)."""

from __future__ import annotations

import torch

from zfaccel.native import _DTYPE_CODES, empty, extension
from zfaccel.native.conv_transpose_crops import crop_shape
from zfaccel.reference.crops import spread


def unpool_conv_transpose_crops(
    x, switches, image_index, offset, kernel, stride, padding, dilation, map_size, unpool_relu,
    weight, conv_stride, conv_dilation, groups, conv_offset, conv_map_size, relu,
) -> torch.Tensor:  # fmt: skip
    """x: (T, C, h, w) float32/float64 CPU pooled crops -> (T, C_out, H', W') contiguous; the unpooled
    crops (T, C, h', w') never exist whole (see zfaccel.ops.crops)."""
    unpooled = spread(x.shape[-2:], kernel, stride, dilation)
    conv_kernel = tuple(weight.shape[-2:])
    cout = weight.shape[1] * groups
    y = empty((x.shape[0], cout, *spread(unpooled, conv_kernel, conv_stride, conv_dilation)), x, x.dtype,
              torch.contiguous_format)  # fmt: skip
    x, switches, weight = x.contiguous(), switches.contiguous(), weight.contiguous()
    image_index, offset, conv_offset = image_index.contiguous(), offset.contiguous(), conv_offset.contiguous()
    pool = crop_shape(x, kernel, stride, dilation, map_size)
    conv = (x.shape[0], x.shape[1], *unpooled, *conv_kernel, *conv_stride, *conv_dilation, *conv_map_size)
    extension().unpool_conv_transpose_crops_cpu(
        x.data_ptr(), switches.data_ptr(), image_index.data_ptr(), offset.data_ptr(), weight.data_ptr(),
        conv_offset.data_ptr(), y.data_ptr(), pool, switches.shape[2], switches.shape[3], switches.shape[0],
        padding[0], padding[1], unpool_relu, conv, weight.shape[1], groups, relu, _DTYPE_CODES[x.dtype],
        torch.get_num_threads(),
    )  # fmt: skip
    return y
