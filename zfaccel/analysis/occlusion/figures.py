"""Pictures of an occlusion sweep in the style of the paper's Fig. 7, drawn with matplotlib.

Each map lives on the occluder grid: cell (i, j) is the occluder whose top-left
corner is at (i * stride[0], j * stride[1]). Drawn over the image, a pixel shows
the cell whose occluder is centred nearest to it, so a map reads as "what happens
when the grey square sits here" (the paper's convention). Figures, each returned
as a matplotlib Figure and written as a PNG when given a path:

- (b) ``render_feature``: total activation of the strongest feature map, heat map;
- (d) ``render_prob``: probability of the target class (the true class when the
  sweep was told the labels), heat map;
- (e) ``render_label``: most probable class, categorical map with a legend;
- ``render_panel``: the image (a) and the maps side by side, with (c) the strongest
  feature map projected into the image (and its strongest activations over a data
  set) when given the model (and a top-activation table).

Every figure's title says what the model made of the clean image (``verdict``:
"true: circle, predicted: diamond (0.90)" where they differ). Heat maps use
matplotlib's jet (the paper's colours) over the grey image, with a colour bar.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from torch import nn

from zfaccel.analysis.deconvnet import DeconvNet
from zfaccel.analysis.figures import top_tiles
from zfaccel.analysis.labels import class_name
from zfaccel.analysis.labels import verdict as labels_verdict
from zfaccel.analysis.mosaic import grid, resize, stretch
from zfaccel.analysis.plotting import DPI, FONT, SMALL, TITLE, line_px, new_figure, save, text_px, wrap
from zfaccel.analysis.topk import TopActivations
from zfaccel.models.preprocessing import Preprocessing
from zfaccel.reference.crops import inside

HEAT = colormaps["jet"]
# 20 distinguishable colours for class labels: tab20's strong ten (tab10) first, then its light ten
PALETTE = np.array(colormaps["tab20"].colors)[[*range(0, 20, 2), *range(1, 20, 2)]]
OTHER = (0.35, 0.35, 0.35)  # classes beyond the legend
OVERLAY = 0.7  # weight of a map over the (grey) image: the image's edges stay visible
LEGEND_CHARS = 24  # class names are cut to this in the legend (ImageNet's run to 80 characters)
BAR_INCHES = 1.0  # a colour bar (0.15 in) with its gap, ticks and label
MARGIN, BETWEEN = 0.12, 0.3  # inches around the figure and between panels


def cell_of_pixel(size: int, cells: int, window: int, stride: int) -> np.ndarray:
    """(size,) int64: for each pixel along one axis, the grid cell whose occluder centre
    (k * stride + (window - 1) / 2) is nearest (ties to the lower cell)."""
    centre_offset = (window - 1) / 2
    k = np.ceil((np.arange(size) - centre_offset) / stride - 0.5)
    return np.clip(k, 0, cells - 1).astype(np.int64)


def grid_to_pixels(cells: np.ndarray, image_size: tuple[int, int], window, stride) -> np.ndarray:
    """(nH, nW, ...) map on the occluder grid -> (H, W, ...): each pixel takes the cell centred nearest to it."""
    rows = cell_of_pixel(image_size[0], cells.shape[0], window[0], stride[0])
    cols = cell_of_pixel(image_size[1], cells.shape[1], window[1], stride[1])
    return cells[rows[:, None], cols[None, :]]


def verdict(result, index: int, class_names=None) -> str:
    """What the model made of the unoccluded image ``index`` (see zfaccel.analysis.labels.verdict)."""
    true = None if result.true_label is None else int(result.true_label[index])
    prob = None if result.clean_label_prob is None else float(result.clean_label_prob[index])
    return labels_verdict(true, int(result.clean_label[index]), prob, class_names)


def _picture(result, index: int, preprocessing: Preprocessing | None) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: the image as the model saw it (normalisation undone), or min-max scaled."""
    x = result.images[index].float()
    if preprocessing is not None:
        x = preprocessing.denormalize(x)
    else:
        lo, hi = x.min(), x.max()
        x = (x - lo) / (hi - lo).clamp_min(1e-12)
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def _over_image(colours: np.ndarray, picture: np.ndarray) -> np.ndarray:
    """(H, W, 3) colours in [0, 1] blended over the image's grey: OVERLAY of the colour."""
    return OVERLAY * colours + (1 - OVERLAY) * picture.mean(-1, keepdims=True)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _norm(values: np.ndarray) -> Normalize:
    """The map's own range; a flat map gets a small range around its value (it shows the middle colour)."""
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    if not hi > lo:
        pad = max(abs(lo) * 1e-3, 1e-6)
        lo, hi = lo - pad, hi + pad
    return Normalize(lo, hi)


