"""BatchNorm folded into the convolution before it: the filter the network effectively applies.

In inference, ``BatchNorm2d`` right after a ``Conv2d`` is a per-output-channel affine map,
``y = (conv(x, W) + b - mean) * gamma / sqrt(var + eps) + beta``, so the convolution and the
normalisation together filter with ``W * gamma / sqrt(var + eps)`` (one factor per output
channel). The deconvnet filters with the transposed version of that filter, and the filter
statistics measure it (a norm changes with the factor; a filter's shape does not).
"""

from __future__ import annotations

import torch
from torch import nn


def batch_norm_after(features: nn.Sequential, index: int) -> nn.BatchNorm2d | None:
    """The BatchNorm2d directly after ``features[index]`` (a Conv2d), or None."""
    following = features[index + 1] if index + 1 < len(features) else None
    return following if isinstance(following, nn.BatchNorm2d) else None


def batch_norm_scale(bn: nn.BatchNorm2d) -> torch.Tensor:
    """gamma / sqrt(running_var + eps): (C,) in the running statistics' dtype (gamma 1 without affine).

    ValueError when the BatchNorm keeps no running statistics (it then normalises with each batch's
    own, which no fixed filter reproduces)."""
    if bn.running_var is None:
        raise ValueError(f"{bn!r} keeps no running statistics (track_running_stats=False): it cannot be folded")
    scale = torch.rsqrt(bn.running_var + bn.eps)
    return scale * bn.weight if bn.weight is not None else scale


def folded_weight(features: nn.Sequential, index: int) -> torch.Tensor:
    """The weight (F, Cin / groups, kh, kw) of the Conv2d ``features[index]``, multiplied per output
    channel by the scale of a BatchNorm2d directly after it (the weight itself when none follows).
    Detached: a picture of the weights, not a graph."""
    conv = features[index]
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"features[{index}] is {type(conv).__name__}, not a Conv2d")
    weight = conv.weight.detach()
    bn = batch_norm_after(features, index)
    if bn is None:
        return weight
    scale = batch_norm_scale(bn).detach().to(device=weight.device, dtype=weight.dtype)
    return weight * scale.view(-1, 1, 1, 1)
