"""Occlusion figures (paper Fig. 7 b, d, e): files, sizes, where the hottest cell lands, the .npz."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zfaccel.analysis.figures import LABEL_HEIGHT
from zfaccel.analysis.occlusion.figures import (
    MARGIN,
    OTHER,
    OVERLAY,
    PALETTE,
    cell_of_pixel,
    grid_to_pixels,
    jet,
)
from zfaccel.analysis.occlusion.result import OcclusionResult
from zfaccel.models.preprocessing import Preprocessing

H, W, WINDOW, STRIDE = 48, 40, (16, 8), (8, 4)  # a 5 x 9 grid
HOT = (1, 6)  # the cell whose occluder is centred at pixel (8 + 7.5, 24 + 3.5)


def result(images: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> OcclusionResult:
    n_h, n_w = (H - WINDOW[0]) // STRIDE[0] + 1, (W - WINDOW[1]) // STRIDE[1] + 1
    feature = torch.zeros(2, n_h, n_w)
    feature[:, HOT[0], HOT[1]] = 5.0
    feature[:, 0, 0] = -1.0
    label = torch.zeros(2, n_h, n_w, dtype=torch.int64) if labels is None else labels
    return OcclusionResult(
        images=torch.zeros(2, 3, H, W) if images is None else images,
        prob=1 - feature.clamp(0, 1) * 0.9,
        label=label,
        feature=feature,
        feature_channel=torch.tensor([3, 4]),
        target=torch.tensor([2, 2]),
        clean_prob=torch.tensor([0.95, 0.9]),
        clean_label=torch.tensor([2, 0]),
        clean_feature=torch.tensor([4.0, 4.5]),
        window=WINDOW,
        stride=STRIDE,
        feature_layer="conv5",
    )


def test_cells_map_to_the_pixels_nearest_their_centres():
    # centres of a 16-wide window at stride 8: 7.5, 15.5, 23.5 ...; pixel 11 is nearer 7.5 (tie -> lower)
    cells = cell_of_pixel(48, 5, 16, 8)
    assert cells[:12].tolist() == [0] * 12 and cells[12:20].tolist() == [1] * 8 and cells[-1] == 4
    grid = np.zeros((5, 9))
    grid[HOT] = 1
    pixels = grid_to_pixels(grid, (H, W), WINDOW, STRIDE)
    rows, cols = np.nonzero(pixels)
    assert pixels.shape == (H, W)
    assert rows.mean() == pytest.approx(HOT[0] * STRIDE[0] + (WINDOW[0] - 1) / 2, abs=0.5)
    assert cols.mean() == pytest.approx(HOT[1] * STRIDE[1] + (WINDOW[1] - 1) / 2, abs=0.5)


def test_jet_ends():
    assert jet(np.array([0.0, 1.0, 2.0])).tolist() == [[0, 0, 128], [128, 0, 0], [128, 0, 0]]


@pytest.mark.parametrize("size", [96, 130])
def test_hottest_pixel_is_where_the_occluder_sat(tmp_path, size):
    """On a black image the map shows its own colours x OVERLAY: the maximum's dark red lands around the
    hot occluder's centre, scaled to the panel."""
    path = result().render_feature(tmp_path / "b.png", size=size)
    png = np.asarray(Image.open(path).convert("RGB")).astype(int)
    scale = size / H
    panel_w = round(size * W / H)
    assert png.shape[0] == 2 * MARGIN + 2 * LABEL_HEIGHT + size
    top, left = MARGIN + 2 * LABEL_HEIGHT, 2 * MARGIN + panel_w  # the map sits right of the image
    heat = png[top : top + size, left : left + panel_w]
    hottest = np.round(OVERLAY * jet(np.array(1.0))).astype(int)
    ys, xs = np.nonzero(np.abs(heat - hottest).sum(-1) <= 1)
    assert len(ys) > 0
    want_y = (HOT[0] * STRIDE[0] + WINDOW[0] / 2) * scale
    want_x = (HOT[1] * STRIDE[1] + WINDOW[1] / 2) * scale
    assert abs(ys.mean() - want_y) <= scale and abs(xs.mean() - want_x) <= scale


def test_every_figure_is_written(tmp_path):
    r = result(images=Preprocessing(H).normalize(torch.rand(2, 3, H, W)))
    names = [f"thing {i}" for i in range(5)]
    kw = dict(class_names=names, preprocessing=Preprocessing(H), size=64)
    paths = [
        r.render_feature(tmp_path / "deep" / "b.png", 1, preprocessing=Preprocessing(H), size=64),
        r.render_prob(tmp_path / "d.png", 1, **kw),
        r.render_label(tmp_path / "e.png", 1, **kw),
        r.render_panel(tmp_path / "panel.png", 1, **kw),
    ]
    sizes = [Image.open(p).size for p in paths]
    assert all(p.is_file() for p in paths)
    assert sizes[3][0] > max(s[0] for s in sizes[:3])  # the panel holds them all
    assert all(h == 2 * MARGIN + 2 * LABEL_HEIGHT + 64 for _, h in sizes)


def test_label_colours_by_frequency_and_other_classes_grey(tmp_path):
    labels = torch.arange(45).view(1, 5, 9).repeat(2, 1, 1) % 15  # 15 classes, 0..14 three times each
    labels[:, 0, :] = 9  # class 9 most frequent: the first colour
    path = result(labels=labels).render_label(tmp_path / "e.png", size=H, max_legend=4)
    png = np.asarray(Image.open(path).convert("RGB")).astype(int)
    block = png[MARGIN + 2 * LABEL_HEIGHT : MARGIN + 2 * LABEL_HEIGHT + H, 2 * MARGIN + W : 2 * MARGIN + 2 * W]
    top_left = block[0, 0]  # cell (0, 0) over a black image
    assert np.abs(top_left - np.round(OVERLAY * PALETTE[0])).max() <= 1
    assert (np.abs(block - np.round(OVERLAY * np.array(OTHER))).sum(-1) <= 1).any()  # classes beyond the legend


def test_npz_holds_every_array(tmp_path):
    r = result()
    path = r.save_npz(tmp_path / "sub" / "occ.npz")
    with np.load(path) as z:
        assert set(z.files) >= {"prob", "label", "feature", "images", "target", "window", "stride", "feature_layer"}
        assert np.array_equal(z["feature"], r.feature.numpy()) and z["label"].dtype == np.int64
        assert z["window"].tolist() == list(WINDOW) and str(z["feature_layer"]) == "conv5"
    assert sorted(p.name for p in path.parent.iterdir()) == ["occ.npz"]  # no temporary file left
    with pytest.raises(ValueError, match=r"\.npz"):
        r.save_npz(tmp_path / "occ.txt")


def test_bad_index(tmp_path):
    with pytest.raises(ValueError, match="0..1"):
        result().render_prob(tmp_path / "d.png", 2)
