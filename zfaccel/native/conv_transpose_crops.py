"""Launcher of the compiled transposed convolution on crops (kernels/conv_transpose_crops.cpp)."""

from __future__ import annotations

import torch

from zfaccel.native import _DTYPE_CODES, empty, extension
from zfaccel.reference.crops import spread


def crop_shape(x: torch.Tensor, kernel, stride, dilation, map_size) -> tuple[int, ...]:
    """(t, c, h, w, kh, kw, sh, sw, dh, dw, map_h, map_w) as the crop kernels take it."""
    return (*x.shape, *kernel, *stride, *dilation, *map_size)


def conv_transpose_crops(x, weight, stride, dilation, groups, offset, map_size, relu) -> torch.Tensor:
    """x: (T, C, h, w) float32/float64 CPU -> (T, C_out, H', W') contiguous; see zfaccel.ops.crops."""
    kernel = tuple(weight.shape[-2:])
    cout = weight.shape[1] * groups
    y = empty((x.shape[0], cout, *spread(x.shape[-2:], kernel, stride, dilation)), x, x.dtype, torch.contiguous_format)
    x, weight, offset = x.contiguous(), weight.contiguous(), offset.contiguous()
    extension().conv_transpose_crops_cpu(
        x.data_ptr(), weight.data_ptr(), offset.data_ptr(), y.data_ptr(),
        crop_shape(x, kernel, stride, dilation, map_size), weight.shape[1], groups, relu, _DTYPE_CODES[x.dtype],
        torch.get_num_threads(),
    )  # fmt: skip
    return y
