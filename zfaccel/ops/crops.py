"""The deconvnet's two steps on batched crops: transposed convolution and switch unpooling.

Crops are explained in zfaccel/analysis/regions.py. Backends (:mod:`zfaccel.backends`'
tables): "native" is a fused C++ kernel for float32/float64 CPU tensors that skips
zero inputs (the deconvnet's signal is mostly zeros) and reads switches in place;
"torch" the composite path (PyTorch's transposed convolution; the reference switch
unpool on gathered switches; then masking) that runs anywhere and is the tests'
oracle; "triton" the composite path with the Triton switch-unpool kernel (the
transposed convolution stays torch's: cuDNN on GPUs). "auto" takes the C++ kernel
where it applies and the composite path elsewhere.
"""

from __future__ import annotations

import torch

from zfaccel import library
from zfaccel.backends import check_name

Pair = tuple[int, int]


def conv_transpose_crops(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: Pair,
    dilation: Pair,
    groups: int,
    offset: torch.Tensor,
    map_size: Pair,
    *,
    relu: bool = False,
    weights_finite: bool | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Transposed convolution (no padding, no bias) of crops, masked to the output map, then ReLU if ``relu``.

    Args:
        x: (T, C, h, w) float crops.
        weight: (C, C_out / groups, kh, kw): the weight of the Conv2d being inverted.
        stride, dilation, groups: that Conv2d's.
        offset: int64 (T, 2): the output crop's cell (0, 0) in the output map (the input
            offset times the stride, minus the padding).
        map_size: (H, W) of the output map (the Conv2d's input).
        weights_finite: whether ``weight`` is all finite, if the caller knows (checked otherwise).

    Returns:
        (T, C_out, (h - 1) * sh + (kh - 1) * dh + 1, ...) x.dtype, zero outside the map.
    """
    check_name(backend)
    return library.conv_transpose_crops(
        x, weight, offset, list(stride), list(dilation), groups, list(map_size), relu, weights_finite, backend
    )


def unpool_crops(
    x: torch.Tensor,
    switches: torch.Tensor,
    image_index: torch.Tensor,
    offset: torch.Tensor,
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    map_size: Pair,
    *,
    relu: bool = False,
    backend: str = "auto",
) -> torch.Tensor:
    """Switch unpooling (+ ReLU) of pooled crops, reading each target's image's switches in place.

    Args:
        x: (T, C, h, w) float pooled crops; ``offset`` int64 (T, 2) is their cell (0, 0) in the
            pooled map.
        switches: uint8 (N, C, OH, OW), the pooling's switches; ``image_index`` int64 (T,) picks
            each target's image.
        kernel_size, stride, padding, dilation: the pooling's.
        map_size: (H, W) of the unpooled map (the pooling's input).

    Returns:
        (T, C, (h - 1) * sh + (kh - 1) * dh + 1, ...) x.dtype whose cell (0, 0) is
        ``offset * stride - padding`` of the unpooled map; zero outside it.
    """
    check_name(backend)
    return library.unpool_crops(
        x, switches, image_index, offset, list(kernel_size), list(stride), list(padding), list(dilation),
        list(map_size), relu, backend,
    )  # fmt: skip


def unpool_conv_transpose_crops(
    x: torch.Tensor,
    switches: torch.Tensor,
    image_index: torch.Tensor,
    offset: torch.Tensor,
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    map_size: Pair,
    weight: torch.Tensor,
    conv_offset: torch.Tensor,
    conv_stride: Pair,
    conv_dilation: Pair,
    groups: int,
    conv_map_size: Pair,
    *,
    unpool_relu: bool = False,
    relu: bool = False,
    weights_finite: bool | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """:func:`unpool_crops` then :func:`conv_transpose_crops`, in one call: the deconvnet's "unpool,
    rectify, filter" where a ReLU sits between a Conv2d and the MaxPool2d above it. The "native" kernel
    unpools each target into a buffer of its thread and filters from there, so the unpooled crops
    (110 MB at ZFNet's pool1 for 64 conv5 targets, 95 % zeros) are never written whole; "torch" runs
    the two steps.

    Args:
        x, switches, image_index, offset, kernel_size, stride, padding, dilation, map_size: as
            :func:`unpool_crops` takes them (``unpool_relu`` is its ``relu``).
        weight, conv_stride, conv_dilation, groups, conv_map_size, relu, weights_finite: as
            :func:`conv_transpose_crops` takes them (``conv_map_size`` is its ``map_size``);
            ``conv_offset`` int64 (T, 2) is the output crop's cell (0, 0) in that map: the unpooled
            crops' (``offset * stride - padding``) times the convolution's stride, minus its padding.

    Returns:
        (T, C_out, H', W') x.dtype, as :func:`conv_transpose_crops` of the unpooled crops returns it.
    """
    check_name(backend)
    return library.unpool_conv_transpose_crops(
        x, switches, image_index, offset, list(kernel_size), list(stride), list(padding), list(dilation),
        list(map_size), unpool_relu, weight, conv_offset, list(conv_stride), list(conv_dilation), groups,
        list(conv_map_size), relu, weights_finite, backend,
    )  # fmt: skip
