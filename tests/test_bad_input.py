"""Bad input gets a ValueError or TypeError naming the argument: never a crash or a wrong answer."""

from __future__ import annotations

import pytest
import torch

import zfaccel

X = torch.randn(2, 3, 8, 8)
Y, S = zfaccel.max_pool2d_switches(X, 3, 2)  # (2, 3, 3, 3)

POOL_CASES = [
    # (description, args, kwargs, exception, message fragment)
    ("rank 2", (torch.randn(8, 8), 2), {}, ValueError, "x must be"),
    ("rank 5", (torch.randn(1, 2, 3, 8, 8), 2), {}, ValueError, "x must be"),
    ("empty batch", (torch.randn(0, 3, 8, 8), 2), {}, ValueError, "x must not be empty"),
    ("empty map", (torch.randn(2, 3, 0, 8), 2), {}, ValueError, "x must not be empty"),
    ("integer dtype", (torch.ones(1, 1, 4, 4, dtype=torch.int32), 2), {}, TypeError, "x must have dtype"),
    ("bool dtype", (torch.ones(1, 1, 4, 4, dtype=torch.bool), 2), {}, TypeError, "x must have dtype"),
    ("not a tensor", ([[1.0, 2.0]], 2), {}, TypeError, "x must be a torch.Tensor"),
    ("kernel larger than padded input", (torch.randn(1, 1, 4, 4), 7), {}, ValueError, "larger than the padded"),
    ("padding above half the kernel", (X, 3), {"padding": 2}, ValueError, "padding"),
    ("negative padding", (X, 3), {"padding": -1}, ValueError, "padding"),
    ("zero stride", (X, 3), {"stride": 0}, ValueError, "stride"),
    ("zero kernel", (X, 0), {}, ValueError, "kernel_size"),
    ("zero dilation", (X, 3), {"dilation": 0}, ValueError, "dilation"),
    ("window over 255", (torch.randn(1, 1, 20, 20), 16), {}, ValueError, "at most 255"),
    ("kernel of three", (X, (3, 3, 3)), {}, TypeError, "kernel_size"),
    ("float kernel", (X, 2.5), {}, TypeError, "kernel_size"),
    ("dilated window misses input", (torch.randn(1, 1, 2, 2), 3), dict(stride=4, padding=1, dilation=3, ceil_mode=True),
     ValueError, "misses"),
    ("unknown backend", (X, 2), {"backend": "cudnn"}, ValueError, "backend must be one of"),
    ("ceil_mode not bool", (X, 2), {"ceil_mode": "yes"}, TypeError, "ceil_mode"),
]  # fmt: skip


@pytest.mark.parametrize("what, args, kwargs, exc, match", POOL_CASES, ids=[c[0] for c in POOL_CASES])
def test_max_pool2d_switches_rejects(what, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        zfaccel.max_pool2d_switches(*args, **kwargs)


def _bad_value(s: torch.Tensor, value: int, at=(0, 0, 1, 1)) -> torch.Tensor:
    s = s.clone()
    s[at] = value
    return s


UNPOOL_CASES = [
    ("switches int64", (Y, S.long(), (8, 8), 3, 2), {}, TypeError, "switches must be uint8"),
    ("switches float", (Y, S.float(), (8, 8), 3, 2), {}, TypeError, "switches must be uint8"),
    ("switches not a tensor", (Y, S.tolist(), (8, 8), 3, 2), {}, TypeError, "switches must be a torch.Tensor"),
    ("switches wrong shape", (Y, S[:, :, :2], (8, 8), 3, 2), {}, ValueError, "switches must have y's shape"),
    ("switch outside window", (Y, _bad_value(S, 9), (8, 8), 3, 2), {}, ValueError, r"switches\[0, 0, 1, 1\] = 9"),
    ("switch 255", (Y, _bad_value(S, 255), (8, 8), 3, 2), {}, ValueError, "outside"),
    ("output_size inconsistent", (Y, S, (12, 12), 3, 2), {}, ValueError, "output_size"),
    ("output_size too small", (Y, S, (4, 8), 3, 2), {}, ValueError, "output_size"),
    ("output_size not a size", (Y, S, 8, 3, 2), {}, TypeError, "output_size"),
    ("y integer", (Y.long(), S, (8, 8), 3, 2), {}, TypeError, "y must have dtype"),
    ("y empty", (Y[:0], S[:0], (8, 8), 3, 2), {}, ValueError, "y must not be empty"),
]  # fmt: skip


@pytest.mark.parametrize("what, args, kwargs, exc, match", UNPOOL_CASES, ids=[c[0] for c in UNPOOL_CASES])
def test_max_unpool2d_switches_rejects(what, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        zfaccel.max_unpool2d_switches(*args, **kwargs)


def test_switch_on_padding_position():
    """With padding 1, window (0, 0)'s offset 0 is the padding corner, which no pooling can choose."""
    x = torch.randn(1, 2, 7, 7)
    y, s = zfaccel.max_pool2d_switches(x, 3, 2, 1)
    with pytest.raises(ValueError, match="on the padding"):
        zfaccel.max_unpool2d_switches(y, _bad_value(s, 0, (0, 1, 0, 0)), (7, 7), 3, 2, 1)
    bottom = _bad_value(s, 8, (0, 0, 3, 2))  # the last window row reaches row 7 with tap kh=2
    with pytest.raises(ValueError, match="on the padding"):
        zfaccel.max_unpool2d_switches(y, bottom, (7, 7), 3, 2, 1)
    with pytest.raises(ValueError, match="on the padding"):
        zfaccel.switches_to_indices(bottom, (7, 7), 3, 2, 1)


def test_validate_false_skips_the_scan():
    """validate=False trusts the switches: a bad value is dropped (it names no input position)."""
    x_hat = zfaccel.max_unpool2d_switches(Y, _bad_value(S, 9), (8, 8), 3, 2, validate=False)
    assert x_hat.shape == X.shape and bool(torch.isfinite(x_hat).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU to put switches on another device")
def test_switches_on_other_device():
    with pytest.raises(ValueError, match="switches are on"):
        zfaccel.max_unpool2d_switches(Y.cuda(), S, (8, 8), 3, 2)


def test_switches_to_indices_rejects():
    with pytest.raises(TypeError, match="switches must have dtype uint8"):
        zfaccel.switches_to_indices(S.long(), (8, 8), 3, 2)
    with pytest.raises(ValueError, match="output_size"):
        zfaccel.switches_to_indices(S, (20, 20), 3, 2)
    with pytest.raises(ValueError, match="outside"):
        zfaccel.switches_to_indices(_bad_value(S, 200), (8, 8), 3, 2)
