"""The compiled entry points check their own arguments (they take raw pointers from anyone)."""

from __future__ import annotations

import pytest
import torch

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
