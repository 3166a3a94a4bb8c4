"""Models and the brute-force oracle for the occlusion tests.

Random default-initialised CNNs give near-constant outputs (every logit within
1e-4 of the others on ZFNet), which would make "equal to full re-inference"
vacuous; ``energise`` rescales the weights so that occluding a patch moves the
probabilities by up to tenths.
"""

from __future__ import annotations

import math

import torch
from test_deconvnet import AlexNetShaped, vgg_shaped
from torch import nn

from zfaccel.models import small_zfnet
from zfaccel.nn import MaxPool2d


def energise(model: nn.Module, seed: int, gain: float = 1.0, size: int | None = None) -> nn.Module:
    """Weights ~ N(0, gain^2 * 2 / fan_in) (He), biases small; eval mode. With ``size``, the last
    Linear is rescaled so that logits of random ``size`` px images spread with std 2 (softmax
    neither flat nor saturated)."""
    g = torch.Generator().manual_seed(seed)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                fan_in = m.weight[0].numel()
                scale = gain * math.sqrt(2.0 / fan_in)
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * scale)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.05)
        model.eval()
        if size is not None and linears:
            spread = model(torch.randn(4, 3, size, size, generator=g)).std()
            linears[-1].weight.mul_(2.0 / spread)
            linears[-1].bias.mul_(2.0 / spread)
    return model


def zfnet_thin(width: int = 1) -> nn.Module:
    """ZFNet's geometry (paper Fig. 3: 7x7/2 pad 1, ceil-mode 3x3/2 pools, LRN, 5x5/2, three 3x3,
    pool5 floor mode) with 8..24 channels instead of 96..384, for 224 px inputs."""
    c = [8 * width, 16 * width, 24 * width, 24 * width, 16 * width]
    lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)  # noqa: E731
    model = nn.Module()
    model.features = nn.Sequential(
        nn.Conv2d(3, c[0], 7, stride=2, padding=1), nn.ReLU(inplace=True), MaxPool2d(3, 2, ceil_mode=True), lrn(),
        nn.Conv2d(c[0], c[1], 5, stride=2), nn.ReLU(inplace=True), MaxPool2d(3, 2, ceil_mode=True), lrn(),
        nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
    )  # fmt: skip
    model.avgpool = nn.AdaptiveAvgPool2d((6, 6))
    model.classifier = nn.Sequential(nn.Linear(c[4] * 36, 64), nn.ReLU(inplace=True), nn.Dropout(), nn.Linear(64, 20))
    model.forward = lambda x: model.classifier(torch.flatten(model.avgpool(model.features(x)), 1))
    return model


def sequential_model() -> nn.Module:
    """nn.Sequential(features Sequential, head...), with BatchNorm (eval) and dilation in the features."""
    bn = nn.BatchNorm2d(12)
    bn.running_mean.uniform_(-0.3, 0.3)
    bn.running_var.uniform_(0.5, 2.0)
    features = nn.Sequential(
        nn.Conv2d(3, 12, 5, stride=2, padding=2), bn, nn.ReLU(), nn.MaxPool2d(2, 2, padding=1),
        nn.Conv2d(12, 16, 3, padding=2, dilation=2), nn.ReLU(), nn.Dropout2d(0.2), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(16, 16, (3, 1), padding=(1, 0)), nn.ReLU(),
    )  # fmt: skip
    return nn.Sequential(features, nn.AdaptiveAvgPool2d((3, 3)), nn.Flatten(), nn.Linear(144, 7))


class Residual(nn.Module):
    """A model split_model refuses (a residual addition): the incremental path must fall back."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = torch.relu(self.stem(x))
        y = torch.relu(y + self.block(y))
        return self.fc(y.mean((2, 3)))


# name: (builder, image size)
MODELS = {
    "zfnet": (zfnet_thin, 224),
    "alexnet": (AlexNetShaped, 127),
    "vgg": (vgg_shaped, 32),
    "small": (small_zfnet, 64),
    "sequential": (sequential_model, 48),
}


def build(name: str, seed: int = 0) -> tuple[nn.Module, int]:
    builder, size = MODELS[name]
    torch.manual_seed(seed)
    return energise(builder(), seed, size=size), size


def occluded(images: torch.Tensor, baseline: torch.Tensor, positions: torch.Tensor, window) -> torch.Tensor:
    """The oracle's occluded inputs: a clone per position, the window's cells overwritten (a Python loop)."""
    out = images[positions[:, 0]].clone()
    for p, (b, r, c) in enumerate(positions.tolist()):
        out[p, :, r : r + window[0], c : c + window[1]] = baseline[b, :, r : r + window[0], c : c + window[1]]
    return out


def reference(model: nn.Module, images, baseline, positions, window, tap: int | None = None, features=None):
    """Brute force: the model's own forward on each occluded image -> (logits (P, K), feature
    totals (P, C) of features[tap] or None)."""
    x = occluded(images, baseline, positions, window)
    with torch.no_grad():
        logits = model(x)
        feats = None
        if tap is not None:
            f = x
            for m in list(features)[: tap + 1]:
                f = m(f)
            feats = f.sum((2, 3))
    return logits, feats
