"""Cropped regions for batched deconvnet projections.

A projection of one activation only reaches that activation's receptive field,
so each target carries a crop of its layer, not the whole map: a tensor
(T, C, h, w) with, per target, the absolute (row, col) of the crop's top-left
cell. Going down through a convolution or a pooling with kernel k, stride s,
dilation d and padding p, a crop of h cells becomes (h - 1) * s + (k - 1) * d + 1
cells starting at row * s - p: exactly the positions the crop's cells reach.
Cells outside the map (padding) are set to zero after every step, so a crop
computes the same numbers as the full map would, on its support only.

Whole-map projections (every target at offset 0) are cut back to the map with
a plain slice after each step, so no work is spent on the padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zfaccel.reference.crops import offset_below, paste_crops


@dataclass
class Region:
    """signal: (T, C, h, w); offset: int64 (T, 2), the (row, col) of signal[..., 0, 0] in a
    (height, width) map; cells outside [0, height) x [0, width) are zero."""

    signal: torch.Tensor
    offset: torch.Tensor
    height: int
    width: int
    trim: bool = False  # whole-map regions: cut the padding margins off after each step

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.signal.shape[-2:])

    @property
    def map_size(self) -> tuple[int, int]:
        return (self.height, self.width)

    def with_signal(self, signal: torch.Tensor) -> Region:
        return Region(signal, self.offset, self.height, self.width, self.trim)

    def below(self, signal: torch.Tensor, stride, padding, map_size: tuple[int, int]) -> Region:
        """The region one layer down, whose (already masked) ``signal`` covers the cells this one reaches."""
        return Region(signal, offset_below(self.offset, stride, padding), *map_size, self.trim).trimmed()

    def trimmed(self) -> Region:
        """Slice away rows/columns outside the map (whole-map regions: every target has the same offset)."""
        if not self.trim or self.offset.shape[0] == 0:
            return self
        r0, c0 = (int(v) for v in self.offset[0])
        h, w = self.size
        top, left = max(0, -r0), max(0, -c0)
        bottom, right = min(h, self.height - r0), min(w, self.width - c0)
        if (top, left, bottom, right) == (0, 0, h, w):
            return self
        signal = self.signal[..., top:bottom, left:right]
        offset = self.offset + torch.tensor([top, left], device=self.offset.device)
        return Region(signal, offset, self.height, self.width, self.trim)

    def paste(self) -> torch.Tensor:
        """The full maps (T, C, height, width): each crop at its offset (cells outside dropped)."""
        return paste_crops(self.signal, self.offset, self.map_size)
