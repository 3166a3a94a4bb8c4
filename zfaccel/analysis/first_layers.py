"""Paper Fig. 6: two (or more) models' first layers side by side, with what the layer above sees.

Zeiler & Fergus compared AlexNet's first layer (11x11 filters, stride 4) with their own
(7x7, stride 2): filter grids, the second layer's projections, and the faults each shows
(dead filters, filters without structure, aliasing in the layer above). ``compare_first_layers``
measures the same on any models that take the same images: per model a FilterReport of its first
convolution (zfaccel.analysis.filters), the strongest activation of each of the first ``channels``
maps of the next convolution projected to pixels (the deconvnet) and cut to its receptive field,
and the accuracy on the given labelled images.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import TensorDataset

from zfaccel.analysis.filters import FilterReport, conv_layer, filters
from zfaccel.analysis.topk import top_activations
from zfaccel.checks import check_classes, check_int
from zfaccel.models.plain import split_model


@dataclass
class FirstLayers:
    """What ``compare_first_layers`` measured, one entry per model in the order given.

    names: the models' names; geometry: "5x5 / 2" (kernel / stride) of each first convolution;
    reports: FilterReport of each; accuracy: top-1 on the labelled images, or None without labels;
    tiles: per model (channels, 3, h, w) float32 in [0, 1], the next convolution's strongest activation
    per map projected and stretched to its own range (h, w: that layer's receptive field);
    next_layer: that convolution's name; images: how many images were looked at.
    """

    names: tuple[str, ...]
    geometry: tuple[str, ...]
    reports: tuple[FilterReport, ...]
    accuracy: tuple[float | None, ...]
    tiles: tuple[torch.Tensor, ...]
    next_layer: str
    images: int

    def counts(self, i: int) -> dict[str, float | int | None]:
        """Model i's numbers: filters, mean concentration, unstructured, dead, accuracy."""
        r = self.reports[i]
        return {
            "filters": len(r.norm),
            "mean_concentration": r.mean_concentration,
            "unstructured": int(r.unstructured.sum()),
            "dead": int(r.dead.sum()),
            "accuracy": self.accuracy[i],
        }

    def markdown(self) -> str:
        """One row per model: first layer, mean spectral concentration, unstructured and dead filters, accuracy."""
        lines = ["| model | first layer | mean concentration (white noise) | unstructured | dead | accuracy |",
                 "|---|---|---|---|---|---|"]  # fmt: skip
        for i, name in enumerate(self.names):
            c, r = self.counts(i), self.reports[i]
            acc = "-" if c["accuracy"] is None else f"{c['accuracy']:.1%}"
            lines.append(f"| {name} | {c['filters']} x {self.geometry[i]} | {c['mean_concentration']:.2f} "
                         f"({r.noise_concentration:.2f}) | {c['unstructured']} | {c['dead']} | {acc} |")  # fmt: skip
        return "\n".join(lines)

    def __repr__(self) -> str:
        parts = [f"{n}: {self.geometry[i]}, concentration {self.reports[i].mean_concentration:.2f}, "
                 f"{self.counts(i)['unstructured']} unstructured, {self.counts(i)['dead']} dead"
                 for i, n in enumerate(self.names)]  # fmt: skip
        return f"FirstLayers({'; '.join(parts)}; {self.images} images)"

    def render(self, path: str | os.PathLike | None = None):
        """The figure (see zfaccel.analysis.first_layers_figure); a PNG at ``path`` when given."""
        from zfaccel.analysis.first_layers_figure import render_first_layers

        return render_first_layers(self, path)


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    hits = 0
    with torch.inference_mode():
        for x, y in zip(images.split(batch_size), labels.split(batch_size), strict=True):
            hits += int((model(x).argmax(1) == y.to(x.device)).sum())
    return hits / len(images)


def compare_first_layers(
    models: Mapping[str, nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor | Sequence[int] | None = None,
    *,
    layer: str = "conv1",
    next_layer: str = "conv2",
    channels: int = 16,
    batch_size: int = 64,
) -> FirstLayers:
    """Fig. 6 for ``models`` (name -> a plain CNN; at least one, each in eval mode as given).

    images: (N, C, H, W) float, normalised as every model expects (they must agree); labels: (N,)
    class indices for the accuracy column, or None. ``layer`` is measured with ``filters`` (dead
    filters on these images); the first ``channels`` maps of ``next_layer`` get their strongest
    activation over the images projected. Runs without autograd.
    """
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty mapping of names to models")
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4 or not len(images):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor (N, C, H, W) with N >= 1, got {got}")
    if labels is not None:
        labels = check_classes(labels, len(images), "labels")
    check_int(channels, "channels")
    from zfaccel.analysis.figures import top_tiles  # with matplotlib, which loads only when needed

    names, geometry, reports, accuracy, tiles = [], [], [], [], []
    for name, model in models.items():
        plain = split_model(model)
        conv = plain.features[conv_layer(plain, layer)[0]]
        maps = plain.features[conv_layer(plain, next_layer)[0]].out_channels
        names.append(str(name))
        geometry.append(f"{conv.kernel_size[0]}x{conv.kernel_size[1]} / {conv.stride[0]}")
        reports.append(filters(model, layer, data=images, batch_size=batch_size))
        accuracy.append(None if labels is None else _accuracy(model, images, labels, batch_size))
        top = top_activations(model, TensorDataset(images), next_layer, k=1, channels=range(min(channels, maps)),
                              batch_size=batch_size, show_progress=False)  # fmt: skip
        tiles.append(torch.cat([top_tiles(top, r)[0] for r in range(len(top.channels))]))
    return FirstLayers(tuple(names), tuple(geometry), tuple(reports), tuple(accuracy), tuple(tiles), next_layer,
                       len(images))  # fmt: skip
