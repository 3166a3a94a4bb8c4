"""Benchmark of max_unpool2d_switches(relu=True) against aten's max-pool backward followed by relu.

Both compute relu(transpose of the pooling applied to y); aten needs the int64
indices and the input, we need the uint8 switches. Our call is the default one,
switch validation included (on a GPU that is one extra reduction and a sync).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import zfaccel
from zfaccel import native
from zfaccel.bench.cases import PoolBenchCase, our_backends, switch_row
from zfaccel.bench.results import Row
from zfaccel.geometry import PoolGeometry

ANCHOR = "aten max_pool2d backward + relu"


def min_bytes(case: PoolBenchCase) -> int:
    """Read y and the switches (1 byte each) once; write x_hat once."""
    n, c, h, w = case.shape
    oh, ow = PoolGeometry.for_pool((h, w), *case.pool_args()).output_size
    item = torch.tensor([], dtype=case.dtype).element_size()
    return n * c * (oh * ow * (item + 1) + h * w * item)


def calls(case: PoolBenchCase, device: torch.device) -> tuple:
    x = case.input(device)
    k, s, p, d, ceil = case.pool_args()
    y_ref, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    y, switches = zfaccel.max_pool2d_switches(x, k, s, p, d, ceil, backend="torch")
    aten_backward = torch.ops.aten.max_pool2d_with_indices_backward
    reference = lambda: torch.relu(aten_backward(y_ref, x, [k, k], [s, s], [p, p], [d, d], ceil, idx))
    hw = case.shape[-2:]
    ours = {
        b: (lambda b=b: zfaccel.max_unpool2d_switches(y, switches, hw, k, s, p, d, relu=True, backend=b))
        for b in our_backends(device)
    }
    kernels = {}  # native alone: into an output allocated and touched beforehand, no switch validation
    if "native" in ours:
        out = ours["native"]()
        shape = PoolGeometry.for_pool(hw, k, s, p, d, ceil).native_shape(*case.shape[:2])
        kernels["native"] = lambda: native.launch("max_unpool2d_switches", (y, switches, out), shape, True)
    return reference, ours, kernels


def run(case: PoolBenchCase, device: torch.device, roofline_gbs: float, warmup: int, reps: int,
        under_load: bool = False) -> Row:  # fmt: skip
    return switch_row("max_unpool2d_switches", case, ANCHOR, calls(case, device), min_bytes(case), device, roofline_gbs,
                      warmup, reps, under_load)  # fmt: skip
