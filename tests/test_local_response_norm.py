"""zfaccel.nn.local_response_norm equals F.local_response_norm bit for bit (it replaces only the window sum)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zfaccel.nn.local_response_norm import local_response_norm


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.contiguous(), b.contiguous()
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.view(torch.uint8), b.view(torch.uint8))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("shape", [(1, 96, 55, 55), (2, 256, 13, 13), (3, 7, 5, 9), (2, 1, 4, 4), (1, 3, 1, 1)])
def test_equals_torch_bit_for_bit(shape, size, dtype, gen):
    """Fresh random maps at scales from 1e-20 (squares below float32's normal range) to 1e20 (squares
    overflow to inf), signed and rectified, with NaN and inf sprinkled in."""
    for scale in (1e-20, 1e-3, 1.0, 1e3, 1e20):
        x = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(dtype)
        for rectified in (False, True):
            y = torch.relu(x) if rectified else x.clone()
            flat = y.view(-1)
            picks = torch.randint(0, flat.numel(), (3,), generator=gen)
            flat[picks] = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=dtype)
            for alpha, beta, k in ((1e-4, 0.75, 2.0), (1e-3, 0.5, 1.0)):
                expected = F.local_response_norm(y, size, alpha, beta, k)
                assert same_bits(local_response_norm(y, size, alpha, beta, k), expected), (scale, rectified)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.contiguous(memory_format=torch.channels_last),
        lambda x: x.transpose(2, 3),
        lambda x: x.requires_grad_(),
        lambda x: x[0],  # (C, H, W)
    ],
    ids=["channels_last", "transposed", "requires_grad", "3d"],
)
def test_other_inputs_are_torch_own(make, gen):
    """Where the fast sum is not checked, torch computes it: equal results, gradients included. (torch has
    no CPU LocalResponseNorm for float16 and bfloat16.)"""
    x = make(torch.randn(2, 9, 6, 7, generator=gen))
    ours, theirs = local_response_norm(x, 5, 1e-4, 0.75, 2.0), F.local_response_norm(x, 5, 1e-4, 0.75, 2.0)
    assert same_bits(ours.detach(), theirs.detach())
    assert ours.stride() == theirs.stride()
    if x.requires_grad:
        (g1,) = torch.autograd.grad(ours.sum(), x)
        (g2,) = torch.autograd.grad(theirs.sum(), x)
        assert same_bits(g1, g2)
