"""The picture of a FirstLayers comparison (paper Fig. 6 b-e): per model a column, its first layer's
filters on top (framed by flag, as render_filters draws them) and the next layer's strongest
activations projected to pixels below."""

from __future__ import annotations

import math
import os

from matplotlib.figure import Figure

from zfaccel.analysis.filters_figure import filter_mosaic, flag_legend
from zfaccel.analysis.mosaic import grid, resize
from zfaccel.analysis.plotting import new_figure, save

TILE = 64  # projection tiles, pixels: receptive fields of 15-40 px shown enlarged, all the same size


def render_first_layers(result, path: str | os.PathLike | None = None) -> Figure:
    """Draw ``result`` (a FirstLayers); write a PNG to ``path`` when given; return the Figure."""
    n = len(result.names)
    fig = new_figure(5.6 * n, 9)
    axes = fig.subplots(2, n, squeeze=False, height_ratios=[1, 1])
    for i, name in enumerate(result.names):
        report, counts = result.reports[i], result.counts(i)
        canvas, _ = filter_mosaic(report, columns=8)
        top = axes[0, i]
        top.imshow(canvas, interpolation="nearest")
        top.set_axis_off()
        acc = "" if counts["accuracy"] is None else f", accuracy {counts['accuracy']:.1%}"
        top.set_title(f"{name}: {report.layer} {counts['filters']} x {result.geometry[i]}{acc}\n"
                      f"mean concentration {counts['mean_concentration']:.2f} (white noise "
                      f"{report.noise_concentration:.2f}), {counts['unstructured']} unstructured, "
                      f"{counts['dead']} dead", fontsize=10)  # fmt: skip
        tiles = result.tiles[i]
        columns = math.ceil(math.sqrt(len(tiles)))
        bottom = axes[1, i]
        bottom.imshow(grid(resize(tiles, TILE), columns, gap=4), interpolation="nearest")
        bottom.set_axis_off()
        field = f"{tiles.shape[-2]}x{tiles.shape[-1]} px"
        bottom.set_title(f"{result.next_layer}: strongest activation of maps 0-{len(tiles) - 1} projected\n"
                         f"(receptive field {field}, each stretched to its own range)", fontsize=10)  # fmt: skip
    fig.legend(handles=flag_legend(result.reports[0]), loc="outside lower center", ncol=3, fontsize=9,
               frameon=False)  # fmt: skip
    fig.suptitle(f"First layers compared (Fig. 6) on {result.images} test images", fontsize=12)
    return save(fig, path)
