"""The compiled entry points check their own arguments (they take raw pointers from anyone)."""

from __future__ import annotations

import pytest
import torch
from pool_cases import CASE_IDS, CASES

from zfaccel import native

ext = native.extension()
pytestmark = pytest.mark.skipif(ext is None, reason=f"zfaccel._native not built: {native.import_error()}")

X = torch.randn(1, 2, 8, 8)
Y = torch.empty(1, 2, 3, 3)
S = torch.empty(1, 2, 3, 3, dtype=torch.uint8)
GOOD = (1, 2, 8, 8, 3, 3, 3, 3, 2, 2, 0, 0, 1, 1)


def run_pool(shape=GOOD, dtype=0, layout=0, threads=1, ptrs=None):
    x, y, s = ptrs or (X.data_ptr(), Y.data_ptr(), S.data_ptr())
    ext.max_pool2d_switches_cpu(x, y, s, shape, dtype, layout, False, threads)


def run_unpool(shape=GOOD, dtype=0, layout=0, threads=1, ptrs=None):
    y, s, x = ptrs or (Y.data_ptr(), S.data_ptr(), X.data_ptr())
    ext.max_unpool2d_switches_cpu(y, s, x, shape, dtype, layout, False, threads)


def with_(i: int, v: int) -> tuple[int, ...]:
    return tuple(v if j == i else g for j, g in enumerate(GOOD))


BAD = [
    ("zero batch", dict(shape=with_(0, 0)), "input sizes"),
    ("negative width", dict(shape=with_(3, -8)), "input sizes"),
    ("pooled size inconsistent", dict(shape=with_(4, 5)), "pooled size"),
    ("zero kernel", dict(shape=with_(6, 0)), "kernel_size"),
    ("window over 255", dict(shape=(1, 1, 40, 40, 25, 25, 16, 16, 1, 1, 0, 0, 1, 1)), "at most 255"),
    ("zero stride", dict(shape=with_(8, 0)), "stride"),
    ("padding above half", dict(shape=with_(10, 2)), "padding"),
    ("zero dilation", dict(shape=with_(12, 0)), "dilation"),
    ("dtype code", dict(dtype=7), "dtype code"),
    ("layout code", dict(layout=3), "layout"),
    ("no threads", dict(threads=0), "num_threads"),
    ("null pointer", dict(ptrs=(0, Y.data_ptr(), S.data_ptr())), "null"),
]


@pytest.mark.parametrize("run", [run_pool, run_unpool], ids=["pool", "unpool"])
@pytest.mark.parametrize("what, kwargs, match", BAD, ids=[b[0] for b in BAD])
def test_entry_points_reject(run, what, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run(**kwargs)


def test_good_arguments_run():
    run_pool()
    run_unpool()


def test_shape_must_have_14_sizes():
    with pytest.raises(TypeError):
        ext.max_pool2d_switches_cpu(X.data_ptr(), Y.data_ptr(), S.data_ptr(), GOOD[:13], 0, 0, False, 1)


def _torch_invalid_count(s: torch.Tensor, g) -> int:
    """Every switch outside its window or on a padding position, counted in plain torch."""
    oh = torch.arange(g.output_size[0]).view(-1, 1) * g.stride[0] - g.padding[0]
    ow = torch.arange(g.output_size[1]) * g.stride[1] - g.padding[1]
    v = s.long()
    ih = oh + (v // g.kernel[1]) * g.dilation[0]
    iw = ow + (v % g.kernel[1]) * g.dilation[1]
    bad = (v >= g.window) | (ih < 0) | (ih >= g.input_size[0]) | (iw < 0) | (iw >= g.input_size[1])
    return int(bad.sum())


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_switch_scan_matches_torch(case, channels_last, gen):
    """The compiled pre-scan that validation trusts counts exactly the invalid switches."""
    import zfaccel
    from zfaccel.geometry import PoolGeometry

    x = torch.randn(case.shape, generator=gen)
    _, s = zfaccel.max_pool2d_switches(x, **case.kwargs())
    g = PoolGeometry.for_pool(case.shape[-2:], **case.kwargs())
    for trial in range(6):
        t = s.clone()
        if trial:  # corrupt a few random positions with random values (some land on padding)
            flat = t.view(-1)
            pos = torch.randint(0, flat.numel(), (3 * trial,), generator=gen)
            high = 256 if trial >= 3 else g.window  # trials 3-5 mix both kinds of invalid value
            flat[pos] = torch.randint(0, high, (pos.numel(),), generator=gen).to(torch.uint8)
        if channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        n, c = t.shape[:2]
        layout = int(channels_last and not t.is_contiguous())
        count = ext.count_invalid_switches_cpu(t.data_ptr(), g.native_shape(n, c), layout, 2)
        assert count == _torch_invalid_count(t, g)


def test_touch_pages_writes_one_zero_per_page_inside_the_buffer():
    ext = native.extension()
    buf = torch.full((5 * 4096 + 100,), 7, dtype=torch.uint8)
    start, nbytes = 50, 2 * 4096 + 10  # pages at offsets 0, 4096 and 8192 of the range
    ext.touch_pages(buf.data_ptr() + start, nbytes, 2)
    zeros = (buf == 0).nonzero().flatten().tolist()
    assert zeros == [start, start + 4096, start + 8192]
    # Several 2 MiB pages from an odd offset: the items split at huge-page boundaries, and together
    # write every 4 KiB step of the range once, nothing outside it.
    big = torch.full((5 << 20,), 7, dtype=torch.uint8)
    start, nbytes = 12345, (4 << 20) + 777
    ext.touch_pages(big.data_ptr() + start, nbytes, 2)
    zeros = (big == 0).nonzero().flatten().tolist()
    assert zeros == list(range(start, start + nbytes, 4096))
    with pytest.raises(ValueError, match="num_threads"):
        ext.touch_pages(buf.data_ptr(), 10, 0)
