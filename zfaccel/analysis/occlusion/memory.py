"""Memory budgets for occlusion batches: free memory without psutil, and batches that halve on OOM."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from zfaccel.checks import check_int

T = TypeVar("T")

# Share of the free memory a sweep takes by default: other tensors (the caller's,
# the allocator's cache, oneDNN's scratch pads) need the rest.
DEFAULT_FRACTION = 0.25


def free_memory(device: torch.device) -> int:
    """Bytes free on ``device``: torch.cuda.mem_get_info on a GPU, MemAvailable of /proc/meminfo on the CPU
    (4 GiB when neither can be read)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def budget(device: torch.device, max_memory: int | None) -> int:
    """The bytes a sweep's batches may take: ``max_memory``, or a safe share of the free memory."""
    return max_memory if max_memory is not None else int(free_memory(device) * DEFAULT_FRACTION)


def check_max_memory(max_memory: object) -> int | None:
    if max_memory is not None and (isinstance(max_memory, bool) or not isinstance(max_memory, int) or max_memory < 1):
        raise ValueError(f"max_memory must be a positive number of bytes or None, got {max_memory!r}")
    return max_memory


def check_batch_size(batch_size: object) -> int | None:
    return check_int(batch_size, "batch_size", none=True)


def is_oom(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure (CUDA OOM, or the CPU allocator giving up)."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def halving(run: Callable[[int, int], T], start: int, stop: int, batch: int) -> tuple[list[T], int]:
    """``run(i, j)`` over [start, stop) in chunks of ``batch``, halving the chunk whenever one runs out
    of memory (a sweep never dies of OOM while a smaller batch would fit).

    Returns the chunk results in order and the batch size that worked last.
    """
    out = []
    i = start
    while i < stop:
        j = min(stop, i + batch)
        try:
            out.append(run(i, j))
        except (RuntimeError, torch.OutOfMemoryError) as error:
            if not is_oom(error) or batch == 1:
                raise
            batch = max(1, batch // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        i = j
    return out, batch
