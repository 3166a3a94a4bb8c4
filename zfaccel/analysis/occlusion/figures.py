"""Pictures of an occlusion sweep in the style of the paper's Fig. 7, drawn with Pillow and numpy.

Each map lives on the occluder grid: cell (i, j) is the occluder whose top-left
corner is at (i * stride[0], j * stride[1]). Drawn over the image, a pixel shows
the cell whose occluder is centred nearest to it, so a map reads as "what happens
when the grey square sits here" (the paper's convention). Figures:

- (b) ``render_feature``: total activation of the strongest feature map, heat map;
- (d) ``render_prob``: probability of the target class, heat map;
- (e) ``render_label``: most probable class, categorical map with a legend;
- ``render_panel``: the image and the three maps side by side;
- ``save_npz``: the raw arrays (written atomically).

Heat maps use a built-in jet table (the paper's colours) and a colour bar labelled
with the map's extremes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zfaccel.analysis.figures import GAP, LABEL_HEIGHT, save_png
from zfaccel.analysis.labels import class_name
from zfaccel.analysis.labels import verdict as labels_verdict
from zfaccel.atomic import replace_atomically
from zfaccel.models.preprocessing import Preprocessing

# jet: dark blue -> blue -> cyan -> yellow -> red -> dark red, linear between these stops
_JET_STOPS = np.array([0.0, 0.125, 0.375, 0.625, 0.875, 1.0])
_JET_RGB = np.array([(0, 0, 0.5), (0, 0, 1), (0, 1, 1), (1, 1, 0), (1, 0, 0), (0.5, 0, 0)])
# 20 distinguishable colours (Tableau's tab20 order: strong first, light second) for class labels
PALETTE = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (188, 189, 34), (23, 190, 207), (127, 127, 127), (174, 199, 232), (255, 187, 120),
    (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (219, 219, 141),
    (158, 218, 229), (199, 199, 199),
], dtype=np.uint8)  # fmt: skip
OTHER = (90, 90, 90)  # classes beyond the legend
OVERLAY = 0.7  # weight of the map over the (grey) image: the image's edges stay visible
BAR_WIDTH, BAR_TEXT, MARGIN = 14, 52, 8  # 52 px: 10 characters of the default 10 px font
LEGEND_CHARS = 24  # class names are cut to this in the legend (ImageNet's run to 80 characters)


def jet(values: np.ndarray) -> np.ndarray:
    """values in [0, 1] (any shape) -> (..., 3) uint8 jet colours (values outside are clipped)."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0, 1)
    rgb = np.stack([np.interp(v, _JET_STOPS, _JET_RGB[:, k]) for k in range(3)], -1)
    return (rgb * 255).round().astype(np.uint8)


def cell_of_pixel(size: int, cells: int, window: int, stride: int) -> np.ndarray:
    """(size,) int64: for each pixel along one axis, the grid cell whose occluder centre
    (k * stride + (window - 1) / 2) is nearest (ties to the lower cell)."""
    centre_offset = (window - 1) / 2
    k = np.ceil((np.arange(size) - centre_offset) / stride - 0.5)
    return np.clip(k, 0, cells - 1).astype(np.int64)


def grid_to_pixels(grid: np.ndarray, image_size: tuple[int, int], window, stride) -> np.ndarray:
    """(nH, nW) map on the occluder grid -> (H, W): each pixel takes the cell centred nearest to it."""
    rows = cell_of_pixel(image_size[0], grid.shape[0], window[0], stride[0])
    cols = cell_of_pixel(image_size[1], grid.shape[1], window[1], stride[1])
    return grid[rows[:, None], cols[None, :]]


def _picture(result, index: int, preprocessing: Preprocessing | None) -> torch.Tensor:
    """(3, H, W) in [0, 1]: the image as the model saw it (normalisation undone), or min-max scaled."""
    x = result.images[index].float()
    if preprocessing is not None:
        return preprocessing.denormalize(x)
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo).clamp_min(1e-12)


def _to_size(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size * W / H, 3), nearest, so that map cells keep sharp edges."""
    h, w = rgb.shape[:2]
    out = (size, max(1, round(size * w / h)))
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
    return F.interpolate(t, size=out, mode="nearest")[0].permute(1, 2, 0).round().byte().numpy()


def _image_rgb(picture: torch.Tensor) -> np.ndarray:
    return (picture.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def _over_image(colours: np.ndarray, picture: torch.Tensor) -> np.ndarray:
    grey = _image_rgb(picture).astype(np.float32).mean(-1, keepdims=True)
    return (OVERLAY * colours + (1 - OVERLAY) * grey).round().astype(np.uint8)


class _Canvas:
    """A white canvas with text labels, into which blocks are pasted."""

    def __init__(self, height: int, width: int) -> None:
        self.pixels = np.full((height, width, 3), 255, np.uint8)
        self.labels: list[tuple[int, int, str]] = []

    def paste(self, block: np.ndarray, y: int, x: int) -> None:
        self.pixels[y : y + block.shape[0], x : x + block.shape[1]] = block

    def text(self, x: int, y: int, text: str) -> None:
        self.labels.append((x, y, text))

    def save(self, path: str | os.PathLike) -> Path:
        return save_png(self.pixels, self.labels, path)


def _fmt(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}g}"


def _extremes(lo: float, hi: float) -> tuple[str, str]:
    """The colour bar's end labels with the fewest digits (3 to 8) that tell them apart."""
    for digits in range(3, 9):
        if _fmt(lo, digits) != _fmt(hi, digits):
            break
    return _fmt(lo, digits), _fmt(hi, digits)


