"""Benchmark cases shared by the switch-op benchmarks: ZFNet/VGG pooling layers at batch sizes that fill the device."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zfaccel.bench.results import Row
from zfaccel.bench.timing import busy_core, measure_interleaved


@dataclass(frozen=True)
class PoolBenchCase:
    name: str
    shape: tuple[int, int, int, int]
    kernel: int
    stride: int
    ceil_mode: bool
    dtype: torch.dtype
    layout: str  # "nchw" or "channels_last"

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def pool_args(self) -> tuple:
        return (self.kernel, self.stride, 0, 1, self.ceil_mode)

    def input(self, device: torch.device, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(self.shape, generator=g).to(device=device, dtype=self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.layout == "channels_last" else x


def pool_cases(device: torch.device, quick: bool) -> list[PoolBenchCase]:
    """CPU: the (16, 96, 110, 110) ZFNet conv1 pool (3x3/2, ceil_mode) first, in both layouts and
    float32 and bfloat16; GPU: batch 256."""
    f32, bf16 = torch.float32, torch.bfloat16
    if device.type == "cuda":
        cases = [
            PoolBenchCase("zfnet_pool1", (256, 96, 110, 110), 3, 2, True, f32, "nchw"),
            PoolBenchCase("zfnet_pool1", (256, 96, 110, 110), 3, 2, True, bf16, "nchw"),
            PoolBenchCase("zfnet_pool1", (256, 96, 110, 110), 3, 2, True, f32, "channels_last"),
            PoolBenchCase("zfnet_pool1", (256, 96, 110, 110), 3, 2, True, bf16, "channels_last"),
            PoolBenchCase("zfnet_pool2", (256, 256, 26, 26), 3, 2, True, f32, "nchw"),
            PoolBenchCase("zfnet_pool2", (256, 256, 26, 26), 3, 2, True, bf16, "nchw"),
            PoolBenchCase("vgg_pool1", (64, 64, 224, 224), 2, 2, False, bf16, "nchw"),
        ]
        return cases[:2] if quick else cases
    cases = [
        PoolBenchCase("zfnet_pool1", (16, 96, 110, 110), 3, 2, True, f32, "nchw"),
        PoolBenchCase("zfnet_pool1", (16, 96, 110, 110), 3, 2, True, bf16, "nchw"),
        PoolBenchCase("zfnet_pool1", (16, 96, 110, 110), 3, 2, True, f32, "channels_last"),
        PoolBenchCase("zfnet_pool1", (16, 96, 110, 110), 3, 2, True, bf16, "channels_last"),
        PoolBenchCase("zfnet_pool2", (16, 256, 26, 26), 3, 2, True, f32, "nchw"),
        PoolBenchCase("vgg_pool1", (8, 64, 224, 224), 2, 2, False, f32, "nchw"),
    ]
    return cases[:1] if quick else cases


def our_backends(device: torch.device) -> list[str]:
    """Our compiled backends that run here; Triton on the CPU is the interpreter, not a contender."""
    from zfaccel.backends import why_unavailable

    candidates = ("triton", "native") if device.type == "cuda" else ("native",)
    return [b for b in candidates if why_unavailable(b, device) is None]


def switch_row(op: str, case: PoolBenchCase, anchor: str, calls: tuple, min_bytes: int, device: torch.device,
               roofline_gbs: float, warmup: int, reps: int, under_load: bool) -> Row:  # fmt: skip
    """A Row for one switch-op case: the anchor ("torch"), our backends, a copy of the same bytes and
    our kernels alone (``calls``' third item, backend -> a call into preallocated outputs) timed in
    interleaved rounds (minimum of each), then the anchor and ours again while another process keeps
    a core busy when ``under_load``."""
    reference, ours, kernels = calls
    src = torch.ones(min_bytes // 2, dtype=torch.uint8, device=device)
    dst = torch.zeros_like(src)
    fns = {"torch": reference, **ours, "copy": lambda: dst.copy_(src), **{f"kernel {b}": k for b, k in kernels.items()}}
    quiet = measure_interleaved(fns, device, warmup, reps)
    copy_ms = quiet.pop("copy")
    kernel_ms = {b: quiet.pop(f"kernel {b}") for b in kernels}
    loaded: dict[str, float] = {}
    if under_load:
        with busy_core():
            loaded = measure_interleaved({"torch": reference, **ours}, device, warmup, reps)
    return Row(
        op=op,
        case=case.name,
        shape=str(case.shape),
        dtype=case.dtype_name,
        layout=case.layout,
        reference=anchor,
        reference_ms=quiet.pop("torch"),
        ours_ms=quiet,
        min_bytes=min_bytes,
        roofline_gbs=roofline_gbs,
        loaded_ms=loaded,
        copy_ms=copy_ms,
        kernel_ms=kernel_ms,
    )
