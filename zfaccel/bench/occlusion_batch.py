"""Benchmark of occlusion_batch against the torch way: repeat the image, paste the baseline per position.

Two cases from the occlusion sweep of ZFNet at 224 px, window 32, stride 8
(625 positions), a grey (per-channel) occluder and a batch of 32 positions
spread over the image:

- whole occluded images, the batch a full re-inference would feed the model:
  (32, 3, 224, 224), 19 MB of float32;
- conv1 crops: the 43 x 43 input pixels that the 19 x 19 conv1 outputs an
  occluder changes depend on (7 x 7 kernel, stride 2, padding 1; origin
  row - 5), which is all exact incremental inference recomputes at conv1.
  The torch way stacks the crops' slices of a zero-framed image, then pastes
  the baseline over each crop's occluder.

The anchor is the fastest torch way we found (224 px case, 1 thread, 2-core
machine): repeat + slice assignment 2.0 ms; boolean masks + torch.where
broadcasting the image 4.2 ms, or after image.repeat 33 ms.

The least the op must move is its output written once plus the image read
once (the baseline and positions are bytes); the roofline is the copy
bandwidth the runner measured (read + write). An output this write-heavy can
pass 100% of it: the one 602 KB image is read from cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import zfaccel
from zfaccel.bench.cases import our_backends
from zfaccel.bench.results import Row
from zfaccel.bench.timing import measure

ANCHOR = "image.repeat (crops: stacked slices of a zero-framed image) + the baseline slice-assigned per position"
SIZE, WINDOW, STRIDE = 224, 32, 8
# conv1 of ZFNet: 7 x 7, stride 2, padding 1. An occluder of 32 rows starting at an even row r
# changes conv1 rows r/2 - 2 .. r/2 + 16 (19 rows), which read input rows r - 5 .. r + 37: 43 rows.
CROP, CROP_SHIFT = 43, -5


@dataclass(frozen=True)
class OcclusionBenchCase:
    name: str
    batch: int  # positions per call
    crops: bool  # conv1 crops instead of whole images
    dtype: torch.dtype

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def out_shape(self) -> tuple[int, int, int, int]:
        side = CROP if self.crops else SIZE
        return (self.batch, 3, side, side)


def cases(device: torch.device, quick: bool) -> list[OcclusionBenchCase]:
    f32, bf16 = torch.float32, torch.bfloat16
    if device.type == "cuda":  # 256 positions: 154 MB of float32 images, enough to fill a GPU's bandwidth
        found = [
            OcclusionBenchCase("zfnet 224px images", 256, False, f32),
            OcclusionBenchCase("zfnet 224px images", 256, False, bf16),
            OcclusionBenchCase("zfnet conv1 crops", 256, True, f32),
            OcclusionBenchCase("zfnet conv1 crops", 4096, True, f32),
        ]
        return found[::2] if quick else found
    found = [
        OcclusionBenchCase("zfnet 224px images", 32, False, f32),
        OcclusionBenchCase("zfnet conv1 crops", 32, True, f32),
        OcclusionBenchCase("zfnet conv1 crops", 256, True, f32),
        OcclusionBenchCase("zfnet 224px images", 32, False, bf16),
    ]
    return found[:2] if quick else found


def inputs(case: OcclusionBenchCase, device: torch.device) -> tuple[torch.Tensor, ...]:
    """image (1, 3, 224, 224), grey baseline (3, 1, 1) expanded, positions (P, 3), crop origins (P, 2)."""
    g = torch.Generator().manual_seed(0)
    image = torch.randn((1, 3, SIZE, SIZE), generator=g).to(device=device, dtype=case.dtype)
    baseline = torch.tensor([0.485, 0.456, 0.406], dtype=case.dtype, device=device).view(3, 1, 1)
    side = (SIZE - WINDOW) // STRIDE + 1  # 25 x 25 = 625 positions
    flat = torch.arange(case.batch) * 19 % (side * side)  # 32 positions spread over the image
    rows, cols = flat // side * STRIDE, flat % side * STRIDE
    positions = torch.stack([torch.zeros_like(rows), rows, cols], 1).to(device)
    origins = torch.stack([rows + CROP_SHIFT, cols + CROP_SHIFT], 1).to(device)
    return image, baseline, positions, origins


def min_bytes(case: OcclusionBenchCase) -> int:
    """The output written once and the image read once."""
    item = torch.tensor([], dtype=case.dtype).element_size()
    p, c, h, w = case.out_shape()
    return (p * c * h * w + c * SIZE * SIZE) * item


def calls(case: OcclusionBenchCase, device: torch.device) -> tuple:
    image, baseline, positions, origins = inputs(case, device)
    pos, org = positions.tolist(), origins.tolist()

    pad = -CROP_SHIFT

    def torch_way() -> torch.Tensor:
        if not case.crops:
            batch = image.repeat(case.batch, 1, 1, 1)
            for p, (_, r, c) in enumerate(pos):
                batch[p, :, r : r + WINDOW, c : c + WINDOW] = baseline
            return batch
        framed = F.pad(image[0], (pad, pad + CROP, pad, pad + CROP))  # zeros around the image
        crops = torch.stack([framed[:, r + pad : r + pad + CROP, c + pad : c + pad + CROP] for r, c in org])
        for p, ((_, r, c), (r0, c0)) in enumerate(zip(pos, org, strict=True)):
            rows = slice(max(r, 0) - r0, min(r + WINDOW, SIZE) - r0)  # the occluder, clipped to the image
            cols = slice(max(c, 0) - c0, min(c + WINDOW, SIZE) - c0)
            crops[p, :, rows, cols] = baseline
        return crops

    size = (CROP, CROP) if case.crops else None
    crop_origins = origins if case.crops else None
    ours = {
        b: (lambda b=b: zfaccel.occlusion_batch(image, baseline, positions, WINDOW, crop_origins, size, backend=b))
        for b in our_backends(device)
    }
    expected = torch_way()
    for b, fn in ours.items():  # never time a wrong answer
        if not torch.equal(fn(), expected):
            raise AssertionError(f"occlusion_batch {case.name}: backend {b} differs from the torch way")
    return torch_way, ours


def rows(device: torch.device, quick: bool, roofline_gbs: float, warmup: int, reps: int) -> Iterator[Row]:
    for case in cases(device, quick):
        reference, ours = calls(case, device)
        yield Row(
            op="occlusion_batch",
            case=case.name,
            shape=str(case.out_shape()),
            dtype=case.dtype_name,
            layout="nchw",
            reference=ANCHOR,
            reference_ms=measure(reference, device, warmup, reps).median_ms,
            ours_ms={b: measure(fn, device, warmup, reps).median_ms for b, fn in ours.items()},
            min_bytes=min_bytes(case),
            roofline_gbs=roofline_gbs,
        )
