"""Plain input gradients of single activations (Simonyan et al.'s saliency), the deconvnet's comparison.

The forward runs the features in inference mode (BatchNorm's running statistics, no dropout) with
torch's own max-pool, whatever the model's training flag, and autograd differentiates it as it is:
ReLUs pass the gradient where their input was positive (the deconvnet rectifies the signal instead).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zfaccel.models.plain import PlainCNN


def forward(plain: PlainCNN, x: torch.Tensor, stop: int) -> torch.Tensor:
    """features[0..stop] on x (B, C, H, W), differentiable, in inference mode."""
    for m in plain.features[: stop + 1]:
        if isinstance(m, nn.Conv2d):
            x = F.conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
        elif isinstance(m, nn.ReLU):
            x = F.relu(x)
        elif isinstance(m, nn.MaxPool2d):
            x = F.max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
        elif isinstance(m, nn.BatchNorm2d):
            x = F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)
        elif isinstance(m, nn.LocalResponseNorm):
            x = F.local_response_norm(x, m.size, m.alpha, m.beta, m.k)
        # Dropout: the identity at inference.
    return x


def input_gradients(plain: PlainCNN, images: torch.Tensor, stop: int, targets: torch.Tensor) -> torch.Tensor:
    """d activation / d image for one activation per image.

    images: (B, C, H, W) float; targets: int64 (B, 3) (channel, row, col) in the output of
    features[stop], one per image, in image order. Returns (B, C, H, W), images' dtype, detached.
    Images do not interact in inference mode, so one backward of the sum gives every image's gradient.
    """
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = forward(plain, x, stop)
        rows = torch.arange(len(x), device=out.device)
        picked = out[rows, targets[:, 0], targets[:, 1], targets[:, 2]]
        (grad,) = torch.autograd.grad(picked.sum(), x)
    return grad.detach()