def _heat_block(values: np.ndarray, picture: torch.Tensor, result, size: int, title: str) -> _Canvas:
    """The heat map over the image, its colour bar (labelled with the extremes) and a title."""
    lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) / (hi - lo) if hi > lo else np.full_like(values, 0.5)
    pixels = grid_to_pixels(scaled, tuple(picture.shape[-2:]), result.window, result.stride)
    heat = _to_size(_over_image(jet(pixels), picture), size)
    h, w = heat.shape[:2]
    c = _Canvas(LABEL_HEIGHT * 2 + h, w + GAP * 2 + BAR_WIDTH + BAR_TEXT)
    c.paste(heat, LABEL_HEIGHT * 2, 0)
    bar = jet(np.linspace(1, 0, h))[:, None].repeat(BAR_WIDTH, 1)
    c.paste(bar, LABEL_HEIGHT * 2, w + GAP * 2)
    lo_text, hi_text = _extremes(lo, hi)
    c.text(w + GAP * 3 + BAR_WIDTH, LABEL_HEIGHT * 2, hi_text)
    c.text(w + GAP * 3 + BAR_WIDTH, LABEL_HEIGHT * 2 + h - LABEL_HEIGHT, lo_text)
    for i, line in enumerate(title.split("\n")[:2]):
        c.text(0, i * LABEL_HEIGHT, line)
    return c


def verdict(result, index: int, class_names=None) -> str:
    """What the model made of the unoccluded image ``index`` (see zfaccel.analysis.labels.verdict)."""
    true = None if result.true_label is None else int(result.true_label[index])
    prob = None if result.clean_label_prob is None else float(result.clean_label_prob[index])
    return labels_verdict(true, int(result.clean_label[index]), prob, class_names)


def _label_block(result, index: int, picture: torch.Tensor, size: int, class_names, max_legend: int) -> _Canvas:
    """The most probable class per occluder position over the image, with a legend of class names."""
    labels = result.label[index].numpy()
    classes, counts = np.unique(labels, return_counts=True)
    order = classes[np.argsort(-counts, kind="stable")]
    shown = order[:max_legend]
    colours = np.empty((*labels.shape, 3), np.uint8)
    colours[:] = OTHER
    for k, cls in enumerate(shown):
        colours[labels == cls] = PALETTE[k % len(PALETTE)]
    pixels = grid_to_pixels(colours, tuple(picture.shape[-2:]), result.window, result.stride)
    block = _to_size(_over_image(pixels.astype(np.float32), picture), size)
    h, w = block.shape[:2]
    rows = len(shown) + (len(order) > len(shown))
    legend_w = 6 * (LEGEND_CHARS + 12)  # about 5 px per character of the default font, plus " (target)"
    c = _Canvas(LABEL_HEIGHT * 2 + max(h, rows * LABEL_HEIGHT), w + GAP * 2 + legend_w)
    c.paste(block, LABEL_HEIGHT * 2, 0)
    target, clean = int(result.target[index]), int(result.clean_label[index])
    true = None if result.true_label is None else int(result.true_label[index])
    for k, cls in enumerate(shown):
        y = LABEL_HEIGHT * 2 + k * LABEL_HEIGHT
        c.paste(np.broadcast_to(PALETTE[k % len(PALETTE)], (LABEL_HEIGHT - 3, LABEL_HEIGHT - 3, 3)), y + 1, w + GAP * 2)
        mark = " (true)" if int(cls) == true else " (target)" if true is None and int(cls) == target else ""
        c.text(w + GAP * 3 + LABEL_HEIGHT, y, class_name(int(cls), class_names, LEGEND_CHARS) + mark)
    if len(order) > len(shown):
        y = LABEL_HEIGHT * 2 + len(shown) * LABEL_HEIGHT
        c.paste(np.broadcast_to(np.array(OTHER, np.uint8), (LABEL_HEIGHT - 3, LABEL_HEIGHT - 3, 3)), y + 1, w + GAP * 2)
        c.text(w + GAP * 3 + LABEL_HEIGHT, y, f"{len(order) - len(shown)} other classes")
    c.text(0, 0, "(e) most probable class")
    c.text(0, LABEL_HEIGHT, f"clean: {class_name(clean, class_names)}")
    return c


