"""Filter statistics of one convolution (paper Fig. 6's architecture diagnostics).

Zeiler & Fergus read their first-layer filters for two faults: filters that
never fire (dead) and filters without structure (noise-like, not yet
trained or never used). ``filters`` puts numbers on both, per filter:

- ``norm``: the L2 norm of the filter the network applies (BatchNorm folded in
  by default: W * gamma / sqrt(running_var + eps), see zfaccel.models.folding).
- ``concentration``: the share of a filter's energy in its 4 strongest DFT
  coefficients. Per input channel the channel's mean is removed (a flat colour
  offset is no structure), |FFT2|^2 taken over the k x k taps, and the 4 largest
  of its k * k coefficients summed; the shares are combined over the input channels
  weighted by each channel's energy, i.e. sum_c top4_c / sum_c energy_c, so a channel
  the filter hardly uses counts little. A real filter's coefficients come in
  conjugate pairs, so "4 coefficients" are two spatial frequencies: one oriented
  grating, a Gabor, scores high. Calibration (energy-weighted, 3 channels):

      white noise   3x3 0.79   5x5 0.43   7x7 0.27   11x11 0.14   (expected, Monte-Carlo)
      Gabor (sigma 0.3 k, wavelength 0.4 k, 8 orientations x 4 phases): 0.86 at 5x5, 7x7, 11x11
      a single DFT mode (a grating on the DFT grid): 1.0

  A filter with no energy once each channel's mean is gone (constant per channel, or
  zero) has no spatial structure to measure: its concentration is NaN, and it is
  neither unstructured nor counted in the mean.
- ``unstructured``: concentration below ``threshold`` (default 0.6: above 5x5
  noise, 0.43, and below the Gabor's 0.86). At 3x3 white noise already scores 0.79,
  so the flag cannot tell noise from structure there; ``filters`` warns.
- ``dead`` (with ``data``): a filter whose output map (after the ReLU that follows the
  convolution, when one does) peaks below ``dead_below`` (1 %) of the layer's largest
  activation on every image.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import Dataset

from zfaccel.analysis.deconvnet import DeconvNet
from zfaccel.analysis.topk_data import batches, random_access
from zfaccel.checks import check_int
from zfaccel.models.folding import batch_norm_after, folded_weight
from zfaccel.models.plain import PlainCNN, split_model

if TYPE_CHECKING:  # matplotlib loads only to draw (import zfaccel stays light)
    from matplotlib.figure import Figure

TOP = 4  # coefficients counted: two conjugate pairs, two spatial frequencies
THRESHOLD = 0.6  # between white noise at 5x5 (0.43) and a Gabor (0.86)
DEAD_BELOW = 0.01  # of the layer's largest activation on the image
FLAT = 1e-10  # AC energy below this share of the total counts as none (float64 rounding of a constant)


@dataclass(repr=False)  # the generated repr would print every weight
class FilterReport:
    """Filter statistics of one convolution.

    weights: (F, Cin, kh, kw) float32, the filters measured (``folded``: a BatchNorm was folded in);
    norm: (F,) float32 L2 norms; concentration: (F,) float32 in (0, 1], NaN for a filter with no
    structure (constant per channel); unstructured: (F,) bool, concentration < ``threshold``;
    dead: (F,) bool, or None without data; images_seen: images the dead test looked at;
    noise_concentration: what white-noise filters of this size score on average.
    """

    layer: str
    weights: torch.Tensor
    norm: torch.Tensor
    concentration: torch.Tensor
    unstructured: torch.Tensor
    dead: torch.Tensor | None
    threshold: float
    folded: bool
    noise_concentration: float
    images_seen: int = 0

    @property
    def mean_concentration(self) -> float:
        """The mean over filters with structure (NaN ones left out); NaN when none has any."""
        c = self.concentration[~self.concentration.isnan()]
        return float(c.mean()) if len(c) else math.nan

    @property
    def size(self) -> str:
        return f"{self.weights.shape[-2]}x{self.weights.shape[-1]}"

    def __repr__(self) -> str:
        dead = "dead not measured" if self.dead is None else f"{int(self.dead.sum())} dead"
        return (f"FilterReport({self.layer}: {len(self.weights)} filters {self.size}, mean concentration "
                f"{self.mean_concentration:.2f}, {dead}, {int(self.unstructured.sum())} unstructured)")  # fmt: skip

    def render(self, path: str | Path | None = None, *, columns: int | None = None) -> Figure:
        """The filter grid beside a histogram of the concentration (see filters_figure.render_filters)."""
        from zfaccel.analysis.filters_figure import render_filters

        return render_filters(self, path, columns=columns)


def spectral_concentration(weights: torch.Tensor, top: int = TOP) -> torch.Tensor:
    """Share of each filter's energy in its ``top`` strongest DFT coefficients, per input channel with
    the channel's mean removed, channels weighted by their energy (see the module docstring).

    weights: (F, Cin, kh, kw) float. Returns (F,) float32; NaN where no energy is left after
    removing the means. Computed in float64.
    """
    if not isinstance(weights, torch.Tensor) or not weights.is_floating_point() or weights.dim() != 4:
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"weights must be a float (F, Cin, kh, kw) tensor, got {shape}")
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= weights.shape[-2] * weights.shape[-1]:
        raise ValueError(f"top must be an int in 1..{weights.shape[-2] * weights.shape[-1]}, got {top!r}")
    w = weights.detach().double()
    total = w.square().sum((1, 2, 3))
    w = w - w.mean((-2, -1), keepdim=True)
    power = torch.fft.fft2(w).abs().square().flatten(2)  # (F, Cin, kh * kw)
    energy = power.sum((1, 2))
    strongest = power.topk(top, dim=-1).values.sum((1, 2))
    flat = energy <= FLAT * power.shape[-1] * total  # Parseval: energy = kh * kw * spatial energy
    share = strongest / torch.where(flat, 1.0, energy)
    return torch.where(flat, math.nan, share).float()


@lru_cache(maxsize=32)
def noise_concentration(height: int, width: int, channels: int = 3) -> float:
    """The mean concentration of white-noise filters (channels, height, width): a fixed-seed Monte-Carlo
    over 50,000 channels (standard error below 0.001 for 3 channels of 5x5)."""
    samples = max(64, 50_000 // channels)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(samples, channels, height, width, generator=gen, dtype=torch.float64)
    return float(spectral_concentration(noise).double().mean())


def conv_layer(plain: PlainCNN, layer: str | int) -> tuple[int, int, str]:
    """(index of the Conv2d, index of its output as the layer name means it, name "convK") for
    ``layer``: a name "convK" or the index of a Conv2d in ``features``. ValueError otherwise."""
    index = plain.resolve(layer)
    convs = [i for i, m in enumerate(plain.features) if isinstance(m, nn.Conv2d)]
    if isinstance(layer, str):
        if not layer.startswith("conv"):
            raise ValueError(f"layer {layer!r} is not a convolution; give one of "
                             f"{', '.join(n for n in plain.names if n.startswith('conv'))}")  # fmt: skip
        conv = max(i for i in convs if i <= index)
    else:
        if index not in convs:
            raise ValueError(f"layer={layer} is features[{layer}], a {type(plain.features[index]).__name__}, "
                             f"not a Conv2d (those are at {convs})")  # fmt: skip
        conv = index
    name = f"conv{convs.index(conv) + 1}"
    return conv, plain.names[name], name


def _check_batch(images: object, in_channels: int) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        what = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise TypeError(f"data must hold float image tensors, got {what}")
    if images.dim() != 4 or images.shape[1] != in_channels or images.numel() == 0:
        raise ValueError(f"data must be images (N, {in_channels}, H, W) for the model's first convolution, "
                         f"got a batch of shape {tuple(images.shape)}")  # fmt: skip
    return images


def peak_activations(model: nn.Module, data, output: int, batch_size: int = 64) -> torch.Tensor:
    """Per image and channel, the largest value of ``model.features[output]``'s output map: (N, C) float32.

    data: a float tensor (N, C, H, W) of images normalised for the model, or a Dataset, DataLoader or
    iterable of batches (tensors or (images, ...) tuples). Runs in inference mode, without autograd.
    """
    dn = DeconvNet(model)
    first = dn.plain.first_conv
    if first is None:
        raise ValueError("model has no Conv2d in its features: it has no filters to measure")
    in_channels = first.in_channels
    if isinstance(data, torch.Tensor):
        parts: Iterable = _check_batch(data, in_channels).split(batch_size)
    elif isinstance(data, Dataset | Iterable) or random_access(data):
        # Read as top-k mining reads it (topk_data.batches): a Dataset item by item, a DataLoader or
        # generator batch by batch. A list or tuple holds batches, as a loader yields them.
        source = iter(data) if isinstance(data, list | tuple) else data
        parts = (b.images for b in batches(source, batch_size, 0, strict=True) if b.images is not None)
    else:
        raise TypeError(f"data must be an image tensor (N, C, H, W), a Dataset or an iterable of batches, "
                        f"got {type(data).__name__}")  # fmt: skip
    device = first.weight.device
    peaks = []
    for images in parts:
        images = _check_batch(images, in_channels)
        if images.device != device:
            raise ValueError(f"data is on {images.device} but the model on {device}")
        try:
            act = dn.trace(images, output, record=False)[0].output
        except RuntimeError as err:  # e.g. images smaller than a kernel
            raise ValueError(f"data images of {tuple(images.shape[-2:])} pixels cannot run through the model "
                             f"up to features[{output}]: {err}") from err  # fmt: skip
        peaks.append(act.flatten(2).amax(2).float().cpu())
    if not peaks:
        raise ValueError("data holds no images")
    return torch.cat(peaks)


def dead_filters(peaks: torch.Tensor, below: float = DEAD_BELOW) -> torch.Tensor:
    """(C,) bool: channels whose peak is at most ``below`` times the largest peak of the same image,
    on every image. peaks: (N, C) float, as :func:`peak_activations` gives."""
    layer_max = peaks.amax(1, keepdim=True)
    return (peaks <= below * layer_max).all(0)


def filters(
    model: nn.Module,
    layer: str | int = "conv1",
    data=None,
    *,
    fold_bn: bool = True,
    threshold: float = THRESHOLD,
    dead_below: float = DEAD_BELOW,
    batch_size: int = 64,
) -> FilterReport:
    """Statistics of the filters of one convolution (see the module docstring).

    Args:
        model: a plain CNN (ZFNet, AlexNet, VGG, the demo model; see zfaccel.models.split_model).
        layer: "convK" or the index of a Conv2d in ``model.features``.
        data: images to look for dead filters with: a float tensor (N, C, H, W) normalised for the
            model, or a Dataset / DataLoader / iterable of such batches (or of (images, ...) tuples).
            None: ``dead`` is None.
        fold_bn: measure the filter with a BatchNorm2d that directly follows folded in (the norm changes;
            the concentration, a share per filter, does not).
        threshold: concentration below which a filter is flagged unstructured, in (0, 1).
        dead_below: share of an image's largest activation in the layer below which a filter counts as
            silent on that image, in [0, 1).
        batch_size: images per forward pass over ``data``.
    """
    plain = split_model(model)
    if not isinstance(fold_bn, bool):
        raise TypeError(f"fold_bn must be a bool, got {fold_bn!r}")
    for name, value, ok in (("threshold", threshold, lambda v: 0 < v < 1), ("dead_below", dead_below,
                            lambda v: 0 <= v < 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int | float) or not ok(value):
            raise ValueError(f"{name} must be a number in {'(0, 1)' if name == 'threshold' else '[0, 1)'}, "
                             f"got {value!r}")  # fmt: skip
    check_int(batch_size, "batch_size")
    conv, output, name = conv_layer(plain, layer)
    weight = folded_weight(plain.features, conv) if fold_bn else plain.features[conv].weight.detach()
    weights = weight.float().cpu()
    concentration = spectral_concentration(weights)
    noise = noise_concentration(weights.shape[-2], weights.shape[-1], weights.shape[1])
    if noise >= threshold:
        warnings.warn(f"{name}'s {weights.shape[-2]}x{weights.shape[-1]} filters: white noise already has a "
                      f"concentration of {noise:.2f} >= threshold {threshold}, so 'unstructured' cannot tell "
                      f"noise from structure at this size", UserWarning, stacklevel=2)  # fmt: skip
    dead, seen = None, 0
    if data is not None:
        peaks = peak_activations(model, data, output, batch_size)
        dead, seen = dead_filters(peaks, dead_below), len(peaks)
    return FilterReport(
        layer=name,
        weights=weights,
        norm=weights.double().flatten(1).norm(dim=1).float(),
        concentration=concentration,
        unstructured=concentration < threshold,  # NaN compares False: a flat filter is not noise
        dead=dead,
        threshold=float(threshold),
        folded=fold_bn and batch_norm_after(plain.features, conv) is not None,
        noise_concentration=noise,
        images_seen=seen,
    )
