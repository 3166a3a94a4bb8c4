"""Triton switch-unpool (+ optional ReLU) as a gather.

One program fills a (BLOCK_C, BLOCK_W) tile of one unpooled row (n, h): each
position visits the at most NOH x NOW pooled windows that cover it, by pooled
row then column, and adds the pooled values whose switch names it. Each
output is written once, in one fixed order: no atomics, identical bits on
every run. Sums run in float32 (float64 for float64 inputs).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from zfaccel.checks import memory_format
from zfaccel.geometry import PoolGeometry
from zfaccel.triton_kernels.tiles import autotune_configs, fixed_tile, grid, interpreting, tile_coordinates


@triton.jit
def _max_unpool2d_switches_kernel(
    y_ptr, s_ptr, x_ptr,
    C, H, W, OH, OW,
    syn, syc, syh, syw,
    sxn, sxc, sxh, sxw,
    KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr,
    PH: tl.constexpr, PW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
    NOH: tl.constexpr, NOW: tl.constexpr, RELU: tl.constexpr, ACC_F64: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    n, h, c, w = tile_coordinates(C, W, H, BLOCK_C, BLOCK_W)
    mask = (c < C) & (w < W)
    if ACC_F64:
        acc = tl.zeros([BLOCK_C, BLOCK_W], tl.float64)
    else:
        acc = tl.zeros([BLOCK_C, BLOCK_W], tl.float32)

    # Every operand of // and % below is >= 0: Triton divides like C (towards
    # zero) on the GPU and like Python (towards -inf) in the interpreter.
    oh_top = (h + PH) // SH
    ow_top = (w + PW) // SW
    y_base = y_ptr + n * syn + c * syc
    s_base = s_ptr + n * syn + c * syc
    for i in tl.static_range(NOH):
        oh = oh_top - i
        off_h = h + PH - oh * SH
        ok_h = (oh >= 0) & (oh < OH) & (off_h % DH == 0) & (off_h // DH < KH)
        for j in tl.static_range(NOW):
            ow = ow_top - j
            off_w = w + PW - ow * SW
            ok = mask & ok_h & (ow >= 0) & (ow < OW) & (off_w % DW == 0) & (off_w // DW < KW)
            at = oh.to(tl.int64) * syh + ow.to(tl.int64) * syw
            sv = tl.load(s_base + at, mask=ok, other=255)
            yv = tl.load(y_base + at, mask=ok, other=0.0)
            hit = ok & (sv.to(tl.int32) == (off_h // DH) * KW + off_w // DW)
            acc += tl.where(hit, yv.to(acc.dtype), 0.0)

    if RELU:
        acc = tl.where(acc < 0, 0.0, acc)
    out = n * sxn + c * sxc + h.to(tl.int64) * sxh + w.to(tl.int64) * sxw
    tl.store(x_ptr + out, acc.to(x_ptr.dtype.element_ty), mask=mask)


_tuned = triton.autotune(configs=autotune_configs(), key=["C", "W", "sxc", "sxw", "KH", "KW", "SW"])(
    _max_unpool2d_switches_kernel
)


def arguments(
    y: torch.Tensor, switches: torch.Tensor, x: torch.Tensor, g: PoolGeometry, relu: bool
) -> tuple[tuple, dict]:
    """The kernel's runtime arguments and constexprs (but the tile): what the launcher passes
    and what compile_check compiles. switches must have y's strides."""
    n, c, oh, ow = y.shape
    h, w = g.input_size
    noh, now = g.covering()
    constants = dict(
        KH=g.kernel[0], KW=g.kernel[1], SH=g.stride[0], SW=g.stride[1],
        PH=g.padding[0], PW=g.padding[1], DH=g.dilation[0], DW=g.dilation[1],
        NOH=noh, NOW=now, RELU=relu, ACC_F64=y.dtype == torch.float64,
    )  # fmt: skip
    return (y, switches, x, c, h, w, oh, ow, *y.stride(), *x.stride()), constants


def max_unpool2d_switches(y: torch.Tensor, switches: torch.Tensor, g: PoolGeometry, relu: bool) -> torch.Tensor:
    """y: (N, C, OH, OW) float, switches: uint8 same shape -> x_hat: (N, C, H, W) y.dtype, y's layout."""
    n, c = y.shape[:2]
    h, w = g.input_size
    fmt = memory_format(y)
    if switches.stride() != y.stride():
        switches = switches.contiguous(memory_format=fmt)
        y = y.contiguous(memory_format=fmt)
    x = torch.empty((n, c, h, w), dtype=y.dtype, device=y.device, memory_format=fmt)
    args, constants = arguments(y, switches, x, g, relu)
    if interpreting():
        _max_unpool2d_switches_kernel[grid(n * h, c, w)](*args, **constants, **fixed_tile(x, w))
    else:
        with torch.cuda.device(y.device):
            _tuned[grid(n * h, c, w)](*args, **constants)
    return x
