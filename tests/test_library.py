"""The torch.library ops beyond the switch ops (spatial_argmax, occlusion_batch, the crop ops):
torch's own consistency checks (opcheck), fake outputs equal to the real ones in shape, dtype and
strides, and gradients (gradcheck in float64)."""

from __future__ import annotations

import pytest
import torch
from support import interpreted, target_params
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._pytree import tree_map

import zfaccel

OPS = torch.ops.zfaccel


def _grad(t: torch.Tensor, grad: bool) -> torch.Tensor:
    return t.detach().clone().requires_grad_() if grad else t


def argmax_cases(device, backend, gen, grad=False):
    x = torch.randn(2, 3, 5, 7, generator=gen, dtype=torch.float64).to(device)
    return [
        (_grad(x, grad), backend),
        (_grad(x.contiguous(memory_format=torch.channels_last), grad), backend),
        (_grad(x.transpose(2, 3), grad), backend),  # (2, 3, 7, 5) read through its strides
        (_grad(x[:, :, 1:4, ::2], grad), backend),
    ]


def occlusion_cases(device, backend, gen, grad=False):
    images = torch.randn(2, 3, 9, 8, generator=gen, dtype=torch.float64).to(device)
    full = torch.randn(2, 3, 9, 8, generator=gen, dtype=torch.float64).to(device)
    grey = torch.randn(1, 3, 1, 8, generator=gen, dtype=torch.float64).to(device)
    positions = torch.tensor([[0, 2, 3], [1, -1, 5], [1, 6, 0]], device=device)
    origins = torch.tensor([[0, 0], [-2, 3], [4, -1]], device=device)
    return [
        (_grad(images, grad), _grad(full, grad), positions, [3, 4], origins, [5, 6], backend),
        # the sweep engine's baseline: a grey row expanded to the images' shape (stride 0)
        (_grad(images, grad), _grad(grey, grad).expand(2, 3, 9, 8), positions, [2, 2], origins * 0, [9, 8], backend),
    ]


def conv_cases(device, backend, gen, grad=False):
    x = torch.randn(3, 4, 4, 5, generator=gen, dtype=torch.float64).to(device)
    weight = torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64).to(device)
    grouped = torch.randn(4, 1, 2, 3, generator=gen, dtype=torch.float64).to(device)
    offset = torch.tensor([[-2, -1], [0, 0], [5, 6]], device=device)
    return [
        (_grad(x, grad), _grad(weight, grad), offset, [2, 2], [1, 1], 1, [11, 12], True, None, backend),
        (_grad(x, grad), _grad(grouped, grad), offset, [1, 2], [2, 1], 2, [9, 9], False, True, backend),
    ]


def unpool_cases(device, backend, gen, grad=False):
    images = torch.randn(2, 3, 13, 12, generator=gen, dtype=torch.float64).to(device)
    _, switches = zfaccel.max_pool2d_switches(images, 3, 2, 1, backend="torch")  # (2, 3, 7, 6)
    x = torch.randn(3, 3, 4, 3, generator=gen, dtype=torch.float64).to(device)
    image_index = torch.tensor([1, 0, 1], device=device)
    offset = torch.tensor([[-1, -2], [0, 0], [4, 4]], device=device)
    return [
        (_grad(x, grad), switches, image_index, offset, [3, 3], [2, 2], [1, 1], [1, 1], [13, 12], relu, backend)
        for relu in (False, True)
    ]


CASES = {
    "spatial_argmax": argmax_cases,
    "occlusion_batch": occlusion_cases,
    "conv_transpose_crops": conv_cases,
    "unpool_crops": unpool_cases,
}


def params():
    """(op, target) for every op and (device, backend), skipped where the backends' tables say so."""
    out = []
    for op in CASES:
        for target in target_params(op):
            out.append(pytest.param(op, target.values[0], marks=target.marks, id=f"{op}-{target.id}"))
    return out


@pytest.mark.parametrize("op, target", params())
def test_opcheck(op, target, gen):
    """Schema, autograd registration, fake kernel (shapes, dtypes and strides against the real
    outputs) and AOT dispatch with static and dynamic shapes, gradients included."""
    utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    if not interpreted(target):  # AOT runs the op a dozen times: too slow in Triton's interpreter
        utils += ("test_aot_dispatch_dynamic",)
    for args in CASES[op](*target, gen, grad=True):
        torch.library.opcheck(getattr(OPS, op).default, args, test_utils=utils)


@pytest.mark.parametrize("op, target", params())
def test_fake_outputs_are_the_real_ones(op, target, gen):
    """The fake kernel's outputs have the real outputs' shapes, dtypes and strides (FakeTensorMode)."""
    for args in CASES[op](*target, gen):
        real = getattr(OPS, op)(*args)
        with FakeTensorMode(allow_non_fake_inputs=False) as mode:
            fake = getattr(OPS, op)(
                *tree_map(lambda a: mode.from_tensor(a) if isinstance(a, torch.Tensor) else a, args)
            )
        for r, f in zip(*(o if isinstance(o, tuple) else (o,) for o in (real, fake)), strict=True):
            assert (f.shape, f.dtype, f.stride()) == (r.shape, r.dtype, r.stride()), op


@pytest.mark.parametrize("op", list(CASES))
def test_gradcheck_float64(op, gen):
    """Numerical against analytical gradients (the torch backend; the formulas are backend-free)."""
    for args in CASES[op]("cpu", "torch", gen, grad=True):
        # gradcheck perturbs each element of its inputs alone: an expanded (stride 0) baseline becomes a copy
        inputs = [
            a.detach().contiguous().requires_grad_() for a in args if isinstance(a, torch.Tensor) and a.requires_grad
        ]

        def fn(*diff, args=args):
            it = iter(diff)
            call = [next(it) if isinstance(a, torch.Tensor) and a.requires_grad else a for a in args]
            out = getattr(OPS, op)(*call)
            return out[0] if isinstance(out, tuple) else out

        assert torch.autograd.gradcheck(fn, inputs), op


def test_integer_outputs_are_not_differentiable():
    x = torch.randn(1, 2, 3, 3, requires_grad=True)
    values, indices = zfaccel.spatial_argmax(x)
    assert values.requires_grad and not indices.requires_grad
    values.sum().backward()
    assert x.grad.flatten(2).sum(2).eq(1).all() and x.grad.flatten(2).argmax(2).equal(indices)
