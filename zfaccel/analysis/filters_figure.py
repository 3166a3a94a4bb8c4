"""The picture of a FilterReport: the filter grid (paper Fig. 6 a/b/c style) beside a histogram of
the spectral concentration, flagged filters framed in colour."""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from zfaccel.analysis.mosaic import stretch
from zfaccel.analysis.plotting import new_figure, save
from zfaccel.checks import check_int

# Frame colours: the flags read at a glance on the grid.
PLAIN = (0.82, 0.82, 0.82)
DEAD = (0.85, 0.1, 0.1)
UNSTRUCTURED = (1.0, 0.6, 0.0)
BOTH = (0.7, 0.0, 0.8)
# In mosaic pixels: a filter tap is drawn as about TAP x TAP pixels, so a 2-pixel frame stays thin
# beside a 5x5 filter (40 px) and an 11x11 one (44 px).
TAP, FRAME, GAP = 40, 2, 6


def mosaic(tiles: torch.Tensor, frames: np.ndarray, columns: int, scale: int) -> np.ndarray:
    """tiles (F, 3, kh, kw) in [0, 1] and frame colours (F, 3) -> an RGB float array: each tile enlarged
    ``scale`` times (nearest), inside a FRAME-pixel frame, GAP white pixels between cells."""
    f, _, kh, kw = tiles.shape
    th, tw = kh * scale, kw * scale
    rows = math.ceil(f / columns)
    ch, cw = th + 2 * FRAME + GAP, tw + 2 * FRAME + GAP
    out = np.ones((rows * ch + GAP, columns * cw + GAP, 3), np.float32)
    pixels = tiles.repeat_interleave(scale, 2).repeat_interleave(scale, 3).permute(0, 2, 3, 1).numpy()
    for i in range(f):
        r, c = divmod(i, columns)
        y, x = GAP + r * ch, GAP + c * cw
        out[y : y + th + 2 * FRAME, x : x + tw + 2 * FRAME] = frames[i]
        out[y + FRAME : y + FRAME + th, x + FRAME : x + FRAME + tw] = pixels[i]
    return out


def filter_mosaic(report, columns: int | None = None) -> tuple[np.ndarray, str]:
    """``report``'s filters as one RGB float array, each contrast-stretched to its own range (RGB when
    they take 3 input channels, else the mean over input channels in grey) and framed by flag (dead,
    unstructured, both); ``columns`` per row (default: about square). Returns (array, "RGB" or "grey")."""
    f, cin = report.weights.shape[:2]
    if columns is None:
        columns = math.ceil(math.sqrt(f))
    check_int(columns, "columns")
    if cin == 3:
        tiles, shown = stretch(report.weights), "RGB"
    else:
        tiles, shown = stretch(report.weights.mean(1, keepdim=True)).expand(-1, 3, -1, -1), "grey"
    dead = report.dead.numpy() if report.dead is not None else np.zeros(f, bool)
    frames = np.array([BOTH if d and u else DEAD if d else UNSTRUCTURED if u else PLAIN
                       for d, u in zip(dead, report.unstructured.numpy(), strict=True)], np.float32)  # fmt: skip
    scale = max(1, round(TAP / max(report.weights.shape[-2:])))
    return mosaic(tiles, frames, columns, scale), shown


def flag_legend(report) -> list[Patch]:
    """Legend entries for the frame colours ``filter_mosaic`` draws."""
    legend = [Patch(color=UNSTRUCTURED, label=f"unstructured (concentration < {report.threshold:g})")]
    if report.dead is not None:
        legend = [Patch(color=DEAD, label=f"dead on all {report.images_seen} images"), *legend,
                  Patch(color=BOTH, label="both")]  # fmt: skip
    return legend


def render_filters(report, path: str | os.PathLike | None = None, *, columns: int | None = None) -> Figure:
    """Draw ``report`` (a FilterReport): its filters, each contrast-stretched to its own range (RGB when
    they take 3 input channels, else the mean over input channels in grey), framed by flag, and the
    histogram of their concentration with the threshold and the white-noise level marked.
    Saves a PNG at ``path`` when given; returns the Figure."""
    f, cin = report.weights.shape[:2]
    canvas, shown = filter_mosaic(report, columns)
    dead = report.dead.numpy() if report.dead is not None else np.zeros(f, bool)
    unstructured = report.unstructured.numpy()

    fig = new_figure(12, 6)
    grid_ax, hist_ax = fig.subplots(1, 2, width_ratios=[1.35, 1])
    grid_ax.imshow(canvas, interpolation="nearest")
    grid_ax.set_axis_off()
    what = "RGB" if shown == "RGB" else f"mean over the {cin} input channels, grey"
    grid_ax.set_title(f"{f} filters {report.size}, each stretched to its own range ({what})", fontsize=10)
    n_dead = "dead filters not measured (no data)" if report.dead is None else f"{int(dead.sum())} dead"
    legend = flag_legend(report)
    grid_ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(legend),
                   fontsize=9, frameon=False, handlelength=1.2)  # fmt: skip

    values = report.concentration[~report.concentration.isnan()].numpy()
    hist_ax.hist(values, bins=np.linspace(0, 1, 21), color=(0.35, 0.5, 0.7), edgecolor="white")
    hist_ax.axvline(report.threshold, color=UNSTRUCTURED, linewidth=2, linestyle="--",
                    label=f"threshold {report.threshold:g}")  # fmt: skip
    hist_ax.axvline(report.noise_concentration, color="0.3", linewidth=1.5, linestyle=":",
                    label=f"white noise {report.size}: {report.noise_concentration:.2f}")  # fmt: skip
    if len(values):
        hist_ax.axvline(values.mean(), color="black", linewidth=1.5, label=f"mean {values.mean():.2f}")
    hist_ax.set_xlim(0, 1)
    hist_ax.set_xlabel("share of energy in the 4 strongest DFT coefficients", fontsize=10)
    hist_ax.set_ylabel("filters", fontsize=10)
    hist_ax.tick_params(labelsize=9)
    flat = int(report.concentration.isnan().sum())
    hist_ax.set_title("Spectral concentration" + (f" ({flat} flat filters left out)" if flat else ""), fontsize=10)
    hist_ax.legend(fontsize=9, loc="upper left")
    folded = ", BatchNorm folded in" if report.folded else ""
    fig.suptitle(f"{report.layer}{folded}: {n_dead}, {int(unstructured.sum())} unstructured of {f} filters",
                 fontsize=12)  # fmt: skip
    return save(fig, path)
