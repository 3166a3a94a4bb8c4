"""Projection figures (paper Figs. 1 and 2): contrast stretching, receptive-field squares, the rows of
projections beside their image, and every tile shown pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from figure_checks import all_text, assert_png, assert_readable
from PIL import Image

from zfaccel.analysis.figures import TILE_GAP, render_projection_rows, support_squares
from zfaccel.analysis.mosaic import BACKGROUND, stretch
from zfaccel.analysis.plotting import FONT, PAD, line_px


def test_stretch_maps_each_projection_to_its_own_range():
    p = torch.zeros(2, 3, 2, 2)
    p[0, :, 0, 0], p[0, :, 0, 1], p[0, :, 1, 0], p[0, :, 1, 1] = -1.0, 0.0, 3.0, 1.0
    p[1] = 7.0  # constant: mid grey
    out = stretch(p)
    assert out[0, 0].tolist() == [[0.0, 0.25], [1.0, 0.5]]
    assert (out[1] == 0.5).all()
    inside = torch.tensor([[True, True], [False, True]])[None, None]  # (1, 1, 2, 2): cell (1, 0) beyond the image
    masked = stretch(p[:1], inside)[0, 0]
    assert masked[0].tolist() == [0.0, 0.5] and masked[1, 1] == 1.0  # range over the cells inside: -1..1
    assert masked[1, 0] == pytest.approx(BACKGROUND / 255)


def test_support_squares():
    p = torch.zeros(3, 3, 32, 32)
    p[0, 1, 10:15, 20:28] = 1.0  # 5 x 8: a square of 8, centred on the rows
    p[1, 0, 0:3, 0:10] = -2.0  # against the top edge: moved inside
    # p[2] all zero: the whole image
    assert support_squares(p).tolist() == [[9, 20, 8], [0, 0, 10], [0, 0, 32]]


def test_rows_show_each_projection_cut_to_its_square_and_enlarged(tmp_path):
    """A 2 x 2 checker of +-1 at (4, 4) of a 16 px image fills its whole 32 px tile: white, black / black, white."""
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    checker = torch.zeros(2, 3, 16, 16)
    checker[0, :, 4:6, 4:6] = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    checker[1, :, 8:16, 0:8] = torch.linspace(0, 1, 64).view(8, 8)  # a ramp in the bottom-left quarter
    rows = [("conv1: maps 3, 1", checker), ("conv2: maps 0, 2, 4", torch.randn(3, 3, 16, 16))]
    fig = render_projection_rows(image, rows, tmp_path / "rows.png", title="Example 0: circle", tile=32, columns=2)
    assert_readable(fig)
    w, h = assert_png(tmp_path / "rows.png", (100, 100), (400, 400))
    text = all_text(fig)
    assert "Example 0: circle" in text and "conv1: maps 3, 1" in text and "conv2: maps 0, 2, 4" in text
    canvas = np.asarray(fig.axes[0].images[0].get_array())[..., :3]
    x, y = PAD + 32 + TILE_GAP, line_px(FONT)  # the first tile: right of the image, under the row's label
    tile = canvas[y : y + 32, x : x + 32]
    assert (tile[:16, :16] == 255).all() and (tile[:16, 16:] == 0).all() and (tile[16:, :16] == 0).all()
    ramp = canvas[y : y + 32, x + 32 + TILE_GAP : x + 64 + TILE_GAP, 0].astype(int)
    assert ramp[0, 0] == 0 and ramp[-1, -1] == 255 and (np.diff(ramp[::4, 0]) > 0).all()  # the 8 x 8 ramp, enlarged
    assert (canvas[y : y + 32, PAD : PAD + 32] == (image * 255).round().byte().permute(1, 2, 0).numpy().repeat(
        2, 0).repeat(2, 1)).all()  # the image, enlarged 2x nearest  # fmt: skip
    # Boxes on the image and frames of the same colour: 2 per projection.
    patches = fig.axes[0].patches
    assert len(patches) == 2 * 5
    first_box = patches[0]
    assert (first_box.get_x() + 0.5, first_box.get_y() + 0.5 - y, first_box.get_width()) == (PAD + 8, 8, 4)
    assert first_box.get_edgecolor() == patches[1].get_edgecolor()
    assert w == canvas.shape[1] and h > canvas.shape[0]  # pixel for pixel, the title above
    png = np.asarray(Image.open(tmp_path / "rows.png").convert("RGB"))[h - canvas.shape[0] :]
    assert (png[y + 2 : y + 30, x + 2 : x + 30] == tile[2:-2, 2:-2]).all()  # not resampled on the way


def test_rows_check_their_arguments():
    image = torch.rand(3, 16, 16)
    with pytest.raises(ValueError, match="columns must be a positive int"):
        render_projection_rows(image, [("a", torch.zeros(1, 3, 16, 16))], columns=0)
    with pytest.raises(ValueError, match=r"row 'a': projections must be \(n, 3, 16, 16\)"):
        render_projection_rows(image, [("a", torch.zeros(1, 3, 8, 8))])
    with pytest.raises(ValueError, match=r"image must be \(3, H, W\)"):
        render_projection_rows(image[0], [])
    many = render_projection_rows(image, [("a", torch.randn(12, 3, 16, 16))], columns=4)
    assert not many.axes[0].patches  # 12 > 10 colours: no boxes rather than repeated colours
