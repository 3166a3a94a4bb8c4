"""The transposed convolution on crops for the Triton backend: torch's transposed convolution (cuDNN
on GPUs, which a Triton kernel would not beat), then masking; no Triton kernel of its own."""

from __future__ import annotations

import torch

from zfaccel.reference.conv_transpose_crops import conv_transpose_crops as torch_conv_transpose_crops


def conv_transpose_crops(x, weight, stride, dilation, groups, offset, map_size, relu) -> torch.Tensor:
    """x: (T, C, h, w) float -> (T, C_out, H', W') contiguous; see zfaccel.ops.crops."""
    return torch_conv_transpose_crops(x, weight, stride, dilation, groups, offset, map_size, relu)
