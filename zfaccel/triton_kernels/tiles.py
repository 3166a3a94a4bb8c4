"""Tile shapes and launch configurations shared by the switch kernels.

Both kernels work on a (BLOCK_C, BLOCK_W) tile of one row (n, h) of their
output. The tile's long side follows the unit-stride dimension: width for
NCHW, channels for channels-last, so a warp's loads and stores coalesce.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def fixed_tile(t: torch.Tensor, width: int) -> dict[str, int]:
    """One tile for the interpreter, where autotuning would cost minutes. The
    interpreter pays about 30 ms per program instance whatever its size, so the
    tile covers up to 64 channels x 64 columns: one program per row for small maps."""
    return {"BLOCK_C": min(triton.next_power_of_2(t.shape[1]), 64), "BLOCK_W": min(triton.next_power_of_2(width), 64)}


def autotune_configs() -> list[triton.Config]:
    """Row-major tiles (NCHW: up to 256 columns) and channel-major ones (NHWC: up to 128 channels)."""
    shapes = [(1, 128), (2, 64), (4, 64), (2, 128), (1, 256), (64, 4), (128, 2), (32, 8), (64, 8), (128, 4)]
    return [
        triton.Config({"BLOCK_C": bc, "BLOCK_W": bw}, num_warps=w)
        for bc, bw in shapes
        for w in (2, 4, 8)
        if bc * bw >= 32 * w  # at least one element per thread
    ]


def grid(rows: int, channels: int, width: int):
    """One program per (row, channel block, width block), flattened on axis 0
    (axes 1 and 2 of a CUDA grid stop at 65535)."""

    def _grid(meta: dict[str, int]) -> tuple[int]:
        return (rows * triton.cdiv(channels, meta["BLOCK_C"]) * triton.cdiv(width, meta["BLOCK_W"]),)

    return _grid


@triton.jit
def tile_coordinates(C, width, rows, BLOCK_C: tl.constexpr, BLOCK_W: tl.constexpr):
    """This program's tile: batch index n (int64), row r in [0, rows) as a (1, 1) block, channels
    c (BLOCK_C, 1) int64 and columns w (1, BLOCK_W), decoded from the flat grid().

    The row is a block, not a scalar, so that every mask built from it is a boolean block by
    construction: the interpreter splats a scalar comparison to int32, and since Triton 3.8 its
    loads and stores refuse masks that are not boolean (compiled kernels always required them)."""
    pid = tl.program_id(0)
    n_wb = tl.cdiv(width, BLOCK_W)
    n_cb = tl.cdiv(C, BLOCK_C)
    wb = pid % n_wb
    cb = (pid // n_wb) % n_cb
    row = pid // (n_wb * n_cb)
    c = (cb * BLOCK_C + tl.arange(0, BLOCK_C)).to(tl.int64)[:, None]
    w = (wb * BLOCK_W + tl.arange(0, BLOCK_W))[None, :]
    return (row // rows).to(tl.int64), row % rows + tl.zeros([1, 1], tl.int32), c, w
