"""zfaccel.max_pool2d_switches: max-pooling that also returns uint8 switches."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zfaccel import library
from zfaccel.backends import check_name
from zfaccel.checks import check_tensor
from zfaccel.geometry import PoolGeometry

IntOrPair = int | Sequence[int]


def check_flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def max_pool2d_switches(
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    *,
    relu: bool = False,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-pool ``x`` and record where each maximum came from.

    Args:
        x: (N, C, H, W) or (C, H, W); float32, float64, float16 or bfloat16; any
            strides (channels-last inputs give channels-last outputs).
        kernel_size, stride, padding, dilation, ceil_mode: as
            ``torch.nn.functional.max_pool2d`` (stride defaults to kernel_size).
            A window may hold at most 255 elements.
        relu: return ``relu(max_pool2d(x))``, the fused ReLU + pool of a ZFNet
            layer (the switches still name the pre-ReLU argmax).
        backend: "auto", "triton", "native" or "torch" (see :mod:`zfaccel.backends`).

    Returns:
        y: (N, C, OH, OW), x.dtype: bit for bit ``F.max_pool2d(x, ...)``.
        switches: uint8, y's shape: the argmax's offset ``kh * kernel_w + kw``
            inside its window (first maximum in row-major window order; a window
            holding NaN gives NaN and, as in torch, its last NaN's offset).

    Example:
        >>> y, s = zfaccel.max_pool2d_switches(torch.randn(1, 96, 110, 110), 3, 2, ceil_mode=True)
        >>> y.shape, s.dtype
        (torch.Size([1, 96, 55, 55]), torch.uint8)
    """
    check_tensor(x, "x")
    check_name(backend)
    check_flag(ceil_mode, "ceil_mode")
    check_flag(relu, "relu")
    g = PoolGeometry.for_pool(tuple(x.shape[-2:]), kernel_size, stride, padding, dilation, ceil_mode)
    batched = x.dim() == 4
    y, s = library.max_pool2d_switches(
        x if batched else x.unsqueeze(0),
        list(g.kernel), list(g.stride), list(g.padding), list(g.dilation), ceil_mode, relu, backend,
    )  # fmt: skip
    return (y, s) if batched else (y[0], s[0])
