"""The deconvnet's switch unpooling on crops in pure PyTorch: gather each crop's switches, unpool, mask."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from zfaccel.geometry import PoolGeometry
from zfaccel.reference.crops import gather_crops, inside, mask_outside, offset_below, spread
from zfaccel.reference.max_unpool2d_switches import max_unpool2d_switches

Pair = tuple[int, int]


def unpool_crops_with(
    unpool: Callable[[torch.Tensor, torch.Tensor, PoolGeometry, bool], torch.Tensor],
    x: torch.Tensor,
    switches: torch.Tensor,
    image_index: torch.Tensor,
    offset: torch.Tensor,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    map_size: Pair,
    relu: bool,
) -> torch.Tensor:
    """The composite path, whose whole-map switch unpool is ``unpool`` (a backend's
    ``max_unpool2d_switches(y, switches, geometry, relu)``): the crops' cells outside the pooled
    map zeroed, their switches gathered, unpooled without padding, the padding masked."""
    h, w = x.shape[-2:]
    x = torch.where(inside(offset, (h, w), switches.shape[-2:]), x, torch.zeros((), dtype=x.dtype, device=x.device))
    g = PoolGeometry.for_unpool(spread((h, w), kernel, stride, dilation), (h, w), kernel, stride, 0, dilation)
    y = unpool(x, gather_crops(switches, image_index, offset, (h, w)), g, relu)
    return mask_outside(y, offset_below(offset, stride, padding), map_size).contiguous()


# x: (T, C, h, w) float -> (T, C, H', W') x.dtype, contiguous (see zfaccel.ops.crops).
unpool_crops = functools.partial(unpool_crops_with, max_unpool2d_switches)
