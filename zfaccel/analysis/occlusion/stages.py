"""A plain CNN's features cut into stages for occlusion: one convolution or pool, then pointwise layers.

A stage is one geometric layer (Conv2d or MaxPool2d: kernel k, stride s,
padding p, dilation d per dimension) followed by the pointwise layers up to the
next geometric one (ReLU, BatchNorm2d in eval, LocalResponseNorm, Dropout: each
output cell depends on the same cell of its input, across channels at most). So
an occluder's changed region only grows at stage inputs, and every stage end
is a layer a feature can be read at.

A ReLU right before a pool belongs to the pool's stage, fused into zfaccel's
switch kernel (``max_pool2d_switches(relu=True)``, one pass instead of two),
unless a feature is read at that ReLU, which then ends the previous stage.

Geometry along one dimension, for an output interval ``[o, o + h)``: its input
window is ``[o * s - p, o * s - p + (h - 1) * s + (k - 1) * d + 1)`` (``span``);
an input interval ``[a, b)`` changes the outputs whose window hull meets it,
``ceil((a + p - (k - 1) d) / s) .. floor((b - 1 + p) / s)`` (``affected``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from zfaccel.geometry import pooled_size, to_pair
from zfaccel.nn.local_response_norm import local_response_norm
from zfaccel.ops import max_pool2d_switches

Pair = tuple[int, int]


@dataclass
class Stage:
    """features[start..stop] (inclusive): ``layer`` (Conv2d, MaxPool2d, or None for a leading
    run of pointwise layers), then the pointwise ``post`` layers. ``relu_in``: a ReLU before
    the pool, fused into it."""

    start: int
    stop: int
    layer: nn.Conv2d | nn.MaxPool2d | None
    post: list[nn.Module] = field(default_factory=list)
    relu_in: bool = False
    backend: str = "auto"

    @property
    def geometric(self) -> bool:
        return self.layer is not None

    @property
    def is_pool(self) -> bool:
        return isinstance(self.layer, nn.MaxPool2d)

    def params(self) -> tuple[Pair, Pair, Pair, Pair]:
        """(kernel, stride, padding, dilation), each a (rows, cols) pair."""
        m = self.layer
        k = to_pair(m.kernel_size, "kernel_size")
        s = to_pair(m.stride if m.stride not in (None, (), []) else k, "stride")
        return k, s, to_pair(m.padding, "padding"), to_pair(m.dilation, "dilation")

    @property
    def pad_value(self) -> float:
        """What the padding holds: 0 for a convolution, -inf for a max-pool (as torch pads)."""
        return float("-inf") if self.is_pool else 0.0

    def output_size(self, size: Pair) -> Pair:
        """The stage's output (H, W) for an input of ``size``."""
        if not self.geometric:
            return size
        k, s, p, d = self.params()
        ceil = self.is_pool and self.layer.ceil_mode
        return tuple(pooled_size(size[i], k[i], s[i], p[i], d[i], ceil) for i in range(2))

    # ------------------------------------------------------------------ compute
    def full(self, x: torch.Tensor) -> torch.Tensor:
        """The stage on whole maps: x (N, C, H, W) -> (N, C', H', W'), x.dtype."""
        m = self.layer
        if isinstance(m, nn.Conv2d):
            x = F.conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
        elif isinstance(m, nn.MaxPool2d):
            x = max_pool2d_switches(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode,
                                    relu=self.relu_in, backend=self.backend)[0]  # fmt: skip
        return self.pointwise(x)

    def cropped(self, x: torch.Tensor) -> torch.Tensor:
        """The stage on crops already holding their padding: x (P, C, span(h), span(w)) -> (P, C', h, w)."""
        m = self.layer
        if isinstance(m, nn.Conv2d):
            x = F.conv2d(x, m.weight, m.bias, m.stride, 0, m.dilation, m.groups)
        elif isinstance(m, nn.MaxPool2d):
            # The crop spans exactly the windows of its outputs, so floor mode, no padding.
            x = max_pool2d_switches(x, m.kernel_size, m.stride, 0, m.dilation, False,
                                    relu=self.relu_in, backend=self.backend)[0]  # fmt: skip
        return self.pointwise(x)

    def pointwise(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.post:
            if isinstance(m, nn.ReLU):
                x = F.relu(x)
            elif isinstance(m, nn.BatchNorm2d):
                x = F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)
            elif isinstance(m, nn.LocalResponseNorm):
                x = local_response_norm(x, m.size, m.alpha, m.beta, m.k)  # torch's, bit for bit, faster
            # Dropout: the identity at inference.
        return x

    def macs(self, out_cells: int, in_channels: int) -> int:
        """Multiply-accumulates of the geometric layer for ``out_cells`` output cells (pools: 0)."""
        m = self.layer
        if not isinstance(m, nn.Conv2d):
            return 0
        return out_cells * m.out_channels * (in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]


def build_stages(features: nn.Sequential, stop: int, tap: int | None = None, backend: str = "auto") -> list[Stage]:
    """Cut features[0..stop] into stages; ``tap`` (a feature index) is made a stage end."""
    modules = list(features)[: stop + 1]
    geometric = [isinstance(m, nn.Conv2d | nn.MaxPool2d) for m in modules]
    fused = [isinstance(m, nn.ReLU) and i + 1 < len(modules) and isinstance(modules[i + 1], nn.MaxPool2d)
             and tap != i for i, m in enumerate(modules)]  # fmt: skip
    starts = [i for i in range(len(modules))
              if i == 0 or fused[i] or (geometric[i] and not fused[i - 1]) or i - 1 == tap]  # fmt: skip
    stages = []
    for start, end in zip(starts, [*starts[1:], len(modules)], strict=True):
        head = start + int(fused[start])
        layer = modules[head] if geometric[head] else None
        post = modules[head + int(layer is not None) : end]
        stages.append(Stage(start, end - 1, layer, post, relu_in=fused[start], backend=backend))
    return stages


def affected(a: torch.Tensor, b: torch.Tensor, k: int, s: int, p: int, d: int, n_out: int) -> tuple:
    """Outputs [lo, hi) (int64 tensors, clipped to [0, n_out)) whose windows meet input cells [a, b)."""
    lo = torch.div(a + p - (k - 1) * d + s - 1, s, rounding_mode="floor").clamp(0, n_out)
    hi = (torch.div(b - 1 + p, s, rounding_mode="floor") + 1).clamp(0, n_out)
    return lo, torch.maximum(hi, lo)


def span(h: int, k: int, s: int, d: int) -> int:
    """Input cells the windows of h consecutive outputs cover: (h - 1) * s + (k - 1) * d + 1."""
    return (h - 1) * s + (k - 1) * d + 1
