"""local_response_norm: ``F.local_response_norm``, bit for bit, without its slow window sum on the CPU.

torch computes the window sum of squares across channels with ``avg_pool3d`` over a (N, 1, C, H, W)
view: a generic loop that took 3.7 ms of ZFNet's 14 ms forward for one image ((1, 96, 55, 55) float32,
2 cores), more than conv2. Here the same sum is ``size`` shifted adds of whole tensors (0.7 ms in
all). It is the same arithmetic in the same order: aten's loop starts from 0 and adds the window's
squares in ascending channel order, one float at a time, then divides by ``size``; the shifted adds
do exactly that per element. The rest (``* alpha + k``, ``** beta``, ``x / div``) are torch's own
calls on tensors of the same shape and layout. tests/test_local_response_norm.py compares the bits
with torch's on many shapes, sizes and scales.

Where that equality has not been checked (other dtypes, GPUs, non-contiguous inputs, inputs that
record gradients) it calls ``F.local_response_norm`` itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The dtypes whose window sums aten's CPU avg_pool3d keeps in the dtype itself (checked bit for bit).
EXACT_DTYPES = (torch.float32, torch.float64)


def local_response_norm(
    x: torch.Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> torch.Tensor:
    """x: (N, C, H, W) float -> the same shape, dtype and layout, equal bit for bit to
    ``F.local_response_norm(x, size, alpha, beta, k)``."""
    fast = (
        x.dim() == 4
        and x.device.type == "cpu"
        and x.dtype in EXACT_DTYPES
        and x.is_contiguous()
        and not (x.requires_grad and torch.is_grad_enabled())
        and x.numel() > 0
    )
    if not fast:
        return F.local_response_norm(x, size, alpha, beta, k)
    c = x.shape[1]
    squares = F.pad(x * x, (0, 0, 0, 0, size // 2, (size - 1) // 2))  # zeros around the channels, as torch
    total = torch.zeros_like(x)
    for i in range(size):  # ascending channels: aten's order of the sum
        total += squares[:, i : i + c]
    return x / (total / size).mul(alpha).add(k).pow(beta)
