"""The paper's Fig. 5 drawn with matplotlib: one row per transform, four kinds of column.

Column 1 shows a few images at a few amounts (as the model saw them, normalisation undone); then one
column per layer with the distance of each image's features to its original's against the amount,
one line per image; the last column the probability of each image's true class. An image's line has
the same colour in every panel and frames its row of examples.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch
from matplotlib.figure import Figure

from zfaccel.analysis.labels import class_name
from zfaccel.analysis.mosaic import GAP, grid
from zfaccel.analysis.plotting import new_figure, save
from zfaccel.analysis.transforms import UNITS, transform_images

if TYPE_CHECKING:
    from zfaccel.analysis.invariance import InvarianceResult

TITLES = {"translate": "vertical translation", "scale": "scale", "rotate": "rotation"}
EXAMPLE_IMAGES, EXAMPLE_AMOUNTS = 5, 5  # the paper shows 5 images
STYLES = ("-", "--", ":", "-.")  # lines 0-9 solid, 10-19 dashed, ...: 10 colours per style


def _line_style(b: int) -> dict:
    return {"color": f"C{b % 10}", "linestyle": STYLES[(b // 10) % len(STYLES)]}


def _example_columns(amounts: torch.Tensor, transform: str) -> torch.Tensor:
    """Indices of up to EXAMPLE_AMOUNTS amounts nearest to evenly spread targets over the range (both ends
    included); for a rotation over a full turn, over its first half (0, 45, .., 180 degrees): 360 would
    repeat 0, and 45 degrees is where a square becomes a diamond."""
    lo, hi = float(amounts.min()), float(amounts.max())
    if transform == "rotate" and hi - lo >= 360:
        hi = lo + (hi - lo) / 2
    targets = torch.linspace(lo, hi, min(EXAMPLE_AMOUNTS, len(amounts)), dtype=torch.float64)
    return (amounts.view(1, -1) - targets.view(-1, 1)).abs().argmin(1).unique()


def _examples(ax, result: InvarianceResult) -> None:
    """A mosaic: rows = the first images, columns = a few amounts; a bar in each image's line colour on the left."""
    n = min(EXAMPLE_IMAGES, len(result.labels))
    cols = _example_columns(result.amounts, result.transform)
    rows = torch.arange(n).repeat_interleave(len(cols))
    moved = transform_images(result.images[:n].float()[rows], result.transform,
                             result.amounts[cols].repeat(n), result.padding)  # fmt: skip
    pictures = result.preprocessing.denormalize(moved)
    t = pictures.shape[-1]
    ax.imshow(grid(pictures, len(cols)), interpolation="nearest" if t < 128 else "antialiased")
    step = t + GAP
    bar = -0.06 * t  # the colour bar sits just left of the mosaic
    for r in range(n):
        ax.plot([bar, bar], [r * step, r * step + t - 1], linewidth=5, clip_on=False,
                solid_capstyle="butt", color=_line_style(r)["color"])  # fmt: skip
    ax.set_xlim(-0.5, len(cols) * step - GAP - 0.5)
    ax.set_ylim(n * step - GAP - 0.5, -0.5)
    ax.set_xticks([c * step + (t - 1) / 2 for c in range(len(cols))])
    ax.set_xticklabels([f"{v:g}" for v in result.amounts[cols].tolist()])
    ax.set_yticks([r * step + (t - 1) / 2 for r in range(n)])
    ax.set_yticklabels([str(r) for r in range(n)])
    ax.tick_params(axis="y", length=0, pad=9)
    ax.tick_params(axis="x", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel(UNITS[result.transform])
    ax.set_ylabel("image")
    ax.set_title(f"{TITLES[result.transform]}: examples", fontweight="bold")


def _lines(ax, amounts: np.ndarray, values: torch.Tensor, transform: str) -> None:
    marker = "o" if len(amounts) <= 40 else None
    for b in range(values.shape[0]):
        ax.plot(amounts, values[b].numpy(), marker=marker, markersize=3, linewidth=1.3, **_line_style(b))
    ax.set_xlabel(UNITS[transform])
    if transform == "rotate" and amounts.min() >= 0 and amounts.max() <= 360:
        ax.set_xticks([v for v in (0, 90, 180, 270, 360) if amounts.min() <= v <= amounts.max()])
    ax.grid(True, alpha=0.3)


def render_invariance(results: list[InvarianceResult], path: str | os.PathLike | None = None) -> Figure:
    """Fig. 5: a row per result (the paper: translate, scale, rotate), columns: examples, the distance at
    each layer, p(true class). Returns the Figure; also saves it as a PNG when ``path`` is given."""
    if not isinstance(results, list | tuple) or not results:
        raise ValueError("results must be a non-empty list of InvarianceResult")
    for i, r in enumerate(results):
        if not hasattr(r, "distances") or not hasattr(r, "transform"):
            raise TypeError(f"results[{i}] must be an InvarianceResult, got {type(r).__name__}")
    columns = 2 + max(len(r.layers) for r in results)
    fig = new_figure(3.2 + 3.3 * (columns - 1), 3.0 * len(results) + 0.7)
    axes = fig.subplots(len(results), columns, squeeze=False, gridspec_kw={"width_ratios": [1.0] * columns})
    for row, r in zip(axes, results, strict=True):
        amounts = r.amounts.numpy()
        _examples(row[0], r)
        for ax, layer in zip(row[1:-1], r.layers, strict=False):
            _lines(ax, amounts, r.distances[layer], r.transform)
            ax.set_title(f"{layer}: {'relative ' if r.relative else ''}distance to original")
            ax.set_ylabel("||f(x') - f(x)|| / ||f(x)||" if r.relative else "Euclidean distance")
            ax.set_ylim(bottom=0)
        for ax in row[1 + len(r.layers) : -1]:
            ax.set_visible(False)
        _lines(row[-1], amounts, r.prob, r.transform)
        row[-1].set_title("p(true class)")
        row[-1].set_ylabel("probability")
        row[-1].set_ylim(-0.03, 1.03)
    first = results[0]
    handles = axes[0][-1].get_lines()
    labels = [f"{b}: {class_name(int(c), first.class_names, 16)}" for b, c in enumerate(first.labels.tolist())]
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 8), title="image: true class",
               frameon=False)  # fmt: skip
    return save(fig, path)
