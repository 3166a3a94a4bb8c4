"""Where each stage recomputes for a batch of occluder positions: exact changed intervals and crops.

For each stage and position, ``lo, hi`` (P,) int64 is the exact interval of output
rows (columns) the occluder can change: ``affected`` of the previous interval,
starting from the occluder's own rows. A batch recomputes one region size per stage,
the largest ``hi - lo`` of its positions, so that each stage is ONE batched
convolution on a (P, C, h, w) tensor; each position's region starts at ``lo``,
shifted inward at the border to stay inside the map (recomputing a few clean cells
is still exact). Once a region covers the whole map the stage, and every stage
after it, runs on whole maps.

Approximation (``tau`` < 1, the projective-field threshold of Krypton, Nakandala et al.,
SIGMOD 2019): after each geometric stage, each position's changed interval is cut to at
most ceil(tau * the stage's output size) cells around its centre; the cells cut off keep
their clean values, and the next stage's interval grows from the cut one. ``tau = 1``
cuts nothing: the exact plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from zfaccel.analysis.occlusion.stages import Stage, affected, span

Pair = tuple[int, int]


@dataclass
class Region:
    """Per dimension (0: rows, 1: cols): ``origin`` (P,) int64 first output cell, ``size`` cells,
    in a map of ``map_size``; ``lo``/``hi`` (P,) the exact changed interval inside it."""

    origin: tuple[torch.Tensor, torch.Tensor]
    size: Pair
    map_size: Pair
    lo: tuple[torch.Tensor, torch.Tensor]
    hi: tuple[torch.Tensor, torch.Tensor]

    @property
    def whole(self) -> bool:
        return self.size == self.map_size


@dataclass
class StagePlan:
    """One stage's work for a batch: the output ``region`` and, for geometric stages in crop mode,
    each position's input crop start ``crop_start`` (per dim, (P,) int64, input coordinates,
    may be negative: padding) and the crop's size ``crop_size``."""

    region: Region
    crop_start: tuple[torch.Tensor, torch.Tensor] | None
    crop_size: Pair | None
    whole_input: bool  # the input is already a whole map: run the stage on whole maps


def changed_sizes(
    stages: list[Stage], sizes: list[Pair], rows: torch.Tensor, cols: torch.Tensor, window: Pair, tau: float = 1.0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per stage, the changed interval lengths (rows (P,), cols (P,)) of each position's output: exact
    for ``tau = 1``, cut at ``tau`` of the output size otherwise.

    ``sizes[j]`` is stage j's input size (and ``sizes[j + 1]`` its output size).
    """
    out = []
    ivals = _start(rows, cols, window, sizes[0])
    for j, stage in enumerate(stages):
        ivals = _step(stage, ivals, sizes[j + 1], tau)
        out.append(tuple(hi - lo for lo, hi in ivals))
    return out


def check_tau(tau: object) -> float:
    """tau in (0, 1]; TypeError/ValueError naming it."""
    if isinstance(tau, bool) or not isinstance(tau, int | float):
        raise TypeError(f"tau must be a number in (0, 1], got {tau!r}")
    if not 0 < tau <= 1:
        raise ValueError(f"tau must lie in (0, 1] (1: exact), got {tau}")
    return float(tau)


def cut(lo: torch.Tensor, hi: torch.Tensor, tau: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The intervals [lo, hi) (P,) cut to at most ceil(tau * n) cells each, around their centres."""
    if tau >= 1:
        return lo, hi
    limit = max(1, math.ceil(tau * n))
    length = hi - lo
    start = lo + (length - limit).clamp_min(0) // 2
    return start, start + length.clamp_max(limit)


def _start(rows, cols, window, size):
    return [
        (rows.clamp(0, size[0]), (rows + window[0]).clamp(0, size[0])),
        (cols.clamp(0, size[1]), (cols + window[1]).clamp(0, size[1])),
    ]


def _step(stage: Stage, ivals, out_size: Pair, tau: float = 1.0):
    if not stage.geometric:
        return ivals
    k, s, p, d = stage.params()
    return [cut(*affected(ivals[i][0], ivals[i][1], k[i], s[i], p[i], d[i], out_size[i]), tau, out_size[i])
            for i in range(2)]  # fmt: skip


def plan(
    stages: list[Stage], sizes: list[Pair], rows: torch.Tensor, cols: torch.Tensor, window: Pair, tau: float = 1.0
) -> list[StagePlan]:
    """The StagePlan of every stage for occluders with top-left corners (rows, cols) (P,) int64
    (``tau`` < 1: the projective-field threshold, see the module docstring)."""
    plans: list[StagePlan] = []
    ivals = _start(rows, cols, window, sizes[0])
    whole = False
    for j, stage in enumerate(stages):
        ivals = _step(stage, ivals, sizes[j + 1], tau)
        if whole:
            region = Region((rows * 0, cols * 0), sizes[j + 1], sizes[j + 1], *zip(*ivals, strict=True))
            plans.append(StagePlan(region, None, None, True))
            continue
        if not stage.geometric:
            prev = plans[-1].region
            region = Region(prev.origin, prev.size, prev.map_size, *zip(*ivals, strict=True))
            plans.append(StagePlan(region, None, None, False))
            continue
        k, s, p, d = stage.params()
        n = sizes[j + 1]
        size = tuple(min(n[i], max(1, int((ivals[i][1] - ivals[i][0]).max()))) for i in range(2))
        origin = tuple((ivals[i][0]).clamp(0, n[i] - size[i]) for i in range(2))
        start = tuple(origin[i] * s[i] - p[i] for i in range(2))
        crop = tuple(span(size[i], k[i], s[i], d[i]) for i in range(2))
        region = Region(origin, size, n, *zip(*ivals, strict=True))
        plans.append(StagePlan(region, start, crop, False))
        whole = region.whole
    return plans
