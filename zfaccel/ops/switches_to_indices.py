"""zfaccel.switches_to_indices: uint8 switches -> torch's int64 max-pool indices."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zfaccel import reference
from zfaccel.checks import check_tensor
from zfaccel.geometry import PoolGeometry
from zfaccel.ops.max_pool2d_switches import IntOrPair
from zfaccel.ops.max_unpool2d_switches import validate_switch_values


def switches_to_indices(
    switches: torch.Tensor,
    input_size: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> torch.Tensor:
    """The flat indices ``ih * W + iw`` that ``F.max_pool2d(..., return_indices=True)`` returns.

    Args:
        switches: uint8 (N, C, OH, OW) or (C, OH, OW) from :func:`max_pool2d_switches`.
        input_size: (H, W) of the pooled input (or a full (N, C, H, W) size).
        kernel_size, stride, padding, dilation: those of the pooling (ceil_mode
            follows from the sizes).

    Returns:
        int64, switches' shape; pass it to ``F.max_unpool2d`` or anything that
        takes torch's pooling indices.
    """
    check_tensor(switches, "switches", dtypes=(torch.uint8,))
    g = PoolGeometry.for_unpool(input_size, tuple(switches.shape[-2:]), kernel_size, stride, padding, dilation)
    validate_switch_values(switches, g)
    return reference.switches_to_indices(switches, g)
