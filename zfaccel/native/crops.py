"""Launchers of the compiled deconvnet crop kernels (kernels/conv_transpose_crops.cpp, kernels/unpool_crops.cpp)."""

from __future__ import annotations

import torch

from zfaccel.native import _DTYPE_CODES, extension


def crop_shape(x: torch.Tensor, kernel, stride, dilation, map_size) -> tuple[int, ...]:
    """(t, c, h, w, kh, kw, sh, sw, dh, dw, map_h, map_w) as the kernels take it."""
    return (*x.shape, *kernel, *stride, *dilation, *map_size)


def out_size(x: torch.Tensor, kernel, stride, dilation) -> tuple[int, int]:
    return tuple((x.shape[2 + i] - 1) * stride[i] + (kernel[i] - 1) * dilation[i] + 1 for i in range(2))


def conv_transpose_crops(x, weight, stride, dilation, groups, offset, map_size, relu) -> torch.Tensor:
    """x: (T, C, h, w) f32/f64 contiguous -> (T, C_out, H', W'); see zfaccel.ops.conv_transpose_crops."""
    kernel = tuple(weight.shape[-2:])
    cout = weight.shape[1] * groups
    y = torch.empty((x.shape[0], cout, *out_size(x, kernel, stride, dilation)), dtype=x.dtype, device=x.device)
    x, weight, offset = x.contiguous(), weight.contiguous(), offset.contiguous()
    extension().conv_transpose_crops_cpu(
        x.data_ptr(), weight.data_ptr(), offset.data_ptr(), y.data_ptr(),
        crop_shape(x, kernel, stride, dilation, map_size), weight.shape[1], groups, relu, _DTYPE_CODES[x.dtype],
        torch.get_num_threads(),
    )  # fmt: skip
    return y


def unpool_crops(x, switches, image_index, offset, kernel, stride, padding, dilation, map_size, relu) -> torch.Tensor:
    """x: (T, C, h, w) f32/f64 contiguous -> (T, C, H', W'); see zfaccel.ops.unpool_crops."""
    y = torch.empty((*x.shape[:2], *out_size(x, kernel, stride, dilation)), dtype=x.dtype, device=x.device)
    x, switches = x.contiguous(), switches.contiguous()
    image_index, offset = image_index.contiguous(), offset.contiguous()
    extension().unpool_crops_cpu(
        x.data_ptr(), switches.data_ptr(), image_index.data_ptr(), offset.data_ptr(), y.data_ptr(),
        crop_shape(x, kernel, stride, dilation, map_size), switches.shape[2], switches.shape[3], switches.shape[0],
        padding[0], padding[1], relu, _DTYPE_CODES[x.dtype], torch.get_num_threads(),
    )  # fmt: skip
    return y
