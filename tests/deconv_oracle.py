"""The deconvnet rule through autograd: the oracle the DeconvNet is tested against.

Zeiler & Fergus's projection of an activation equals, on a network without
normalisation layers, the input gradient of that activation scaled by its
value, when every ReLU's backward is replaced by a ReLU of the incoming
gradient (what Captum's NeuronDeconvolution computes).
"""

from __future__ import annotations

import torch
from torch import nn


class DeconvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp_min(0)


def run(features: nn.Sequential, x: torch.Tensor, stop: int) -> torch.Tensor:
    for m in features[: stop + 1]:
        if isinstance(m, nn.ReLU):
            x = DeconvReLU.apply(x)
        elif isinstance(m, nn.Dropout | nn.Dropout2d):
            pass
        else:
            x = m(x)
    return x


def projection(features: nn.Sequential, images: torch.Tensor, stop: int, image: int, grad_out: torch.Tensor):
    """The input gradient (3, H, W) of <layer output of ``image``, grad_out>, grad_out: (C, h, w)."""
    x = images[image : image + 1].detach().clone().requires_grad_()
    out = run(features, x, stop)
    (grad,) = torch.autograd.grad(out[0], x, grad_outputs=grad_out)
    return grad[0]


def max_projection(features, images, stop, image, channel) -> torch.Tensor:
    """The paper's projection of the channel's strongest activation (first maximum)."""
    with torch.no_grad():
        act = run(features, images[image : image + 1], stop)[0, channel]
    pos = int(act.flatten().argmax())
    grad_out = torch.zeros_like(run(features, images[image : image + 1], stop)[0])
    grad_out[channel].view(-1)[pos] = act.flatten()[pos]
    return projection(features, images, stop, image, grad_out)


def map_projection(features, images, stop, image, channel) -> torch.Tensor:
    """The projection of the channel's whole map (every other channel zero)."""
    with torch.no_grad():
        out = run(features, images[image : image + 1], stop)[0]
    grad_out = torch.zeros_like(out)
    grad_out[channel] = out[channel]
    return projection(features, images, stop, image, grad_out)