@dataclass
class _Block:
    """A panel of the figure: the width in inches of its picture and of what goes right of it (a colour
    bar, a legend), and how to draw it into the picture's axes."""

    width: float
    extra: float
    draw: object  # (fig, ax) -> None


def _image_axes(ax: Axes, rgb: np.ndarray, title: str) -> None:
    ax.imshow(rgb, interpolation="nearest")
    ax.set_title(title, fontsize=FONT, loc="left")
    ax.set_axis_off()


def _heat_block(values: np.ndarray, picture: np.ndarray, result, inches: float, title: str, bar: str) -> _Block:
    """The map over the image as a heat map, with a colour bar labelled ``bar``."""
    norm = _norm(values)
    pixels = grid_to_pixels(values, picture.shape[:2], result.window, result.stride)
    rgb = _over_image(HEAT(norm(pixels))[..., :3], picture)

    def draw(fig: Figure, ax: Axes) -> None:
        _image_axes(ax, rgb, title)
        box, width = ax.get_position(), fig.get_figwidth()
        cax = fig.add_axes((box.x1 + 0.1 / width, box.y0, 0.15 / width, box.height))
        colour_bar = fig.colorbar(ScalarMappable(norm, HEAT), cax=cax)
        colour_bar.set_label(bar, fontsize=SMALL)
        colour_bar.ax.tick_params(labelsize=SMALL)

    return _Block(inches, BAR_INCHES, draw)


def _feature_block(result, index: int, picture: np.ndarray, inches: float) -> _Block:
    channel = int(result.feature_channel[index])
    clean = _fmt(float(result.clean_feature[index]))
    title = f"(b) {result.feature_layer} map {channel}: total activation\nclean image: {clean}"
    return _heat_block(result.feature[index].numpy(), picture, result, inches, title,
                       f"total activation of map {channel}")  # fmt: skip


def _prob_block(result, index: int, picture: np.ndarray, inches: float, class_names) -> _Block:
    target = int(result.target[index])
    name = class_name(target, class_names)
    true = None if result.true_label is None else int(result.true_label[index])
    what = "the true class" if true == target else "the target" if true is None else \
        f"the target (true: {class_name(true, class_names)})"  # fmt: skip
    title = f"(d) p({name}), {what}\nclean image: {_fmt(float(result.clean_prob[index]))}"
    return _heat_block(result.prob[index].numpy(), picture, result, inches, title, f"p({name})")


def _label_block(result, index: int, picture: np.ndarray, inches: float, class_names, max_legend: int) -> _Block:
    """The most probable class per occluder position over the image, with a legend of class names."""
    labels = result.label[index].numpy()
    classes, counts = np.unique(labels, return_counts=True)
    order = classes[np.argsort(-counts, kind="stable")]
    shown = order[:max_legend]
    colours = np.empty((*labels.shape, 3))
    colours[:] = OTHER
    for k, cls in enumerate(shown):
        colours[labels == cls] = PALETTE[k % len(PALETTE)]
    rgb = _over_image(grid_to_pixels(colours, picture.shape[:2], result.window, result.stride), picture)
    target, clean = int(result.target[index]), int(result.clean_label[index])
    true = None if result.true_label is None else int(result.true_label[index])
    entries = []
    for k, cls in enumerate(shown):
        mark = " (true)" if int(cls) == true else " (target)" if true is None and int(cls) == target else ""
        entries.append((PALETTE[k % len(PALETTE)], class_name(int(cls), class_names, LEGEND_CHARS) + mark))
    if len(order) > len(shown):
        entries.append((OTHER, f"{len(order) - len(shown)} other classes"))
    legend_inches = (max(text_px(text, FONT) for _, text in entries) + 40) / DPI

    def draw(fig: Figure, ax: Axes) -> None:
        _image_axes(ax, rgb, f"(e) most probable class\nclean image: {class_name(clean, class_names)}")
        handles = [Patch(facecolor=colour, edgecolor="none", label=text) for colour, text in entries]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, fontsize=FONT,
                  frameon=False, handlelength=1.2)  # fmt: skip

    return _Block(inches, legend_inches, draw)


def _as_deconvnet(model) -> DeconvNet | None:
    if model is None or isinstance(model, DeconvNet):
        return model
    if isinstance(model, nn.Module):
        return DeconvNet(model)
    raise TypeError(f"model must be a torch.nn.Module, a zfaccel.DeconvNet or None, got {type(model).__name__}")


