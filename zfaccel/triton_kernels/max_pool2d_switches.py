"""Triton max-pool with uint8 switches (optional fused ReLU).

One program reduces a (BLOCK_C, BLOCK_W) tile of pooled outputs of one pooled
row (n, oh) over its window taps, in row-major window order with aten's rule:
a tap replaces the running maximum when it is larger or NaN (first maximum
wins; the last NaN wins). Comparisons run in the input dtype, so y holds the
input's exact bits. Inputs of any strides are read in place.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from zfaccel.checks import memory_format
from zfaccel.geometry import PoolGeometry
from zfaccel.triton_kernels.tiles import autotune_configs, fixed_tile, grid, interpreting, tile_coordinates


@triton.jit
def _max_pool2d_switches_kernel(
    x_ptr, y_ptr, s_ptr,
    C, H, W, OH, OW,
    sxn, sxc, sxh, sxw,
    syn, syc, syh, syw,
    KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr,
    PH: tl.constexpr, PW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
    RELU: tl.constexpr, F64: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    n, oh, c, ow = tile_coordinates(C, OW, OH, BLOCK_C, BLOCK_W)
    out_mask = (c < C) & (ow < OW)

    hs = oh * SH - PH
    ws = ow * SW - PW
    # First in-bounds tap: the starting switch when every tap is -inf (as aten).
    kh_lo = tl.where(hs < 0, (PH - oh * SH + DH - 1) // DH, 0)
    kw_lo = tl.where(ws < 0, (PW - ow * SW + DW - 1) // DW, 0)
    code = (kh_lo * KW + kw_lo + tl.zeros([BLOCK_C, BLOCK_W], tl.int32)).to(tl.int32)
    # Compare in float32 (float64 for float64): widening is exact, so the
    # maximum and its bits survive the round trip; 16-bit constants also do not
    # exist in the interpreter.
    if F64:
        best = tl.full([BLOCK_C, BLOCK_W], float("-inf"), tl.float64)
    else:
        best = tl.full([BLOCK_C, BLOCK_W], float("-inf"), tl.float32)

    x_base = x_ptr + n * sxn + c * sxc
    for kh in tl.static_range(KH):
        ih = hs + kh * DH  # (1, 1): masks from it are boolean blocks (see tile_coordinates)
        row_ok = (ih >= 0) & (ih < H)
        for kw in tl.static_range(KW):
            iw = ws + kw * DW
            ok = out_mask & row_ok & (iw >= 0) & (iw < W)
            v = tl.load(x_base + ih.to(tl.int64) * sxh + iw.to(tl.int64) * sxw, mask=ok, other=float("-inf"))
            v = v.to(best.dtype)
            take = ok & ((v > best) | (v != v))
            best = tl.where(take, v, best)
            code = tl.where(take, kh * KW + kw, code)

    if RELU:
        best = tl.where(best < 0, 0.0, best)  # keeps NaN and -0.0, as torch.relu
    out = n * syn + c * syc + oh.to(tl.int64) * syh + ow.to(tl.int64) * syw
    tl.store(y_ptr + out, best.to(y_ptr.dtype.element_ty), mask=out_mask)
    tl.store(s_ptr + out, code.to(tl.uint8), mask=out_mask)


_tuned = triton.autotune(configs=autotune_configs(), key=["C", "OW", "sxc", "sxw", "KH", "KW", "SW"])(
    _max_pool2d_switches_kernel
)


def outputs(x: torch.Tensor, g: PoolGeometry) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh y and switches for x (any device, "meta" too), in x's layout."""
    n, c = x.shape[:2]
    fmt = memory_format(x)
    y = torch.empty((n, c, *g.output_size), dtype=x.dtype, device=x.device, memory_format=fmt)
    s = torch.empty((n, c, *g.output_size), dtype=torch.uint8, device=x.device, memory_format=fmt)
    return y, s


def arguments(x: torch.Tensor, y: torch.Tensor, s: torch.Tensor, g: PoolGeometry, relu: bool) -> tuple[tuple, dict]:
    """The kernel's runtime arguments and constexprs (but the tile): what the launcher passes
    and what compile_check compiles."""
    n, c, h, w = x.shape
    oh, ow = g.output_size
    constants = dict(
        KH=g.kernel[0], KW=g.kernel[1], SH=g.stride[0], SW=g.stride[1],
        PH=g.padding[0], PW=g.padding[1], DH=g.dilation[0], DW=g.dilation[1], RELU=relu, F64=x.dtype == torch.float64,
    )  # fmt: skip
    return (x, y, s, c, h, w, oh, ow, *x.stride(), *y.stride()), constants


def max_pool2d_switches(x: torch.Tensor, g: PoolGeometry, relu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, C, H, W) float, any strides -> y: (N, C, OH, OW) x.dtype, switches: uint8, x's layout."""
    n, c = x.shape[:2]
    oh, ow = g.output_size
    y, s = outputs(x, g)
    args, constants = arguments(x, y, s, g, relu)
    if interpreting():
        _max_pool2d_switches_kernel[grid(n * oh, c, ow)](*args, **constants, **fixed_tile(x, ow))
    else:
        with torch.cuda.device(x.device):
            _tuned[grid(n * oh, c, ow)](*args, **constants)
    return y, s
