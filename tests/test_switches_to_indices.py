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
