"""Triton per-map max and argmax: one program per map, walking it in chunks.

torch.max's rules: the first maximum wins, a map holding NaN gives its first
NaN, a map of -inf gives index 0. Values compare in float32 (float64 for
float64), so the reported value is the input's own.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from zfaccel.triton_kernels.tiles import interpreting

NUM_WARPS = 4  # on GPUs


@triton.jit
def _spatial_argmax_kernel(
    x_ptr, values_ptr, indices_ptr, C, size, stride_n, stride_c, stride_i,
    F64: tl.constexpr, BLOCK: tl.constexpr, STEPS: tl.constexpr,
):  # fmt: skip
    m = tl.program_id(0)
    base = x_ptr + (m // C).to(tl.int64) * stride_n + (m % C).to(tl.int64) * stride_c
    far = size + BLOCK  # larger than any index
    if F64:
        best = tl.full((), float("-inf"), tl.float64)
    else:
        best = tl.full((), float("-inf"), tl.float32)
    at = tl.zeros((), tl.int64)
    first_nan = tl.full((), far, tl.int64)
    # STEPS = cdiv(size, BLOCK) is a compile-time trip count: Triton 3.6's interpreter cannot
    # loop to a runtime bound under numpy 2 (int() of a 1-element array raises).
    for step in range(STEPS):
        offs = step * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
        inside = offs < size
        v = tl.load(base + offs * stride_i, mask=inside, other=float("-inf")).to(best.dtype)
        nan = inside & (v != v)
        first_nan = tl.minimum(first_nan, tl.min(tl.where(nan, offs, far), axis=0))
        v = tl.where(nan, float("-inf"), v)
        top = tl.max(v, axis=0)
        pos = tl.min(tl.where(inside & (v == top), offs, far), axis=0)
        better = top > best
        best = tl.where(better, top, best)
        at = tl.where(better, pos, at)
    at = tl.where(first_nan < far, first_nan, at)
    tl.store(indices_ptr + m, at)
    tl.store(values_ptr + m, tl.load(base + at * stride_i))


def spatial_argmax(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, C, H, W) float -> values (N, C) x.dtype, indices (N, C) int64."""
    n, c, h, w = x.shape
    if x.stride(2) != w * x.stride(3):  # the flat index must step by one stride
        x = x.contiguous()
    values = torch.empty((n, c), dtype=x.dtype, device=x.device)
    indices = torch.empty((n, c), dtype=torch.int64, device=x.device)
    args, constants = arguments(x, values, indices, interpreting())
    if interpreting():
        _spatial_argmax_kernel[(n * c,)](*args, **constants)
    else:
        with torch.cuda.device(x.device):
            _spatial_argmax_kernel[(n * c,)](*args, **constants, num_warps=NUM_WARPS)
    return values, indices


def arguments(x: torch.Tensor, values: torch.Tensor, indices: torch.Tensor, interpreter: bool) -> tuple[tuple, dict]:
    """The kernel's runtime arguments and constexprs, under the interpreter or on a GPU: what the
    launcher passes and what compile_check compiles. x's rows must be one stride apart."""
    c, h, w = x.shape[1:]
    # One program per map; 1024 values per step gives each thread of NUM_WARPS = 4 warps 8 values on a
    # 110 x 110 map (12 steps), and the interpreter, which pays per step, takes 4096 (3 steps).
    block = min(triton.next_power_of_2(h * w), 4096 if interpreter else 1024)
    args = (x, values, indices, c, h * w, x.stride(0), x.stride(1), x.stride(3))
    return args, dict(F64=x.dtype == torch.float64, BLOCK=block, STEPS=triton.cdiv(h * w, block))
