"""Triton occluded batch: occluded inputs (or crops of them), one per occluder position.

One program fills a (BLOCK_C, BLOCK_H, BLOCK_W) tile of one output p: channels x
crop rows x crop columns. Every output cell loads from at most one of the image
and the baseline (masked loads), so the tile moves the bytes the op must move
and no more; values are copied in their own dtype, never converted (NaN
payloads and -0.0 kept). Images and baseline are read through their strides
(stride 0 for a broadcast baseline). An image index out of range (possible only
with the op's validate=False) reads nothing and yields NaN planes.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from zfaccel.triton_kernels.tiles import interpreting


@triton.jit
def _occlusion_batch_kernel(
    img_ptr, base_ptr, pos_ptr, crop_ptr, out_ptr,
    B, C, H, W, CH, CW, WH, WW,
    sin, sic, sih, siw,
    sbn, sbc, sbh, sbw,
    BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    n_wb = tl.cdiv(CW, BLOCK_W)
    n_hb = tl.cdiv(CH, BLOCK_H)
    n_cb = tl.cdiv(C, BLOCK_C)
    wb = pid % n_wb
    hb = (pid // n_wb) % n_hb
    cb = (pid // (n_wb * n_hb)) % n_cb
    # p as a (1, 1, 1) block, so that `good` and every mask built from it is a boolean block by
    # construction (the interpreter splats a scalar comparison to int32, which its loads refuse
    # since Triton 3.8).
    p = (pid // (n_wb * n_hb * n_cb)).to(tl.int64) + tl.zeros([1, 1, 1], tl.int64)

    b = tl.load(pos_ptr + 3 * p)
    # Clamping keeps any int64 coordinate from overflowing and changes no answer: a crop or an
    # occluder clamped to just outside the image stays outside it.
    pr = tl.minimum(tl.maximum(tl.load(pos_ptr + 3 * p + 1), -WH), H)
    pc = tl.minimum(tl.maximum(tl.load(pos_ptr + 3 * p + 2), -WW), W)
    r0 = tl.minimum(tl.maximum(tl.load(crop_ptr + 2 * p), -CH), H)
    c0 = tl.minimum(tl.maximum(tl.load(crop_ptr + 2 * p + 1), -CW), W)
    good = (b >= 0) & (b < B)

    c = (cb * BLOCK_C + tl.arange(0, BLOCK_C)).to(tl.int64)[:, None, None]
    i = (hb * BLOCK_H + tl.arange(0, BLOCK_H)).to(tl.int64)[None, :, None]
    j = (wb * BLOCK_W + tl.arange(0, BLOCK_W)).to(tl.int64)[None, None, :]
    r = r0 + i  # absolute image row and column of each cell
    s = c0 + j
    cell = (c < C) & (i < CH) & (j < CW)
    valid = cell & good & (r >= 0) & (r < H) & (s >= 0) & (s < W)
    occluded = (r >= pr) & (r < pr + WH) & (s >= pc) & (s < pc + WW)
    image = tl.load(img_ptr + b * sin + c * sic + r * sih + s * siw, mask=valid & ~occluded, other=0.0)
    base = tl.load(base_ptr + b * sbn + c * sbc + r * sbh + s * sbw, mask=valid & occluded, other=0.0)
    v = tl.where(occluded, base, image)
    # A float32 NaN converted: the interpreter has no bfloat16 scalar constants.
    nan = tl.full((BLOCK_C, BLOCK_H, BLOCK_W), float("nan"), tl.float32).to(out_ptr.dtype.element_ty)
    v = tl.where(good, v, nan)
    tl.store(out_ptr + ((p * C + c) * CH + i) * CW + j, v, mask=cell)


# On GPUs: 8 cells of a 2048-cell tile per thread. With 4 warps (16 cells each, int64 addressing)
# ptxas gave 117-176 registers and an 8-byte spill (bfloat16, sm_80); 8 warps take 56-93, no spill
# (python -m zfaccel.triton_kernels.compile_check).
NUM_WARPS = 8


def tile(c: int, ch: int, cw: int, interpreter: bool) -> dict[str, int]:
    """The launcher's tile for (c, ch, cw) outputs, under the interpreter or on a GPU."""
    if interpreter:
        # The interpreter pays about 30 ms per program whatever its size: up to 4 x 64 x 64 cells
        # each, so a test's small output is a handful of programs.
        return dict(BLOCK_C=min(triton.next_power_of_2(c), 4), BLOCK_H=min(triton.next_power_of_2(ch), 64),
                    BLOCK_W=min(triton.next_power_of_2(cw), 64))  # fmt: skip
    # 2048 cells (8 per thread of NUM_WARPS = 8 warps) of one channel, whole rows when they fit in 256 columns:
    # a 224-column row wastes 12.5% of the lanes. Untuned: no GPU was at hand when this was written.
    block_w = min(triton.next_power_of_2(cw), 256)
    return dict(BLOCK_C=1, BLOCK_H=min(triton.next_power_of_2(ch), 2048 // block_w), BLOCK_W=block_w)


def occlusion_batch(
    images: torch.Tensor,
    baseline: torch.Tensor,
    positions: torch.Tensor,
    window: tuple[int, int],
    crop_origins: torch.Tensor,
    crop_size: tuple[int, int],
) -> torch.Tensor:
    """images, baseline: (B, C, H, W) float, any strides (stride 0 too); positions: (P, 3) int64;
    crop_origins: (P, 2) int64 -> (P, C, ch, cw) images.dtype (see zfaccel.ops.occlusion_batch)."""
    b, c, h, w = images.shape
    p = positions.shape[0]
    ch, cw = crop_size
    out = torch.empty((p, c, ch, cw), dtype=images.dtype, device=images.device)
    if p == 0:
        return out
    shape = tile(c, ch, cw, interpreting())
    programs = (
        p * triton.cdiv(c, shape["BLOCK_C"]) * triton.cdiv(ch, shape["BLOCK_H"]) * triton.cdiv(cw, shape["BLOCK_W"])
    )
    if programs >= 2**31:
        raise ValueError(f"occlusion_batch: {programs} programs exceed a CUDA grid; split the positions")
    args = arguments(images, baseline, positions.contiguous(), window, crop_origins.contiguous(), out)
    if interpreting():
        _occlusion_batch_kernel[(programs,)](*args, **shape)
    else:
        with torch.cuda.device(images.device):
            _occlusion_batch_kernel[(programs,)](*args, **shape, num_warps=NUM_WARPS)
    return out


def arguments(
    images: torch.Tensor,
    baseline: torch.Tensor,
    positions: torch.Tensor,
    window: tuple[int, int],
    crop_origins: torch.Tensor,
    out: torch.Tensor,
) -> tuple:
    """The kernel's runtime arguments: what the launcher passes and what compile_check compiles."""
    b, c, h, w = images.shape
    ch, cw = out.shape[-2:]
    return (
        images, baseline, positions, crop_origins, out,
        b, c, h, w, ch, cw, *window, *images.stride(), *baseline.stride(),
    )  # fmt: skip
