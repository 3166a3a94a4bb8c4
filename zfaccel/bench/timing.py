"""Timing and the copy roofline: medians after warm-up, on the CPU or a GPU."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Timing:
    median_ms: float
    q20_ms: float
    q80_ms: float
    reps: int


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: torch.device, warmup: int = 2, reps: int = 7) -> Timing:
    """Median wall time of ``fn()`` over ``reps`` runs after ``warmup`` runs (compilation,
    autotuning and first-touch out of the numbers). GPU runs are timed with CUDA events."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    q = statistics.quantiles(times, n=5) if len(times) >= 2 else [times[0]] * 4
    return Timing(statistics.median(times), q[0], q[-1], reps)


def copy_bandwidth_gbs(device: torch.device, nbytes: int | None = None, reps: int = 7) -> float:
    """The machine's measured copy bandwidth in GB/s, counting bytes read plus bytes written
    (the roofline for memory-bound ops, docs/performance.md): a large float32 tensor copy."""
    if nbytes is None:
        nbytes = (2 << 30) if device.type == "cuda" else (256 << 20)
    src = torch.randn(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    t = measure(lambda: dst.copy_(src), device, warmup=2, reps=reps)
    return 2 * nbytes / (t.median_ms * 1e-3) / 1e9
