"""Large CPU output buffers kept and reused between kernel calls (the deconvnet's crops and output).

A fresh CPU tensor of tens of MB costs its page faults: the kernel zeroes every page on first
touch. For the deconvnet's pool1-level crops (64 ZFNet conv5 targets: (64, 96, 67, 67) float32,
110 MB) that took 25-28 ms with 4 KiB pages and 8.5-180 ms with 2 MiB pages on the 2-core VM of
docs/performance.md, against a 6-10 ms kernel. A :class:`BufferCache` keeps the buffers it handed
out and hands one out again once nothing refers to it any more: no tensor, view or storage (torch
counts the references to a storage; the cache's own is the only one left). A result a caller still
holds is never written over.

The native launchers draw from the cache that :func:`reusing` made current; elsewhere they
allocate as before. Buffers are held until :meth:`BufferCache.clear` or the cache is dropped; the
cache holds at most ``limit`` bytes and allocates plainly beyond that.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterator

import torch

_current: contextvars.ContextVar[BufferCache | None] = contextvars.ContextVar("zfaccel_buffer_cache", default=None)


def _fresh(nbytes: int) -> torch.Tensor:
    from zfaccel.native import _prepare  # the launchers import this module

    return _prepare(torch.empty(nbytes, dtype=torch.uint8))


def _references(t: torch.Tensor) -> tuple[int, int]:
    """Who holds ``t``'s storage: (C++ references: tensors and views; Python references to the
    storage's object, which a caller may hold alone after its tensors are gone)."""
    storage = t.untyped_storage()
    return torch._C._storage_Use_Count(storage._cdata), sys.getrefcount(storage)


# Whether this torch counts storage references (a private function, present from torch 2.0 on; without
# it nothing is cached and every call allocates).
COUNTS_REFERENCES = hasattr(torch._C, "_storage_Use_Count")
# The references of a tensor nobody else holds.
_IDLE = _references(torch.empty(1)) if COUNTS_REFERENCES else (0, 0)


class BufferCache:
    """CPU byte buffers of at most ``limit`` bytes in all, handed out again once unreferenced.

    Args:
        limit: the bytes the cache may hold (buffers beyond it are allocated plainly, not kept).
        allocate: nbytes -> a fresh uint8 CPU tensor (default: as the native launchers allocate, with
            huge pages asked for and faulted in from every thread).
    """

    def __init__(self, limit: int, allocate=None) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a non-negative number of bytes, got {limit!r}")
        self.limit = limit
        self._allocate = allocate or _fresh
        self._buffers: list[torch.Tensor] = []

    @property
    def held(self) -> int:
        """Bytes the cache holds."""
        return sum(b.numel() for b in self._buffers)

    @staticmethod
    def _unused(buf: torch.Tensor) -> bool:
        cpp, py = _references(buf)
        return cpp <= _IDLE[0] and py <= _IDLE[1]

    def take(self, nbytes: int) -> torch.Tensor | None:
        """A uint8 (nbytes,) CPU tensor nobody else refers to, or None when the cache may not hold
        another ``nbytes``. Reuses the smallest free buffer of nbytes to 2 * nbytes; else allocates one,
        dropping free buffers (largest first) while the limit would be passed."""
        if not COUNTS_REFERENCES or nbytes <= 0 or nbytes > self.limit:
            return None
        free = [b for b in self._buffers if self._unused(b)]
        fits = [b for b in free if nbytes <= b.numel() <= 2 * nbytes]
        if fits:
            return min(fits, key=torch.Tensor.numel)[:nbytes]
        held = self.held
        for b in sorted(free, key=torch.Tensor.numel, reverse=True):
            if held + nbytes <= self.limit:
                break
            self._buffers = [k for k in self._buffers if k is not b]
            held -= b.numel()
        if held + nbytes > self.limit:
            return None
        buf = self._allocate(nbytes)
        self._buffers.append(buf)
        return buf[:nbytes]

    def clear(self) -> None:
        """Drop every buffer (those still referenced elsewhere live on with their holders)."""
        self._buffers = []


def current() -> BufferCache | None:
    """The cache :func:`reusing` made current here, or None."""
    return _current.get()


@contextlib.contextmanager
def reusing(cache: BufferCache) -> Iterator[BufferCache]:
    """Within the block, the native launchers' large contiguous CPU outputs come from ``cache``."""
    token = _current.set(cache)
    try:
        yield cache
    finally:
        _current.reset(token)
