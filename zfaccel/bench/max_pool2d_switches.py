"""Benchmark of max_pool2d_switches against aten's max_pool2d(return_indices=True)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import zfaccel
from zfaccel import native
from zfaccel.bench.cases import PoolBenchCase, our_backends, switch_row
from zfaccel.bench.results import Row
from zfaccel.geometry import PoolGeometry

ANCHOR = "aten max_pool2d(return_indices=True)"


def min_bytes(case: PoolBenchCase) -> int:
    """Read x once; write y (x's dtype) and the switches (1 byte each)."""
    n, c, h, w = case.shape
    oh, ow = PoolGeometry.for_pool((h, w), *case.pool_args()).output_size
    item = torch.tensor([], dtype=case.dtype).element_size()
    return n * c * (h * w * item + oh * ow * (item + 1))


def calls(case: PoolBenchCase, device: torch.device) -> tuple:
    """(reference call, {backend: our call}, {backend: our kernel alone}) on a fresh input; the kernel
    alone (native) writes into outputs allocated and touched beforehand."""
    x = case.input(device)
    k, s, p, d, ceil = case.pool_args()
    reference = lambda: F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    ours = {b: (lambda b=b: zfaccel.max_pool2d_switches(x, k, s, p, d, ceil, backend=b)) for b in our_backends(device)}
    kernels = {}
    if "native" in ours:
        y, switches = ours["native"]()
        shape = PoolGeometry.for_pool(case.shape[-2:], k, s, p, d, ceil).native_shape(*case.shape[:2])
        kernels["native"] = lambda: native.launch("max_pool2d_switches", (x, y, switches), shape, False)
    return reference, ours, kernels


def run(case: PoolBenchCase, device: torch.device, roofline_gbs: float, warmup: int, reps: int,
        under_load: bool = False) -> Row:  # fmt: skip
    return switch_row("max_pool2d_switches", case, ANCHOR, calls(case, device), min_bytes(case), device, roofline_gbs,
                      warmup, reps, under_load)  # fmt: skip
