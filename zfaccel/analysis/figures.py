"""Pictures of deconvnet projections (paper Figs. 1 and 2), drawn with matplotlib (see plotting.py).

Each renderer returns a matplotlib Figure and writes it as a PNG when given a path. Projections are
cut to their receptive field, contrast-stretched each to its own range and enlarged, as the paper
shows them (mosaic.py); a grid of tiles is one image on the figure, not an axes per tile.
"""

from __future__ import annotations

import math
import os

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from zfaccel.analysis.mosaic import BACKGROUND, grid, resize, stretch
from zfaccel.analysis.plotting import CYCLE, FONT, PAD, Label, line_px, mosaic_figure, save, text_px
from zfaccel.checks import check_int
from zfaccel.reference.crops import gather_crops, inside

BLOCK_GAP = 12  # pixels between the blocks of the top-k figure
TILE_GAP = 8  # pixels between projection tiles, room for their coloured frames
MIN_TILE = 128  # small inputs (the demo's 64 px) are shown enlarged 2x, nearest, so they stay crisp


def top_tiles(top, row: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row ``row`` of a projected TopActivations as tiles in [0, 1]: its k projections, each stretched
    over the cells inside the image, and the matching image patches, both (k, 3, h, w) float32;
    cells beyond the image's edge and ranks without an image are BACKGROUND grey."""
    if top.projections is None:
        raise ValueError("these top activations were not projected (top_activations(..., project=True))")
    size = tuple(top.patches.shape[-2:])
    within = inside(top.boxes[row], size, top.image_size)  # (k, 1, h, w)
    within &= (top.image_index[row] >= 0)[:, None, None, None]
    proj = stretch(top.projections[row], within)
    patch = torch.where(within, top.preprocessing.denormalize(top.patches[row]), BACKGROUND / 255)
    return proj, patch


def render_top_activations(
    top, path: str | os.PathLike | None = None, *, tile: int = 48, max_channels: int | None = 64
) -> Figure:
    """Fig. 2 for one layer: per feature map, a grid of its top-k projections (left) beside the matching
    image patches (right), maps in a square arrangement, the first ``max_channels`` of them (None: all),
    tiles ``tile`` pixels square. Returns the Figure; writes it as a PNG to ``path`` when given."""
    check_int(tile, "tile")
    check_int(max_channels, "max_channels", none=True)
    c, k = top.values.shape
    shown = range(min(c, max_channels) if max_channels else c)
    side = math.ceil(math.sqrt(k))
    band = line_px(FONT)
    blocks = []
    for r in shown:
        proj, patch = top_tiles(top, r)
        left, right = grid(resize(proj, tile), side), grid(resize(patch, tile), side)
        block = torch.full((band + left.shape[0], left.shape[1] * 2 + BLOCK_GAP // 2, 3), 255, dtype=torch.uint8)
        block[band:, : left.shape[1]] = torch.from_numpy(left)
        block[band:, left.shape[1] + BLOCK_GAP // 2 :] = torch.from_numpy(right)
        blocks.append((block, f"map {int(top.channels[r])}"))
    columns = math.ceil(math.sqrt(len(blocks)))
    bh, bw = blocks[0][0].shape[:2]
    rows = math.ceil(len(blocks) / columns)
    canvas = torch.full((rows * (bh + BLOCK_GAP) + BLOCK_GAP, columns * (bw + BLOCK_GAP) + BLOCK_GAP, 3), 255,
                        dtype=torch.uint8)  # fmt: skip
    labels = []
    for i, (block, label) in enumerate(blocks):
        r, col = divmod(i, columns)
        y, x = BLOCK_GAP + r * (bh + BLOCK_GAP), BLOCK_GAP + col * (bw + BLOCK_GAP)
        canvas[y : y + bh, x : x + bw] = block
        labels.append(Label(x, y, label))
    more = f" (the first {len(blocks)} of {c} shown)" if len(blocks) < c else ""
    title = (f"{top.layer}: the {k} strongest activations of each feature map over {top.images_seen:,} images"
             f"{more}. Left: their projections to pixels; right: the image patches under them, in the same "
             "order.")  # fmt: skip
    fig, _ = mosaic_figure(canvas.numpy(), labels, title)
    return save(fig, path)


def support_squares(projections: torch.Tensor) -> torch.Tensor:
    """int64 (n, 3): (top, left, side) of the smallest square around each (3, H, W) projection's non-zero
    pixels (its receptive field in "max" mode), moved inside the image where it fits; the whole image
    for an all-zero projection."""
    n, _, h, w = projections.shape
    out = torch.zeros((n, 3), dtype=torch.long)
    for i, p in enumerate(projections):
        nonzero = p.abs().sum(0) > 0
        if not bool(nonzero.any()):
            out[i] = torch.tensor([0, 0, max(h, w)])
            continue
        rows, cols = nonzero.any(1).nonzero()[:, 0], nonzero.any(0).nonzero()[:, 0]
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        side = max(r1 - r0, c1 - c0)
        top, left = r0 - (side - (r1 - r0)) // 2, c0 - (side - (c1 - c0)) // 2
        top, left = max(0, min(top, h - side)) if side <= h else top, max(0, min(left, w - side)) if side <= w else left
        out[i] = torch.tensor([top, left, side])
    return out


def _crops(projections: torch.Tensor, squares: torch.Tensor, tile: int) -> torch.Tensor:
    """(n, 3, tile, tile): each projection cut to its square, stretched over the cells inside the image
    (BACKGROUND beyond), enlarged or shrunk to ``tile``."""
    size = tuple(projections.shape[-2:])
    out = []
    for i, (top, left, side) in enumerate(squares.tolist()):
        offset = torch.tensor([[top, left]])
        crop = gather_crops(projections.float(), torch.tensor([i]), offset, (side, side))
        out.append(resize(stretch(crop, inside(offset, (side, side), size)), tile))
    return torch.cat(out) if out else torch.zeros((0, 3, tile, tile))


def render_projection_rows(
    image: torch.Tensor,
    rows: list[tuple[str, torch.Tensor]],
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    tile: int | None = None,
    columns: int = 8,
) -> Figure:
    """One image beside rows of its projections (paper Fig. 1 style): ``image`` (3, H, W) float in [0, 1];
    each row is a label and (n, 3, H, W) full-size projections as ``DeconvNet.project`` returns them
    (e.g. the strongest maps of conv1..conv5). Each projection is cut to the smallest square around its
    non-zero pixels (its receptive field, for "max" mode), contrast-stretched to its own range and shown
    ``tile`` pixels square (default max(H, 128)), ``columns`` to a line: a longer row wraps onto further
    lines. For rows of at most 10, a coloured box on the image marks where each tile's square lies, and
    the tile has a frame of the same colour. ``title`` (e.g. the prediction) heads the figure. Returns
    the Figure; writes it as a PNG to ``path`` when given."""
    check_int(columns, "columns")
    check_int(tile, "tile", none=True)
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W), got {tuple(image.shape)}")
    h, w = image.shape[-2:]
    for label, proj in rows:
        if proj.dim() != 4 or tuple(proj.shape[1:]) != (3, h, w):
            raise ValueError(f"row {label!r}: projections must be (n, 3, {h}, {w}), got {tuple(proj.shape)}")
    tile = tile or max(int(w), MIN_TILE)
    band, step = line_px(FONT), tile + TILE_GAP
    lines = [(r, k) for r, (_, proj) in enumerate(rows) for k in range(0, max(len(proj), 1), columns)]
    widest = max(min(len(proj), columns) for _, proj in rows) if rows else 0
    width = max((widest + 1) * step + PAD, max((text_px(label, FONT) + step for label, _ in rows), default=0))
    canvas = torch.full((len(lines) * (band + step) + PAD, width, 3), 255, dtype=torch.uint8)
    picture = torch.from_numpy(grid(resize(image[None].detach().cpu().float().clamp(0, 1), tile), 1))
    labels, boxes = [], []
    scale_y, scale_x = tile / h, tile / w  # the image is shown tile x tile
    for i, (r, k) in enumerate(lines):
        label, proj = rows[r]
        y = i * (band + step) + band
        part = proj[k : k + columns].detach().cpu()
        if k == 0:
            canvas[y : y + tile, PAD : PAD + tile] = picture
            labels.append(Label(PAD + step, y - band + 2, label))
            image_y = y
        if not len(part):
            continue
        squares = support_squares(part)
        strip = grid(_crops(part, squares, tile), len(part), TILE_GAP)
        canvas[y : y + tile, PAD + step : PAD + step + strip.shape[1]] = torch.from_numpy(strip)
        if len(proj) > len(CYCLE):
            continue  # more boxes than distinct colours would only confuse
        for j, (top, left, side) in enumerate(squares.tolist()):
            colour = CYCLE[k + j]
            boxes.append(Rectangle((PAD - 0.5 + left * scale_x, image_y - 0.5 + top * scale_y), side * scale_x,
                                   side * scale_y, fill=False, edgecolor=colour, linewidth=1.5))  # fmt: skip
            boxes.append(Rectangle((PAD + (j + 1) * step - 2.5, y - 2.5), tile + 4, tile + 4, fill=False,
                                   edgecolor=colour, linewidth=1.5))  # fmt: skip
    fig, ax = mosaic_figure(canvas.numpy(), labels, title)
    for box in boxes:
        ax.add_patch(box)
    return save(fig, path)
