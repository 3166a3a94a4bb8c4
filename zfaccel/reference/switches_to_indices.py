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

    switches: uint8 (..., OH, OW). The range test is one max() (0.1 ms for 4.6 M
    switches on 2 cores, where a mask costs 3 ms); only windows that reach into
    the padding can name a padding position, so that test reads the border
    rows and columns alone.
    """
    if int(switches.max()) >= g.window:
        return _first(switches >= g.window, switches, (0, 0))
    (r_lo, r_hi), (c_lo, c_hi) = g.border()
    row0, col0 = _window_origins(g, switches.device)
    blocks = [
        (slice(0, r_lo), slice(None)),
        (slice(r_hi, None), slice(None)),
        (slice(r_lo, r_hi), slice(0, c_lo)),
        (slice(r_lo, r_hi), slice(c_hi, None)),
    ]
    for rows, cols in blocks:
        block = switches[..., rows, cols]
        if block.numel() == 0:
            continue
        # float32 is exact here (offsets < 256, positions < 2^24) and, unlike
        # integer division, vectorised: 0.2 ms instead of 2 ms on a ZFNet layer.
        s = block.float()
        kh = torch.floor(s / g.kernel[1])
        ih = row0[rows] + kh * g.dilation[0]
        iw = col0[cols] + (s - kh * g.kernel[1]) * g.dilation[1]
        outside = (ih < 0) | (ih >= g.input_size[0]) | (iw < 0) | (iw >= g.input_size[1])
        if bool(outside.any()):
            return _first(outside, switches, (rows.start or 0, cols.start or 0))
    return None


def _first(mask: torch.Tensor, switches: torch.Tensor, offset: tuple[int, int]) -> tuple[tuple[int, ...], int]:
    index = [int(i) for i in mask.nonzero()[0]]
    index[-2] += offset[0]
    index[-1] += offset[1]
    return tuple(index), int(switches[tuple(index)])
