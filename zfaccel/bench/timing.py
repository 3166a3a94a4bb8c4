"""Timing and the copy roofline: medians after warm-up, on the CPU or a GPU."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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
    times = sorted(_once_ms(fn, device) for _ in range(reps))
    q = statistics.quantiles(times, n=5) if len(times) >= 2 else [times[0]] * 4
    return Timing(statistics.median(times), q[0], q[-1], reps)


def _once_ms(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def measure_interleaved(
    fns: dict[str, Callable[[], object]], device: torch.device, warmup: int = 2, rounds: int = 7
) -> dict[str, float]:
    """The minimum wall time in ms of each of ``fns`` over ``rounds`` rounds that call each once in
    turn, after ``warmup`` such rounds. Interleaving puts a slow spell of the machine (another
    process, a frequency change) on every contender alike, and the minimum is the run it touched
    least: ratios between contenders then hold from run to run far better than separate medians."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(_once_ms(fn, device))
    return {name: min(t) for name, t in times.items()}


# One core of busy work in a separate interpreter: pure Python, so it holds no lock and no thread pool.
_BUSY = "while True:\n    pass\n"


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """A second process that keeps one core busy until the block ends: the load a shared machine puts
    on the kernels (OpenMP threads that wait for a descheduled sibling at a barrier spin meanwhile)."""
    proc = subprocess.Popen([sys.executable, "-c", _BUSY], stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.2)  # let it start and take its core
        yield
    finally:
        proc.kill()
        proc.wait()


def copy_bandwidth_gbs(device: torch.device, nbytes: int | None = None, reps: int = 7) -> float:
    """The machine's measured copy bandwidth in GB/s, counting bytes read plus bytes written
    (the roofline for memory-bound ops, docs/performance.md): a large float32 tensor copy."""
    if nbytes is None:
        nbytes = (2 << 30) if device.type == "cuda" else (256 << 20)
    src = torch.randn(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    t = measure(lambda: dst.copy_(src), device, warmup=2, reps=reps)
    return 2 * nbytes / (t.median_ms * 1e-3) / 1e9
