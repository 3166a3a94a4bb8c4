"""Multiply-accumulates of an occlusion sweep: full re-inference against exact incremental inference.

docs/performance.md judges the incremental engine against its MAC ceiling: on ZFNet
at 224 px, window 32, stride 8, full re-inference does 1.168 GMAC per position and
exact incremental inference (each layer recomputes only the cells the occluder
changes, the head in full) 0.276: at most 4.2x faster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from zfaccel.analysis.occlusion.grid import grid
from zfaccel.analysis.occlusion.plan import changed_sizes
from zfaccel.analysis.occlusion.stages import Stage, build_stages
from zfaccel.models.plain import split_model


def head_macs(head: Callable[[torch.Tensor], torch.Tensor], features: torch.Tensor) -> int:
    """MACs the head spends on one image: its Linear and Conv2d layers, counted with hooks on a
    run over ``features`` (1, C, h, w)."""
    modules = head.modules() if isinstance(head, nn.Module) else _closure_modules(head)
    count = [0]

    def hook(m, inputs, out):
        if isinstance(m, nn.Linear):
            count[0] += out.numel() * m.in_features  # one image: out (1, out_features)
        else:
            count[0] += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in modules if isinstance(m, nn.Linear | nn.Conv2d)]
    try:
        with torch.no_grad():
            head(features)
    finally:
        for h in handles:
            h.remove()
    return count[0]


def _closure_modules(head) -> list[nn.Module]:
    """The modules a torchvision-style head (a lambda over avgpool and classifier) closes over."""
    cells = getattr(head, "__closure__", None) or ()
    found = []
    for cell in cells:
        value = cell.cell_contents
        if isinstance(value, nn.Module):
            found.extend(value.modules())
    return found


@dataclass
class MacCount:
    """MACs per position: full re-inference, exact incremental (the ceiling), and the ratio."""

    full: float
    incremental: float

    @property
    def ceiling(self) -> float:
        """How much faster exact incremental inference can be: full / incremental."""
        return self.full / self.incremental


class MacCounter:
    """Per-position MACs of a plain CNN's sweep at one image size: full re-inference, and
    incremental inference (exact for ``tau = 1``, cut at the projective-field threshold below)."""

    def __init__(self, model: nn.Module, image_size: tuple[int, int], in_channels: int = 3) -> None:
        plain = split_model(model)
        self.stages: list[Stage] = build_stages(plain.features, len(plain.features) - 1)
        param = next(model.parameters())
        x = torch.zeros(1, in_channels, *image_size, device=param.device, dtype=param.dtype)
        self.sizes, self.channels = [tuple(image_size)], [in_channels]
        with torch.no_grad():
            for stage in self.stages:
                x = stage.full(x)
                self.sizes.append(tuple(x.shape[-2:]))
                self.channels.append(x.shape[1])
        self.head = head_macs(plain.head, x)
        self.full = float(self.head + sum(st.macs(self.sizes[j + 1][0] * self.sizes[j + 1][1], self.channels[j])
                                          for j, st in enumerate(self.stages)))  # fmt: skip

    def positions(self, rows: torch.Tensor, cols: torch.Tensor, window: tuple[int, int], tau: float = 1.0):
        """(P,) float64 MACs of incremental inference for occluders at (rows, cols) (P,) int64."""
        changed = changed_sizes(self.stages, self.sizes, rows.cpu(), cols.cpu(), window, tau)
        out = torch.full((len(rows),), float(self.head), dtype=torch.float64)
        for j, st in enumerate(self.stages):
            out += (changed[j][0] * changed[j][1]).double() * st.macs(1, self.channels[j])
        return out


def count_macs(model: nn.Module, image_size: tuple[int, int], window: tuple[int, int], stride: tuple[int, int],
               in_channels: int = 3, tau: float = 1.0) -> MacCount:  # fmt: skip
    """Average MACs per occluder position over the sweep's grid, for full and incremental inference
    (exact for ``tau = 1``, at the projective-field threshold ``tau`` otherwise)."""
    counter = MacCounter(model, image_size, in_channels)
    n = grid(image_size, window, stride)
    rows = (torch.arange(n[0]) * stride[0]).repeat_interleave(n[1])
    cols = (torch.arange(n[1]) * stride[1]).repeat(n[0])
    return MacCount(counter.full, float(counter.positions(rows, cols, window, tau).mean()))
