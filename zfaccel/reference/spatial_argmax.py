"""Per-map max and argmax in pure PyTorch (torch.max's rules: first maximum, NaN wins)."""

from __future__ import annotations

import torch


def spatial_argmax(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, C, H, W) float -> values (N, C) x.dtype, indices (N, C) int64 (flat h * W + w)."""
    return x.flatten(2).max(dim=2)
