"""switches_to_indices returns exactly torch's max-pool indices, and converts back."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pool_cases import CASE_IDS, CASES
from support import assert_same, make_input

import zfaccel
from zfaccel.geometry import PoolGeometry
from zfaccel.reference import indices_to_switches


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_round_trip_with_torch_indices(case, gen):
    x = make_input(case.shape, torch.float32, "cpu", gen)
    _, idx = F.max_pool2d(x, case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode, return_indices=True)
    g = PoolGeometry.for_pool(x.shape[-2:], **case.kwargs())
    switches = indices_to_switches(idx, g)
    assert switches.dtype == torch.uint8
    assert int(switches.max()) < g.window
    assert_same(zfaccel.switches_to_indices(switches, x.shape[-2:], **case.unpool_kwargs()), idx, "indices")
    assert_same(zfaccel.switches_to_indices(switches[0], x.shape, **case.unpool_kwargs()), idx[0], "unbatched")


def test_feeds_torch_max_unpool():
    """The indices work with F.max_unpool2d for non-overlapping windows (where it is exact)."""
    x = torch.randn(2, 3, 8, 8)
    y, s = zfaccel.max_pool2d_switches(x, 2)
    idx = zfaccel.switches_to_indices(s, (8, 8), 2)
    assert_same(F.max_unpool2d(y, idx, 2), zfaccel.max_unpool2d_switches(y, s, (8, 8), 2), "unpool")


def test_native_scan_reads_unbatched_switches_as_one_image(monkeypatch):
    """(C, OH, OW) switches are scanned as N = 1, C planes: read as N = C, C = OH the compiled scan
    ran OH times past the buffer's end (a flaky segfault in CI)."""
    from zfaccel import native

    ext = native.extension()
    if ext is None:
        pytest.skip(f"zfaccel._native is not importable: {native.import_error()}")
    shapes = []

    class Spy:
        def __getattr__(self, name):
            return getattr(ext, name)

        def count_invalid_switches_cpu(self, ptr, shape, layout, threads):
            shapes.append(tuple(shape[:2]))
            return ext.count_invalid_switches_cpu(ptr, shape, layout, threads)

    x = torch.randn(5, 13, 11)
    _, idx = F.max_pool2d(x, 3, 2, return_indices=True)
    switches = zfaccel.max_pool2d_switches(x, 3, 2)[1]
    monkeypatch.setattr(native, "extension", lambda: Spy())
    assert_same(zfaccel.switches_to_indices(switches, x.shape[-2:], 3, 2), idx, "indices")
    assert shapes == [(1, 5)]
