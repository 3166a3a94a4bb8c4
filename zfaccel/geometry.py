"""Pooling geometry: argument normalisation, checks and sizes shared by every backend.

A :class:`PoolGeometry` is fully resolved: kernel, stride, padding and dilation
as (h, w) pairs, plus the input size (H, W) and the pooled size (OH, OW). The
ops build one from the user's arguments (raising ``ValueError``/``TypeError``
that name the argument), and every backend reads its numbers from it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# Switches are uint8 window offsets kh * kernel_w + kw: a window may hold at
# most 255 elements (the native kernels check the same bound).
MAX_WINDOW = 255

Pair = tuple[int, int]


def _is_int(v: object) -> bool:
    # SymInts arrive from torch.compile's dynamic shapes (sizes traced symbolically).
    return isinstance(v, int | torch.SymInt) and not isinstance(v, bool)


def to_pair(value: int | Sequence[int], name: str) -> Pair:
    """An int or a sequence of one or two ints, as a pair; TypeError naming ``name`` otherwise."""
    if _is_int(value):
        return (value, value)
    if isinstance(value, torch.Size | tuple | list) and len(value) in (1, 2):
        items = tuple(value)
        if all(_is_int(v) for v in items):
            return (items[0], items[-1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def pooled_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling output size along one dimension (may be < 1 for bad arguments)."""
    numerator = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def _window_hits_input(start: int, taps: int, dilation: int, size: int) -> bool:
    first = -(start // dilation) if start < 0 else 0  # ceil(-start / dilation)
    return first < taps and start + first * dilation < size


def _frozen(value):
    return tuple(value) if isinstance(value, list | torch.Size) else value


@functools.lru_cache(maxsize=4096)
def _cached_call(build, *args) -> PoolGeometry:
    return build(*args)


def _cached(build, *args) -> PoolGeometry:
    """``build(*args)``, memoised: the ops build the same few geometries on every
    call (30 us each). Unhashable arguments (bad types that build will reject) go
    straight through; errors are never cached. Under torch.compile the cache is
    bypassed: Dynamo would trace through it (and warn that it ignores it), and the
    geometry is built once per trace anyway, never in the compiled code."""
    if torch.compiler.is_compiling():
        return build(*args)
    args = tuple(_frozen(a) for a in args)
    try:
        hash(args)
    except TypeError:
        return build(*args)
    return _cached_call(build, *args)


@dataclass(frozen=True)
class PoolGeometry:
    """A resolved 2-D pooling: every field an (h, w) pair of ints."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    input_size: Pair
    output_size: Pair

    @property
    def window(self) -> int:
        """Elements in one window, kh * kw; switches take values 0..window-1."""
        return self.kernel[0] * self.kernel[1]

    @property
    def ceil_mode(self) -> bool:
        """Whether output_size needs ceil_mode (the unpool infers it from the sizes)."""
        return any(
            o != pooled_size(i, k, s, p, d, False)
            for i, o, k, s, p, d in zip(
                self.input_size, self.output_size, self.kernel, self.stride, self.padding, self.dilation, strict=True
            )
        )

    def native_shape(self, n: int, c: int) -> tuple[int, ...]:
        """The 14 sizes the compiled kernels take: n, c, h, w, oh, ow, then kernel, stride, padding, dilation."""
        return (n, c, *self.input_size, *self.output_size, *self.kernel, *self.stride, *self.padding, *self.dilation)

    @staticmethod
    def parameters(kernel_size, stride, padding, dilation) -> tuple[Pair, Pair, Pair, Pair]:
        """Normalise and check the pooling parameters (not the sizes)."""
        k = to_pair(kernel_size, "kernel_size")
        s = k if stride is None or (isinstance(stride, Sequence) and len(stride) == 0) else to_pair(stride, "stride")
        p = to_pair(padding, "padding")
        d = to_pair(dilation, "dilation")
        if min(k) < 1:
            raise ValueError(f"kernel_size must be positive, got {k}")
        if k[0] * k[1] > MAX_WINDOW:
            raise ValueError(
                f"kernel_size {k} makes windows of {k[0] * k[1]} elements; switches are uint8 and allow at most "
                f"{MAX_WINDOW}"
            )
        if min(s) < 1:
            raise ValueError(f"stride must be positive, got {s}")
        if min(d) < 1:
            raise ValueError(f"dilation must be positive, got {d}")
        if min(p) < 0 or p[0] > k[0] // 2 or p[1] > k[1] // 2:
            raise ValueError(f"padding must be between 0 and half of kernel_size {k}, got {p}")
        return k, s, p, d

    @classmethod
    def for_pool(cls, input_size: Pair, kernel_size, stride, padding, dilation, ceil_mode: bool) -> PoolGeometry:
        """The geometry of pooling an input of ``input_size`` (H, W)."""
        return _cached(cls._for_pool, input_size, kernel_size, stride, padding, dilation, ceil_mode)

    @classmethod
    def _for_pool(cls, input_size, kernel_size, stride, padding, dilation, ceil_mode) -> PoolGeometry:
        k, s, p, d = cls.parameters(kernel_size, stride, padding, dilation)
        out = tuple(pooled_size(input_size[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(2))
        if min(out) < 1:
            raise ValueError(
                f"kernel_size {k} with dilation {d} is larger than the padded input {input_size} "
                f"(padding {p}): the pooled size would be {out}"
            )
        geom = cls(k, s, p, d, tuple(input_size), out)
        geom._check_windows()
        return geom

    @classmethod
    def for_unpool(cls, output_size, pooled: Pair, kernel_size, stride, padding, dilation) -> PoolGeometry:
        """The geometry of unpooling a (.., OH, OW) map back to ``output_size`` (H, W).

        ``output_size`` may also be a full (N, C, H, W) or (C, H, W) size, as torch's
        ``max_unpool2d`` accepts; its last two entries are used. OH and OW must be
        what pooling H x W gives, with or without ceil_mode.
        """
        return _cached(cls._for_unpool, output_size, pooled, kernel_size, stride, padding, dilation)

    @classmethod
    def _for_unpool(cls, output_size, pooled, kernel_size, stride, padding, dilation) -> PoolGeometry:
        if not isinstance(output_size, torch.Size | tuple | list) or len(output_size) not in (2, 3, 4):
            raise TypeError(f"output_size must be (H, W), (C, H, W) or (N, C, H, W), got {output_size!r}")
        hw = to_pair(tuple(output_size)[-2:], "output_size")
        if min(hw) < 1:
            raise ValueError(f"output_size must be positive, got {hw}")
        k, s, p, d = cls.parameters(kernel_size, stride, padding, dilation)
        for i, name in enumerate(("height", "width")):
            allowed = [pooled_size(hw[i], k[i], s[i], p[i], d[i], cm) for cm in (False, True)]
            if all(pooled[i] != a for a in allowed):
                raise ValueError(
                    f"output_size {hw} is inconsistent with the pooling: pooling {hw} with kernel_size {k}, stride "
                    f"{s}, padding {p}, dilation {d} gives a {name} of {' or '.join(map(str, sorted(set(allowed))))}"
                    f", but y has {pooled[i]}"
                )
        geom = cls(k, s, p, d, hw, tuple(pooled))
        geom._check_windows()
        return geom

    def _check_windows(self) -> None:
        # With dilation a window can straddle a small input without touching it;
        # torch then returns -inf and an out-of-range index. We refuse instead.
        # Undilated windows are contiguous and start inside the padded input, so
        # they always touch it; only dilated ones need the scan.
        for i, name in enumerate(("rows", "columns")):
            k, s, p, d = self.kernel[i], self.stride[i], self.padding[i], self.dilation[i]
            for o in range(self.output_size[i] if d > 1 else 0):
                if not _window_hits_input(o * s - p, k, d, self.input_size[i]):
                    raise ValueError(
                        f"with kernel_size {self.kernel}, dilation {self.dilation} and padding {self.padding}, "
                        f"pooling window {o} misses every input {name} of the {self.input_size} input"
                    )

    def covering(self) -> Pair:
        """Most windows that cover one input position, per dimension: ((k-1)*d) // s + 1."""
        return tuple((self.kernel[i] - 1) * self.dilation[i] // self.stride[i] + 1 for i in range(2))

    def border(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Per dimension, the pooled indices [lo, hi) whose windows lie wholly inside the input."""
        out = []
        for i in range(2):
            k, s, p, d, n = self.kernel[i], self.stride[i], self.padding[i], self.dilation[i], self.input_size[i]
            lo = min(math.ceil(p / s), self.output_size[i])
            last = n - 1 + p - (k - 1) * d
            hi = 0 if last < 0 else min(last // s + 1, self.output_size[i])
            out.append((lo, max(lo, hi)))
        return tuple(out)
