"""Switches (uint8 window offsets) <-> PyTorch's flat int64 pooling indices, in pure PyTorch."""

from __future__ import annotations

import torch

from zfaccel.geometry import PoolGeometry


def _window_origins(g: PoolGeometry, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Input row (OH, 1) and column (OW,) of each window's tap (0, 0); may be negative (padding)."""
    oh = torch.arange(g.output_size[0], device=device).view(-1, 1)
    ow = torch.arange(g.output_size[1], device=device)
    return oh * g.stride[0] - g.padding[0], ow * g.stride[1] - g.padding[1]


def switches_to_indices(switches: torch.Tensor, g: PoolGeometry) -> torch.Tensor:
    """int64 flat indices ``ih * W + iw`` into each (H, W) input plane, as torch's return_indices.

    switches: uint8 (..., OH, OW) -> int64 (..., OH, OW).
    """
    row0, col0 = _window_origins(g, switches.device)
    s = switches.long()
    kh, kw = s // g.kernel[1], s % g.kernel[1]
    ih = row0 + kh * g.dilation[0]
    iw = col0 + kw * g.dilation[1]
    return ih * g.input_size[1] + iw


def indices_to_switches(indices: torch.Tensor, g: PoolGeometry) -> torch.Tensor:
    """The inverse: int64 (..., OH, OW) flat input indices -> uint8 window offsets."""
    row0, col0 = _window_origins(g, indices.device)
    ih, iw = indices // g.input_size[1], indices % g.input_size[1]
    kh = (ih - row0) // g.dilation[0]
    kw = (iw - col0) // g.dilation[1]
    return (kh * g.kernel[1] + kw).to(torch.uint8)


def find_invalid_switch(switches: torch.Tensor, g: PoolGeometry) -> tuple[tuple[int, ...], int] | None:
    """The first switch (index, value) outside its window or naming a padding position, else None.

    switches: uint8 (..., OH, OW). One pass of a cheap range test over all of
    them; only windows that reach into the padding can name a padding position,
    so that test runs on the border rows and columns alone.
    """
    candidates = [(switches >= g.window, (0, 0))]
    (r_lo, r_hi), (c_lo, c_hi) = g.border()
    blocks = [
        ((slice(0, r_lo), slice(None)), (0, 0)),
        ((slice(r_hi, None), slice(None)), (r_hi, 0)),
        ((slice(r_lo, r_hi), slice(0, c_lo)), (r_lo, 0)),
        ((slice(r_lo, r_hi), slice(c_hi, None)), (r_lo, c_hi)),
    ]
    for (rows, cols), (r0, c0) in blocks:
        block = switches[..., rows, cols]
        if block.numel() == 0:
            continue
        row0, col0 = _window_origins(g, switches.device)
        row0, col0 = row0[rows], col0[cols]
        s = block.long()
        ih = row0 + (s // g.kernel[1]) * g.dilation[0]
        iw = col0 + (s % g.kernel[1]) * g.dilation[1]
        outside = (ih < 0) | (ih >= g.input_size[0]) | (iw < 0) | (iw >= g.input_size[1])
        candidates.append((outside, (r0, c0)))
    for mask, (r0, c0) in candidates:
        if bool(mask.any()):
            index = [int(i) for i in mask.nonzero()[0]]
            index[-2] += r0
            index[-1] += c0
            return tuple(index), int(switches[tuple(index)])
    return None
