"""zfaccel.nn: MaxPool2d is a drop-in torch.nn.MaxPool2d (same outputs and gradients, 1-byte saved state)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pool_cases import CASE_IDS, CASES
from support import interpreted, target_params
from torch import nn

import zfaccel
from zfaccel.nn import MaxPool2d, MaxUnpool2d, patch

TARGETS = target_params("max_pool2d_switches")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("target", TARGETS)
def test_forward_and_gradient_equal_torch(target, case, gen):
    device, backend = target
    ours = MaxPool2d(case.kernel, case.stride, case.padding, case.dilation, ceil_mode=case.ceil_mode, backend=backend)
    theirs = nn.MaxPool2d(case.kernel, case.stride, case.padding, case.dilation, ceil_mode=case.ceil_mode)
    x = torch.randn(case.input_shape(interpreted(target)), generator=gen).to(device)
    g = torch.randn(theirs(x).shape, generator=gen).to(device)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa), theirs(xb)
    assert torch.equal(ya, yb)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-6, atol=1e-6)


def test_is_a_torch_max_pool():
    pool = MaxPool2d(3, 2, ceil_mode=True)
    assert isinstance(pool, nn.MaxPool2d)
    assert (pool.kernel_size, pool.stride, pool.ceil_mode) == (3, 2, True)
    assert "ceil_mode=True" in repr(pool)


def test_return_indices_is_a_clear_error():
    with pytest.raises(ValueError, match="return_indices=True is not supported"):
        MaxPool2d(2, return_indices=True)


def test_bad_parameters_fail_at_construction():
    with pytest.raises(ValueError, match="padding"):
        MaxPool2d(3, padding=2)


@pytest.mark.parametrize("relu", [False, True])
def test_gradcheck_float64(relu):
    pool = MaxPool2d(3, 2, 1, ceil_mode=True, relu=relu)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(pool, (x,))


def test_unpool_gradcheck_float64():
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    y, s = zfaccel.max_pool2d_switches(x, 3, 2)
    for relu in (False, True):
        unpool = MaxUnpool2d(3, 2, relu=relu)
        yy = (y * torch.randn_like(y)).requires_grad_()
        assert torch.autograd.gradcheck(lambda t, u=unpool: u(t, s, (9, 9)), (yy,))


def _saved_tensors(fn, x):
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return saved


def test_saves_only_switches():
    """The backward keeps the uint8 switches: neither the input nor int64 indices (8x less than torch)."""
    x = torch.randn(2, 4, 16, 16, requires_grad=True)
    saved = _saved_tensors(MaxPool2d(3, 2), x)
    assert [t.dtype for t in saved] == [torch.uint8]
    assert saved[0].shape == (2, 4, 7, 7)
    torch_saved = _saved_tensors(nn.MaxPool2d(3, 2), x)
    assert torch.int64 in [t.dtype for t in torch_saved]
    relu_saved = _saved_tensors(MaxPool2d(3, 2, relu=True), x)  # plus the output, for the ReLU's mask
    assert sorted(str(t.dtype) for t in relu_saved) == ["torch.float32", "torch.uint8"]


def test_fused_relu_gradient_equals_relu_then_pool():
    x = torch.randn(2, 3, 11, 11, dtype=torch.float64)
    x[0, 0, :3, :3] = -1.0  # a window whose maximum is negative: ReLU's gradient there is 0
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    MaxPool2d(3, 2, relu=True)(xa).sum().backward()
    F.max_pool2d(torch.relu(xb), 3, 2).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)


def test_keep_switches():
    pool = MaxPool2d(2, keep_switches=True)
    x = torch.randn(1, 2, 4, 4)
    pool(x)
    assert pool.switches is not None and pool.switches.dtype == torch.uint8
    assert torch.equal(pool.switches, zfaccel.max_pool2d_switches(x, 2)[1])


def test_patch_replaces_every_max_pool_in_place():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Sequential(nn.Conv2d(8, 8, 3), nn.MaxPool2d(2, padding=1)),
    )
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    assert patch(model) is model
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 2 and all(isinstance(p, MaxPool2d) for p in pools)
    assert pools[0].ceil_mode and pools[1].padding == 1
    assert torch.equal(model(x), expected)


def test_patch_refuses_pools_that_return_indices():
    model = nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(2, return_indices=True))
    with pytest.raises(ValueError, match="returns indices"):
        patch(model)
    assert type(model[0]) is nn.MaxPool2d  # nothing changed


def test_opcheck():
    """torch.library's own consistency checks: fake shapes/strides, autograd registration, schema."""
    x = torch.randn(2, 3, 9, 9, requires_grad=True)
    torch.library.opcheck(
        torch.ops.zfaccel.max_pool2d_switches.default, (x, [3, 3], [2, 2], [1, 1], [1, 1], True, True, "auto")
    )
    xc = torch.randn(2, 3, 9, 9).to(memory_format=torch.channels_last).requires_grad_()
    torch.library.opcheck(
        torch.ops.zfaccel.max_pool2d_switches.default, (xc, [3, 3], [2, 2], [0, 0], [1, 1], False, False, "auto")
    )
    y, s = zfaccel.max_pool2d_switches(x.detach(), 3, 2)
    yy = y.clone().requires_grad_()
    torch.library.opcheck(
        torch.ops.zfaccel.max_unpool2d_switches.default, (yy, s, [9, 9], [3, 3], [2, 2], [0, 0], [1, 1], True, "auto")
    )
