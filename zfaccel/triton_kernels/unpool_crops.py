"""Switch unpooling on crops with the Triton switch-unpool kernel: the crops' switches gathered
(torch indexing), unpooled by the kernel with the fused ReLU, the padding masked."""

from __future__ import annotations

import functools

from zfaccel.reference.unpool_crops import unpool_crops_with
from zfaccel.triton_kernels.max_unpool2d_switches import max_unpool2d_switches

# x: (T, C, h, w) float -> (T, C, H', W') contiguous (see zfaccel.ops.crops).
unpool_crops = functools.partial(unpool_crops_with, max_unpool2d_switches)
