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
from zfaccel.geometry import to_pair

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
    _check_crops(x, offset, "offset")
    stride, dilation = _pairs(stride=stride, dilation=dilation)
    _check_filter(x, weight, groups)
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
    _check_crops(x, offset, "offset")
    _check_switches(x, switches, image_index)
    kernel_size, stride, padding, dilation = _pairs(kernel_size=kernel_size, stride=stride, padding=padding,
                                                    dilation=dilation)  # fmt: skip
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
    _check_crops(x, offset, "offset")
    _check_crops(x, conv_offset, "conv_offset")
    _check_switches(x, switches, image_index)
    _check_filter(x, weight, groups)
    kernel_size, stride, padding, dilation, conv_stride, conv_dilation = _pairs(
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        conv_stride=conv_stride,
        conv_dilation=conv_dilation,
    )
    return library.unpool_conv_transpose_crops(
        x, switches, image_index, offset, list(kernel_size), list(stride), list(padding), list(dilation),
        list(map_size), unpool_relu, weight, conv_offset, list(conv_stride), list(conv_dilation), groups,
        list(conv_map_size), relu, weights_finite, backend,
    )  # fmt: skip


def _pairs(**values) -> list[Pair]:
    """Each value as a pair of ints (an int means both); TypeError naming the argument otherwise."""
    return [to_pair(v, name) for name, v in values.items()]


def _check_crops(x: object, offset: object, name: str) -> None:
    """x a float (T, C, h, w) tensor; ``offset`` (named ``name``) int64 (T, 2) on x's device."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 4:
        what = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"x must be a float (T, C, h, w) tensor of crops, got {what}")
    if not isinstance(offset, torch.Tensor) or offset.dtype != torch.int64 or tuple(offset.shape) != (len(x), 2):
        what = f"{offset.dtype} {tuple(offset.shape)}" if isinstance(offset, torch.Tensor) else type(offset).__name__
        raise ValueError(f"{name} must be an int64 ({len(x)}, 2) tensor (a row, column per crop), got {what}")
    if offset.device != x.device:
        raise ValueError(f"{name} is on {offset.device} but x on {x.device}")


def _check_filter(x: torch.Tensor, weight: object, groups: object) -> None:
    """weight (C, C_out / groups, kh, kw) of x's dtype and device, C = x's channels."""
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or x.shape[1] % groups:
        raise ValueError(f"groups must be a positive int dividing the crops' {x.shape[1]} channels, got {groups!r}")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4 or weight.shape[0] != x.shape[1]:
        what = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight must be ({x.shape[1]}, C_out / groups, kh, kw) for crops of {x.shape[1]} "
                         f"channels (a Conv2d's weight), got {what}")  # fmt: skip
    if weight.dtype != x.dtype or weight.device != x.device:
        raise ValueError(f"weight must match x's dtype and device ({x.dtype}, {x.device}), got "
                         f"{weight.dtype} on {weight.device}")  # fmt: skip


def _check_switches(x: torch.Tensor, switches: object, image_index: object) -> None:
    """switches uint8 (N, C, OH, OW) with x's channels; image_index int64 (T,) in [0, N); x's device."""
    if not isinstance(switches, torch.Tensor) or switches.dtype != torch.uint8 or switches.dim() != 4:
        what = f"{switches.dtype} {tuple(switches.shape)}" if isinstance(switches, torch.Tensor) else type(switches)
        raise ValueError(f"switches must be a uint8 (N, C, OH, OW) tensor (max_pool2d_switches' second output), "
                         f"got {what}")  # fmt: skip
    if switches.shape[1] != x.shape[1] or switches.device != x.device:
        raise ValueError(f"switches must have the crops' {x.shape[1]} channels and device {x.device}, got "
                         f"{tuple(switches.shape)} on {switches.device}")  # fmt: skip
    if (not isinstance(image_index, torch.Tensor) or image_index.dtype != torch.int64
            or tuple(image_index.shape) != (len(x),) or image_index.device != x.device):  # fmt: skip
        what = (
            f"{image_index.dtype} {tuple(image_index.shape)}" if isinstance(image_index, torch.Tensor) else image_index
        )
        raise ValueError(f"image_index must be an int64 ({len(x)},) tensor on {x.device}, got {what}")
    # A value check reads the indices: not while torch.compile traces (the deconvnet makes them in range).
    if image_index.numel() and not torch.compiler.is_compiling():
        low, high = int(image_index.min()), int(image_index.max())
        if low < 0 or high >= switches.shape[0]:
            raise ValueError(f"image_index must lie in [0, {switches.shape[0]}) (the switches' images), "
                             f"got values {low}..{high}")  # fmt: skip