def _beside(blocks: list[_Canvas]) -> _Canvas:
    """Blocks left to right, tops aligned, MARGIN around and between them."""
    height = max(b.pixels.shape[0] for b in blocks) + 2 * MARGIN
    width = sum(b.pixels.shape[1] for b in blocks) + MARGIN * (len(blocks) + 1)
    out = _Canvas(height, width)
    x = MARGIN
    for b in blocks:
        out.paste(b.pixels, MARGIN, x)
        out.labels += [(x + lx, MARGIN + ly, t) for lx, ly, t in b.labels]
        x += b.pixels.shape[1] + MARGIN
    return out


def _image_block(picture: torch.Tensor, result, index: int, size: int, class_names) -> _Canvas:
    img = _to_size(_image_rgb(picture), size)
    c = _Canvas(LABEL_HEIGHT * 2 + img.shape[0], img.shape[1])
    c.paste(img, LABEL_HEIGHT * 2, 0)
    c.text(0, 0, f"(a) image {index}: {verdict(result, index, class_names)}")
    n_h, n_w = result.grid_shape
    c.text(0, LABEL_HEIGHT, f"occluder {result.window[0]}x{result.window[1]}, stride "
                            f"{result.stride[0]}x{result.stride[1]}, {n_h}x{n_w} positions")  # fmt: skip
    return c


def _feature_block(result, index: int, picture: torch.Tensor, size: int) -> _Canvas:
    title = (
        f"(b) {result.feature_layer} map {int(result.feature_channel[index])}: total activation\n"
        f"clean: {_fmt(float(result.clean_feature[index]))}"
    )
    return _heat_block(result.feature[index].numpy(), picture, result, size, title)


def _prob_block(result, index: int, picture: torch.Tensor, size: int, class_names) -> _Canvas:
    target = int(result.target[index])
    true = result.true_label is not None and int(result.true_label[index]) == target
    title = (f"(d) p({class_name(target, class_names)}){', the true class' if true else ''}\n"
             f"clean: {_fmt(float(result.clean_prob[index]))}")  # fmt: skip
    return _heat_block(result.prob[index].numpy(), picture, result, size, title)


def _check_index(result, index: int) -> None:
    b = result.prob.shape[0]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < b:
        raise ValueError(f"index must be an image number 0..{b - 1}, got {index!r}")


def _render(result, path, index: int, maps: tuple[str, ...], class_names, preprocessing, size: int, max_legend: int):
    """The image beside the named maps ("feature", "prob", "label") of image ``index``, as one PNG."""
    _check_index(result, index)
    picture = _picture(result, index, preprocessing)
    block = {
        "feature": lambda: _feature_block(result, index, picture, size),
        "prob": lambda: _prob_block(result, index, picture, size, class_names),
        "label": lambda: _label_block(result, index, picture, size, class_names, max_legend),
    }
    return _beside([_image_block(picture, result, index, size, class_names)] + [block[m]() for m in maps]).save(path)


def render_feature(
    result,
    path: str | os.PathLike,
    index: int = 0,
    *,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    size: int = 224,
) -> Path:
    """Fig. 7b for image ``index``: the image beside the total activation of ``result.feature_channel``
    as a heat map over it. ``preprocessing`` undoes the normalisation (default: min-max per image);
    panels are ``size`` pixels high; ``class_names`` is accepted (and unused) so that every renderer
    takes the same keywords. Returns the PNG's path."""
    return _render(result, path, index, ("feature",), class_names, preprocessing, size, 0)


def render_prob(
    result,
    path: str | os.PathLike,
    index: int = 0,
    *,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    size: int = 224,
) -> Path:
    """Fig. 7d for image ``index``: the probability of the target class as a heat map over the image."""
    return _render(result, path, index, ("prob",), class_names, preprocessing, size, 0)


def render_label(
    result,
    path: str | os.PathLike,
    index: int = 0,
    *,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    size: int = 224,
    max_legend: int = 12,
) -> Path:
    """Fig. 7e for image ``index``: the most probable class per occluder position, one colour per class
    (the ``max_legend`` most frequent named in the legend, the rest grey)."""
    return _render(result, path, index, ("label",), class_names, preprocessing, size, max_legend)


def render_panel(
    result,
    path: str | os.PathLike,
    index: int = 0,
    *,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    size: int = 224,
    max_legend: int = 12,
) -> Path:
    """The image and maps (b), (d), (e) of image ``index`` side by side in one PNG."""
    return _render(result, path, index, ("feature", "prob", "label"), class_names, preprocessing, size, max_legend)


def save_npz(result, path: str | os.PathLike) -> Path:
    """Every array of ``result`` (numpy, same names) plus window, stride and feature_layer, in one .npz
    written to a temporary file first and renamed, so that an interrupted run leaves no half file."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{str(path)!r} must end with .npz")
    names = ("images", "prob", "label", "feature", "feature_channel", "target", "clean_prob", "clean_label",
             "clean_feature", "true_label", "clean_label_prob")  # fmt: skip
    arrays = {n: getattr(result, n).detach().cpu().numpy() for n in names if getattr(result, n) is not None}
    arrays.update(window=np.array(result.window), stride=np.array(result.stride),
                  feature_layer=np.array(str(result.feature_layer)))  # fmt: skip
    return replace_atomically(path, lambda tmp: np.savez_compressed(tmp, **arrays))