def _own_projection(result, index: int, dn: DeconvNet, picture: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The strongest activation of map ``feature_channel`` of ``feature_layer`` on the clean image,
    projected to pixels: (H, W, 3) in [0, 1], the stretched projection pasted over the dimmed grey image,
    and the receptive field's box (top, left, height, width) in pixels."""
    channel = int(result.feature_channel[index])
    param = next(dn.model.parameters(), None)
    x = result.images[index : index + 1]
    if param is not None:
        x = x.to(device=param.device, dtype=param.dtype)
    trace, _ = dn.trace(x, result.feature_layer)
    act = trace.output[0, channel]
    row, col = divmod(int(act.flatten().argmax()), act.shape[1])
    crops = dn.project_targets(x, result.feature_layer, torch.tensor([[0, channel, row, col]]), trace=trace)
    signal, offset = crops.signal.float().cpu(), crops.offset.cpu()
    size, (h, w) = tuple(signal.shape[-2:]), picture.shape[:2]
    tile = stretch(signal, inside(offset, size, (h, w)))[0].permute(1, 2, 0).numpy()
    out = 0.35 + 0.3 * picture.mean(-1, keepdims=True).repeat(3, -1)  # the image, dimmed: the projection stands out
    top, left = offset[0].tolist()
    r0, c0, r1, c1 = max(top, 0), max(left, 0), min(top + size[0], h), min(left + size[1], w)
    out[r0:r1, c0:c1] = tile[r0 - top : r1 - top, c0 - left : c1 - left]
    return out, (top, left, size[0], size[1])


def _top_row(top, result, channel: int, dn: DeconvNet | None) -> int | None:
    """The row of ``top`` holding map ``channel`` (None when the table does not hold it); ValueError when
    the table is of another layer than the result's feature layer, or was not projected."""
    if not isinstance(top, TopActivations):
        raise TypeError(f"top must be a zfaccel.TopActivations or None, got {type(top).__name__}")
    if top.projections is None:
        raise ValueError("top holds no projections: mine it with top_activations(..., project=True)")
    layer = result.feature_layer
    same = (dn.plain.resolve(layer) == top.layer_index) if dn is not None else \
        (layer == top.layer if isinstance(layer, str) else int(layer) == top.layer_index)  # fmt: skip
    if not same:
        raise ValueError(f"top holds the top activations of {top.layer}; the occlusion maps' feature layer is "
                         f"{layer!r}: mine the table on that layer")  # fmt: skip
    rows = (top.channels == channel).nonzero()
    return int(rows[0, 0]) if len(rows) else None


def _projection_blocks(result, index: int, picture: np.ndarray, size: int, dn, top) -> list[_Block]:
    """Panel (c): the feature map's strongest activation on this image projected into it (with ``dn``),
    and its strongest activations over a data set, projected (with ``top``); none without either."""
    channel = int(result.feature_channel[index])
    inches = size / DPI * picture.shape[1] / picture.shape[0]
    blocks = []
    row = None if top is None else _top_row(top, result, channel, dn)
    if dn is not None:
        rgb, (t, left, h, w) = _own_projection(result, index, dn, picture)

        def draw_own(fig: Figure, ax: Axes) -> None:
            _image_axes(ax, rgb, f"(c) map {channel}'s strongest\nactivation, projected")
            ax.add_patch(Rectangle((left - 0.5, t - 0.5), w, h, fill=False, edgecolor="black", linewidth=1.5))

        blocks.append(_Block(inches, 0, draw_own))
    if top is not None and row is not None:
        proj, _ = top_tiles(top, row)
        side = int(np.ceil(np.sqrt(top.k)))
        tile = max(8, (size - 2 * (side - 1)) // side)  # the mosaic as high as the maps
        mosaic = grid(resize(proj, tile), side)
        title = f"(c) its top {top.k} in {top.images_seen:,}\nimages, projected"

        def draw_top(fig: Figure, ax: Axes) -> None:
            _image_axes(ax, mosaic, title)

        blocks.append(_Block(size / DPI * mosaic.shape[1] / mosaic.shape[0], 0, draw_top))
    elif top is not None:
        note = f"(c) map {channel} is not\namong the {len(top.channels)} maps\nof the top table"

        def draw_note(fig: Figure, ax: Axes) -> None:
            ax.set_axis_off()
            ax.text(0, 1, note, fontsize=FONT, va="top", transform=ax.transAxes)

        blocks.append(_Block(text_px("among the 1000 maps", FONT) / DPI, 0, draw_note))
    return blocks


def _check_index(result, index: int) -> None:
    b = result.prob.shape[0]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < b:
        raise ValueError(f"index must be an image number 0..{b - 1}, got {index!r}")


def _render(result, path, index: int, maps: tuple[str, ...], class_names, preprocessing, size: int, name: str | None,
            max_legend: int = 12, model=None, top=None) -> Figure:  # fmt: skip
    """The image beside the named maps ("feature", "projection", "prob", "label") of image ``index``."""
    _check_index(result, index)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {type(name).__name__}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int of at least 16 (pixels), got {size!r}")
    picture = _picture(result, index, preprocessing)
    h, w = picture.shape[:2]
    inches = size / DPI * w / h  # a panel's width: ``size`` pixels high
    n_h, n_w = result.grid_shape
    make = {
        "feature": lambda: [_feature_block(result, index, picture, inches)],
        "projection": lambda: _projection_blocks(result, index, picture, size, _as_deconvnet(model), top),
        "prob": lambda: [_prob_block(result, index, picture, inches, class_names)],
        "label": lambda: [_label_block(result, index, picture, inches, class_names, max_legend)],
    }
    blocks = [_Block(inches, 0, lambda fig, ax: _image_axes(ax, picture, f"(a) the image\n{w}x{h} pixels"))]
    for kind in maps:
        blocks += make[kind]()
    # Placed by hand, in inches: every map the same size, whatever its colour bar or legend.
    width = 2 * MARGIN + sum(b.width + b.extra for b in blocks) + BETWEEN * (len(blocks) - 1)
    approx = result.approximation
    how = "" if approx is None else f"; maps approximated (tau {approx.tau:g}, drill-down {approx.drill_down})"
    title = wrap(f"{name or f'Image {index}'}: {verdict(result, index, class_names)}\n"
                 f"occluder {result.window[0]}x{result.window[1]}, stride {result.stride[0]}x{result.stride[1]}: "
                 f"{n_h}x{n_w} positions{how}", (width - 2 * MARGIN) * DPI, TITLE)  # fmt: skip
    title_h = (title.count("\n") + 1) * line_px(TITLE) / DPI
    panel_h = size / DPI
    height = 2 * MARGIN + title_h + 2 * line_px(FONT) / DPI + 0.1 + panel_h
    fig = new_figure(width, height, layout=None)
    fig.text(MARGIN / width, 1 - MARGIN / height, title, fontsize=TITLE, ha="left", va="top")
    x = MARGIN
    for block in blocks:
        ax = fig.add_axes((x / width, MARGIN / height, block.width / width, panel_h / height))
        block.draw(fig, ax)
        x += block.width + block.extra + BETWEEN
    return save(fig, path)


def render_feature(
    result,
    path: str | os.PathLike | None = None,
    index: int = 0,
    *,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    size: int = 224,
    name: str | None = None,
) -> Figure:
    """Fig. 7b for image ``index``: the image beside the total activation of ``result.feature_channel``
    as a heat map over it. ``preprocessing`` undoes the normalisation (default: min-max per image);
    panels are ``size`` pixels high; ``class_names`` name the classes in the title, which calls the image
    ``name`` (default "Image <index>"). Returns the Figure; writes it as a PNG to ``path`` when given."""
    return _render(result, path, index, ("feature",), class_names, preprocessing, size, name)


def render_prob(
    result,
    path: str | os.PathLike | None = None,
    index: int = 0,
    *,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    size: int = 224,
    name: str | None = None,
) -> Figure:
    """Fig. 7d for image ``index``: the probability of the target class (the true class when the sweep
    was given labels) as a heat map over the image. Returns the Figure; writes a PNG to ``path`` when given."""
    return _render(result, path, index, ("prob",), class_names, preprocessing, size, name)


def render_label(
    result,
    path: str | os.PathLike | None = None,
    index: int = 0,
    *,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    size: int = 224,
    max_legend: int = 12,
    name: str | None = None,
) -> Figure:
    """Fig. 7e for image ``index``: the most probable class per occluder position, one colour per class
    (the ``max_legend`` most frequent named in the legend, the rest grey). Returns the Figure; writes a
    PNG to ``path`` when given."""
    return _render(result, path, index, ("label",), class_names, preprocessing, size, name, max_legend)


def render_panel(
    result,
    path: str | os.PathLike | None = None,
    index: int = 0,
    *,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    size: int = 224,
    max_legend: int = 12,
    name: str | None = None,
    model: nn.Module | DeconvNet | None = None,
    top: TopActivations | None = None,
) -> Figure:
    """The paper's Fig. 7 for image ``index`` in one figure: (a) the image, (b) the feature map's total
    activation, (c) that map's strongest activation on the clean image projected into it (a black square
    marks its receptive field), beside the map's top projections over a data set, (d) the target's
    probability, (e) the most probable class.

    Panel (c) needs ``model`` (the swept model, or a DeconvNet of it; its device is used): without it the
    projection is left out and the other panels close up. ``top`` (a projected ``zfaccel.TopActivations``
    of the result's feature layer, e.g. ``top_activations(model, data, "conv5")``) adds the map's top
    projections; a table without that map says so instead. Returns the Figure; writes a PNG to ``path``
    when given."""
    maps = ("feature", "projection", "prob", "label") if model is not None or top is not None else \
        ("feature", "prob", "label")  # fmt: skip
    return _render(result, path, index, maps, class_names, preprocessing, size, name, max_legend, model, top)
