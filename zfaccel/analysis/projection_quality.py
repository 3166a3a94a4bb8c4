"""How much of a projection lies on the object: a number for what the paper's projections show.

For each image and layer, the strongest activation of the layer (the maximum over channels and
positions, first in (channel, row, col) order) is projected to pixels, by the deconvnet or by plain
input gradients (saliency). Its mass is sum over colour channels of |projection| per pixel; the
score is the share of that mass on the object's mask dilated by ``dilate`` pixels (a square
structuring element: every pixel within ``dilate`` rows and columns of the object, as a
(2 dilate + 1)-wide max-pool computes), so the anti-aliased edge and a pixel or two around it,
where edge detectors respond, count as on the object. A projection spread evenly over the image
would score the dilated mask's share of the image: ``mask_share`` in the result, the chance level.
The shapes data's masks come from zfaccel.demo.shapes.object_masks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zfaccel.analysis.deconvnet import DeconvNet
from zfaccel.analysis.saliency import input_gradients
from zfaccel.checks import check_images, check_int

METHODS = ("deconvnet", "saliency")
CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


@dataclass(repr=False)
class ProjectionQuality:
    """share: layer -> mean over images of the on-object share of the projection's mass (images whose
    projection is all zero left out); per_image: layer -> (N,) float64, NaN where the projection is
    all zero; mask_share: the mean share of pixels inside the dilated masks (the chance level)."""

    method: str
    dilate: int
    share: dict[str, float]
    per_image: dict[str, torch.Tensor]
    mask_share: float

    def __repr__(self) -> str:
        shares = ", ".join(f"{k} {v:.2f}" for k, v in self.share.items())
        return f"ProjectionQuality({self.method}, dilate {self.dilate}: {shares}; chance {self.mask_share:.2f})"


def dilate_masks(masks: torch.Tensor, pixels: int) -> torch.Tensor:
    """(N, H, W) bool -> (N, H, W) bool: True within ``pixels`` rows and columns of a True pixel."""
    if pixels == 0:
        return masks.clone()
    k = 2 * pixels + 1
    return F.max_pool2d(masks[:, None].float(), k, stride=1, padding=pixels)[:, 0] > 0


def share_on_mask(projections: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """projections (N, C, H, W) float, masks (N, H, W) bool -> (N,) float64: the share of
    sum_c |projection| that lies on the mask; NaN where the projection is all zero."""
    mass = projections.detach().double().abs().sum(1)
    total = mass.sum((1, 2))
    on = (mass * masks).sum((1, 2))
    return torch.where(total > 0, on / torch.where(total > 0, total, 1.0), math.nan)


def strongest_targets(activations: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> int64 (N, 4) rows (image, channel, row, col): each image's largest activation,
    the first in (channel, row, col) order among equals."""
    n, _, h, w = activations.shape
    flat = activations.flatten(1).argmax(1)
    return torch.stack([torch.arange(n, device=flat.device), flat // (h * w), flat % (h * w) // w, flat % w], 1)


def _check(images, masks, layers, dilate, method) -> tuple[torch.Tensor, tuple[str, ...]]:
    images = check_images(images, None)
    if not isinstance(masks, torch.Tensor) or masks.dtype != torch.bool:
        what = masks.dtype if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise TypeError(f"masks must be a bool tensor (N, H, W), got {what}")
    want = (images.shape[0], *images.shape[-2:])
    if tuple(masks.shape) != want:
        raise ValueError(f"masks must be (N, H, W) = {want} to match images {tuple(images.shape)}, "
                         f"got {tuple(masks.shape)}")  # fmt: skip
    if masks.device != images.device:
        raise ValueError(f"masks are on {masks.device} but images on {images.device}")
    if isinstance(layers, str):
        layers = (layers,)
    if not isinstance(layers, Sequence) or not layers:
        raise ValueError(f"layers must be a non-empty sequence of layer names, got {layers!r}")
    check_int(dilate, "dilate", low=0)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return images, tuple(layers)


def projection_on_object(
    model: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    layers: Sequence[str | int] = CONV_LAYERS,
    dilate: int = 2,
    method: str = "deconvnet",
    *,
    fold_bn: bool = True,
    batch_size: int = 50,
) -> ProjectionQuality:
    """Per layer, the share of the strongest activation's projection that lies on the object.

    Args:
        model: a plain CNN (see zfaccel.models.split_model), its weights read only.
        images: (N, C, H, W) float, normalised for the model, on its device.
        masks: (N, H, W) bool, True on the object (e.g. zfaccel.demo.shapes.object_masks).
        layers: names ("conv1".."conv5", "pool5", ...) or feature indices.
        dilate: pixels the masks grow by before measuring (square structuring element).
        method: "deconvnet" (zfaccel's DeconvNet) or "saliency" (the input gradient of the activation).
        fold_bn: the DeconvNet's ``fold_bn`` (BatchNorm folded into the filter it follows).
        batch_size: images per forward / projection batch.
    """
    images, layers = _check(images, masks, layers, dilate, method)
    check_int(batch_size, "batch_size")
    dn = DeconvNet(model, fold_bn=fold_bn)
    stops = {layer: dn.plain.resolve(layer, "layers") for layer in layers}  # fail before any work
    grown = dilate_masks(masks, dilate)
    per_image: dict[str, list[torch.Tensor]] = {str(layer): [] for layer in layers}
    for lo in range(0, len(images), batch_size):
        part = images[lo : lo + batch_size]
        for layer, stop in stops.items():
            trace, _ = dn.trace(part, stop, record=method == "deconvnet")  # saliency needs no switches
            targets = strongest_targets(trace.output)
            if method == "deconvnet":
                proj = dn.project_targets(part, stop, targets, trace=trace).paste()
            else:
                proj = input_gradients(dn.plain, part, stop, targets[:, 1:])
            per_image[str(layer)].append(share_on_mask(proj, grown[lo : lo + batch_size]).cpu())
    values = {k: torch.cat(v) for k, v in per_image.items()}
    share = {k: float(v[~v.isnan()].mean()) if (~v.isnan()).any() else math.nan for k, v in values.items()}
    return ProjectionQuality(method, dilate, share, values, float(grown.double().mean()))
