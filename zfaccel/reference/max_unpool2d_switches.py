"""Switch unpooling (sum on overlap, optional ReLU) in pure PyTorch."""

from __future__ import annotations

import torch

from zfaccel.checks import memory_format
from zfaccel.geometry import PoolGeometry
from zfaccel.reference.switches_to_indices import switches_to_indices


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """Sums run in float32 for the 16-bit types, as the kernels do."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def max_unpool2d_switches(y: torch.Tensor, switches: torch.Tensor, g: PoolGeometry, relu: bool) -> torch.Tensor:
    """y: (N, C, OH, OW) float, switches: uint8 (N, C, OH, OW) -> x_hat: (N, C, H, W) y.dtype.

    One strided add per window offset (kh, kw): deterministic, and no scatter,
    whose CUDA version races on overlapping windows. A switch that names a
    padding position lands in the margin and is dropped (the ops validate).
    """
    n, c, oh, ow = y.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = g.kernel, g.stride, g.padding, g.dilation
    h, w = g.input_size
    # The canvas spans every tap of every window: rows -ph .. (oh-1)*sh - ph + (kh-1)*dh.
    rows = max(h, (oh - 1) * sh - ph + (kh - 1) * dh + 1) + ph
    cols = max(w, (ow - 1) * sw - pw + (kw - 1) * dw + 1) + pw
    acc_dtype = accumulation_dtype(y.dtype)
    canvas = torch.zeros((n, c, rows, cols), dtype=acc_dtype, device=y.device)
    values = y.to(acc_dtype)
    zero = torch.zeros((), dtype=acc_dtype, device=y.device)
    for i in range(kh):
        for j in range(kw):
            hit = torch.where(switches == i * kw + j, values, zero)
            canvas[:, :, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw] += hit
    out = canvas[:, :, ph : ph + h, pw : pw + w]
    if relu:
        out = torch.relu(out)
    return out.to(y.dtype).contiguous(memory_format=memory_format(y))


def switch_gather(grad: torch.Tensor, switches: torch.Tensor, g: PoolGeometry) -> torch.Tensor:
    """The unpool's transpose: grad (N, C, H, W) -> (N, C, OH, OW), each pooled
    position reading the input position its switch names (the unpool's gradient
    with respect to y)."""
    n, c, oh, ow = switches.shape
    idx = switches_to_indices(switches, g).reshape(n, c, oh * ow)
    return grad.reshape(n, c, -1).gather(2, idx).reshape(n, c, oh, ow)
