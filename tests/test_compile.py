"""torch.compile of a CNN built with zfaccel.nn: one graph (fullgraph=True), eager's numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zfaccel
from zfaccel.nn import MaxPool2d

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")),
]


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        MaxPool2d(3, 2, ceil_mode=True, relu=True),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        MaxPool2d(2),
        nn.Flatten(),
        nn.LazyLinear(5),
    )


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_model_matches_eager(device):
    torch.manual_seed(0)
    model = small_cnn().to(device)
    x = torch.randn(4, 3, 21, 21, device=device)
    model(x)  # materialise the lazy layer
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)  # raises on any graph break
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_eager, out_compiled = model(xa), compiled(xb)
    torch.testing.assert_close(out_compiled, out_eager)
    out_eager.square().sum().backward()
    out_compiled.square().sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad)


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_functional_ops(device):
    """The functional API (checks included) traces into one graph too."""

    def deconv_step(x):
        y, s = zfaccel.max_pool2d_switches(x, 3, 2, relu=True)
        return zfaccel.max_unpool2d_switches(y * 2, s, x.shape[-2:], 3, 2, relu=True)

    x = torch.randn(2, 4, 13, 13, device=device)
    torch._dynamo.reset()
    compiled = torch.compile(deconv_step, fullgraph=True)
    torch.testing.assert_close(compiled(x), deconv_step(x))
