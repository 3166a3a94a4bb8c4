"""BufferCache: large CPU outputs reused between kernel calls, never while anything refers to them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zfaccel.native as native
from zfaccel.analysis import DeconvNet
from zfaccel.backends import why_unavailable
from zfaccel.native.buffers import COUNTS_REFERENCES, BufferCache, current, reusing

pytestmark = pytest.mark.skipif(not COUNTS_REFERENCES, reason="this torch has no torch._C._storage_Use_Count")


def plain(n: int) -> torch.Tensor:
    return torch.empty(n, dtype=torch.uint8)


def test_a_buffer_comes_back_only_when_nothing_refers_to_it():
    cache = BufferCache(1 << 20, allocate=plain)
    a = cache.take(1000)
    ptr = a.data_ptr()
    view = a[10:20].view(torch.int16)  # a view keeps the storage referenced after `a` is gone
    del a
    b = cache.take(1000)
    assert b.data_ptr() != ptr
    del view
    c = cache.take(900)  # 1000 bytes fit 900 (within twice the size)
    assert c.data_ptr() == ptr and c.numel() == 900
    storage = c.untyped_storage()  # a storage object alone also holds it
    del c
    assert cache.take(1000).data_ptr() not in (ptr, b.data_ptr())
    del storage
    assert cache.take(1000).data_ptr() == ptr


def test_sizes_far_apart_get_their_own_buffer():
    cache = BufferCache(1 << 20, allocate=plain)
    small = cache.take(100).data_ptr()
    assert cache.take(300).data_ptr() != small  # too small
    assert cache.take(40).data_ptr() != small  # more than twice the size: would waste the rest
    assert cache.held == 440


def test_the_limit_is_kept_by_dropping_free_buffers_first():
    cache = BufferCache(1000, allocate=plain)
    held = cache.take(600)
    free = cache.take(300).data_ptr()
    assert cache.take(2000) is None  # beyond the limit: the caller allocates plainly
    third = cache.take(350)  # 600 + 300 + 350 > 1000: the free 300 goes
    assert third is not None and third.data_ptr() != free and cache.held == 950
    assert cache.take(400) is None  # the held ones cannot go
    del held
    cache.clear()
    assert cache.held == 0 and third.numel() == 350  # what callers hold lives on


@pytest.mark.parametrize("limit", [-1, 1.5, True, "1"])
def test_bad_limit_is_named(limit):
    with pytest.raises(ValueError, match="limit must be a non-negative number of bytes"):
        BufferCache(limit)


def test_launchers_draw_from_the_current_cache_only(monkeypatch):
    monkeypatch.setattr(native, "CACHE_MIN_BYTES", 1024)
    cache = BufferCache(1 << 20, allocate=plain)
    like = torch.empty(0)
    assert current() is None
    with reusing(cache) as active:
        assert current() is active
        out = native.empty((4, 8, 16), like, torch.float32, torch.contiguous_format)
        small = native.empty((4,), like, torch.float32, torch.contiguous_format)  # under CACHE_MIN_BYTES
        nhwc = native.empty((2, 8, 4, 4), like, torch.float32, torch.channels_last)
    assert current() is None
    assert out.shape == (4, 8, 16) and out.is_contiguous() and cache.held == out.numel() * 4
    assert nhwc.is_contiguous(memory_format=torch.channels_last)
    with reusing(cache):  # `out` is held: never handed out twice
        other = native.empty((4, 8, 16), like, torch.float32, torch.contiguous_format)
    assert other.data_ptr() != out.data_ptr()
    del small, nhwc, other
    ptr = out.data_ptr()
    del out
    with reusing(cache):
        again = native.empty((2, 16, 16), like, torch.float32, torch.contiguous_format)
    assert again.data_ptr() == ptr
    outside = native.empty((4, 8, 16), like, torch.float32, torch.contiguous_format)
    assert outside.data_ptr() != ptr


def test_deconvnet_reuses_its_buffers_without_touching_held_results(monkeypatch, gen):
    """Every crop buffer goes through the cache (threshold 0): projections equal the composite
    path's call after call, whatever ran between, and crops a caller holds keep their values."""
    why = why_unavailable("native", torch.device("cpu"))
    if why:
        pytest.skip(f"native: {why}")
    monkeypatch.setattr(native, "CACHE_MIN_BYTES", 0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 5, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
    ).eval()  # fmt: skip
    images = torch.randn(2, 3, 45, 45, generator=gen)
    ref = DeconvNet(model, backend="torch")
    dn = DeconvNet(model, backend="native")
    first = dn.project(images, 5, [0, 3, 7])
    torch.testing.assert_close(first, ref.project(images, 5, [0, 3, 7]))
    held = dn._buffers.held
    assert held > 0
    targets = torch.tensor([[0, 1, 2, 2], [1, 4, 0, 3]])
    crops = dn.project_targets(images, 5, targets)
    kept = crops.signal.clone()
    for channels in ([1, 2], [0, 3, 7], list(range(12))):
        torch.testing.assert_close(dn.project(images, 5, channels), ref.project(images, 5, channels))
        torch.testing.assert_close(crops.signal, kept, rtol=0, atol=0)
    torch.testing.assert_close(dn.project(images, 5, [0, 3, 7]), first, rtol=0, atol=0)
    dn.release_buffers()
    assert dn._buffers.held == 0
