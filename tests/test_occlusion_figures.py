"""Occlusion figures (paper Fig. 7): matplotlib Figures and PNGs, where the hottest cell lands, label colours,
the true/predicted wording, panel (c) (the feature map projected) and the .npz."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from figure_checks import all_text, assert_png, assert_readable
from torch.utils.data import TensorDataset

from zfaccel.analysis import DeconvNet, Occlusion
from zfaccel.analysis.mosaic import stretch
from zfaccel.analysis.occlusion import Approximation
from zfaccel.analysis.occlusion.figures import HEAT, OTHER, OVERLAY, PALETTE, cell_of_pixel, grid_to_pixels
from zfaccel.analysis.occlusion.result import OcclusionResult
from zfaccel.analysis.topk import top_activations
from zfaccel.models import small_zfnet
from zfaccel.models.preprocessing import Preprocessing

H, W, WINDOW, STRIDE = 48, 40, (16, 8), (8, 4)  # a 5 x 9 grid
HOT = (1, 6)  # the cell whose occluder is centred at pixel (8 + 7.5, 24 + 3.5)


def result(images: torch.Tensor | None = None, labels: torch.Tensor | None = None, true=None) -> OcclusionResult:
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
        true_label=None if true is None else torch.tensor(true),
        clean_label_prob=torch.tensor([0.95, 0.8]),
    )


def axes_titled(fig, start: str):
    """The axes whose title starts with ``start`` (e.g. "(b)")."""
    found = [ax for ax in fig.axes if ax.get_title(loc="left").startswith(start)]
    assert len(found) == 1, [ax.get_title(loc="left") for ax in fig.axes]
    return found[0]


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


@pytest.mark.parametrize("size", [96, 130])
def test_hottest_pixel_is_where_the_occluder_sat(size):
    """On a black image the map shows its own colours x OVERLAY: the maximum's dark red lands around the
    hot occluder's centre, and the map is drawn ``size`` pixels high."""
    fig = result().render_feature(size=size)
    ax = axes_titled(fig, "(b)")
    heat = np.asarray(ax.images[0].get_array())
    assert heat.shape == (H, W, 3)
    hottest = OVERLAY * np.array(HEAT(1.0)[:3])
    ys, xs = np.nonzero(np.abs(heat - hottest).sum(-1) < 1e-6)
    assert len(ys) > 0
    assert abs(ys.mean() - (HOT[0] * STRIDE[0] + WINDOW[0] / 2)) <= 1
    assert abs(xs.mean() - (HOT[1] * STRIDE[1] + WINDOW[1] / 2)) <= 1
    assert ax.get_window_extent().height == pytest.approx(size, abs=1)
    bar = [a for a in fig.axes if a.get_ylabel() == "total activation of map 3"]
    assert len(bar) == 1 and bar[0].get_ylim() == pytest.approx((-1.0, 5.0))  # the colour bar spans the map


def test_every_figure_is_a_readable_figure_and_png(tmp_path):
    r = result(images=Preprocessing(H).normalize(torch.rand(2, 3, H, W)))
    names = [f"thing {i}" for i in range(5)]
    kw = dict(class_names=names, preprocessing=Preprocessing(H), size=64)
    paths = [tmp_path / "deep" / "b.png", tmp_path / "d.png", tmp_path / "e.png", tmp_path / "panel.png"]
    figures = [
        r.render_feature(paths[0], 1, preprocessing=Preprocessing(H), size=64),
        r.render_prob(paths[1], 1, **kw),
        r.render_label(paths[2], 1, **kw),
        r.render_panel(paths[3], 1, **kw),
    ]
    sizes = [assert_png(p, (200, 100), (2000, 600)) for p in paths]
    for fig in figures:
        assert_readable(fig)
    assert sizes[3][0] > max(w for w, _ in sizes[:3])  # the panel holds them all
    heights = {round(ax.get_window_extent().height) for fig in figures for ax in fig.axes if ax.images}
    assert heights == {64}  # every picture ``size`` pixels high
    assert [ax.get_title(loc="left")[:3] for ax in figures[3].axes if ax.images and ax.get_title(loc="left")] == [
        "(a)", "(b)", "(d)", "(e)"]  # fmt: skip
    assert r.render_prob(None, 1).savefig is not None  # no path: a Figure, nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png", "deep", "e.png", "panel.png"]


def test_label_colours_by_frequency_and_other_classes_grey():
    labels = torch.arange(45).view(1, 5, 9).repeat(2, 1, 1) % 15  # 15 classes, 0..14 three times each
    labels[:, 0, :] = 9  # class 9 most frequent: the first colour
    fig = result(labels=labels).render_label(size=H, max_legend=4)
    block = np.asarray(axes_titled(fig, "(e)").images[0].get_array())
    assert np.abs(block[0, 0] - OVERLAY * PALETTE[0]).max() < 1e-6  # cell (0, 0) over a black image
    assert (np.abs(block - OVERLAY * np.array(OTHER)).sum(-1) < 1e-6).any()  # classes beyond the legend
    legend = [t.get_text() for t in axes_titled(fig, "(e)").get_legend().get_texts()]
    assert legend[0] == "class 9" and len(legend) == 5 and legend[-1] == "11 other classes"


def test_every_figure_says_true_and_predicted_where_they_differ():
    names = ["circle", "square", "diamond"]
    r = result(true=[2, 1])  # image 1: true square, predicted circle with p 0.8; image 0 right
    for render in (r.render_feature, r.render_prob, r.render_label, r.render_panel):
        assert "true: square, predicted: circle (0.80)" in all_text(render(None, 1, class_names=names))
        assert "diamond (true and predicted, 0.95)" in all_text(render(None, 0, class_names=names))
    assert "(d) p(diamond), the target (true: square)" in all_text(r.render_prob(None, 1, class_names=names))
    assert "(d) p(diamond), the true class" in all_text(r.render_prob(None, 0, class_names=names))
    labelled = result(labels=torch.full((2, 5, 9), 2), true=[2, 1])
    assert "diamond (true)" in all_text(labelled.render_label(None, 0, class_names=names))  # the legend marks it


def test_titles_name_the_image_and_an_approximation():
    r = result(true=[2, 1])
    text = all_text(r.render_panel(None, 1, name="square/a.png (image 7)"))
    assert "square/a.png (image 7): true: class 1, predicted: class 0 (0.80)" in text and "Image 1" not in text
    assert "approximated" not in text
    r.approximation = Approximation(tau=0.8, drill_down=0.15)
    assert "maps approximated (tau 0.8, drill-down 0.15)" in " ".join(all_text(r.render_prob(None, 1)).split())
    with pytest.raises(TypeError, match="name must be a str"):
        r.render_label(None, 0, name=3)


@pytest.fixture(scope="module")
def swept():
    """A random small ZFNet, two 64 px images swept, and a top-4 table of conv5 over 5 images."""
    torch.manual_seed(0)
    model = small_zfnet(10).eval()
    images = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    res = Occlusion(model).sweep(images[:2], window=16, stride=16, labels=[1, 2])
    top = top_activations(model, TensorDataset(images), "conv5", k=4, show_progress=False)
    return model, res, top


def test_panel_c_projects_the_strongest_activation_into_the_image(swept, tmp_path):
    """(c) shows the projection of map feature_channel's strongest activation, as DeconvNet.project makes it
    (a whole-image projection, zero outside the receptive field), stretched over the black square's cells."""
    model, res, top = swept
    fig = res.render_panel(tmp_path / "p.png", 1, model=model, top=top)
    assert_readable(fig)
    assert_png(tmp_path / "p.png")
    titles = [ax.get_title(loc="left").split("\n")[0] for ax in fig.axes if ax.images]
    assert [t[:3] for t in titles] == ["(a)", "(b)", "(c)", "(c)", "(d)", "(e)"]
    ax = axes_titled(fig, f"(c) map {int(res.feature_channel[1])}")
    shown = np.asarray(ax.images[0].get_array())
    (square,) = ax.patches
    left, t = (round(v + 0.5) for v in square.get_xy())
    w, h = round(square.get_width()), round(square.get_height())
    full = DeconvNet(model).project(res.images[1:2], "conv5", [int(res.feature_channel[1])])[0, 0]
    r0, c0, r1, c1 = max(t, 0), max(left, 0), min(t + h, 64), min(left + w, 64)
    outside = full.clone()
    outside[:, r0:r1, c0:c1] = 0
    assert float(full.abs().sum()) > 0 and float(outside.abs().max()) == 0  # the square holds the projection
    expected = stretch(full[:, r0:r1, c0:c1]).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(shown[r0:r1, c0:c1], expected, atol=1e-5)
    assert f"its top 4 in {top.images_seen}" in all_text(fig)


def test_panel_without_model_or_with_a_partial_table(swept):
    model, res, top = swept
    plain = res.render_panel(None, 0)
    assert [ax.get_title(loc="left")[:3] for ax in plain.axes if ax.images] == ["(a)", "(b)", "(d)", "(e)"]
    wide = res.render_panel(None, 0, model=model, top=top)
    assert wide.get_figwidth() > plain.get_figwidth()  # the layout makes room for (c)
    channel = int(res.feature_channel[0])
    partial = top_activations(model, TensorDataset(res.images), "conv5", k=2, show_progress=False,
                              channels=[c for c in range(5) if c != channel][:4])  # fmt: skip
    assert f"map {channel} is not\namong the 4 maps" in all_text(res.render_panel(None, 0, model=model, top=partial))
    other = top_activations(model, TensorDataset(res.images), "conv4", k=2, channels=[0], show_progress=False)
    with pytest.raises(ValueError, match="top holds the top activations of conv4"):
        res.render_panel(None, 0, model=model, top=other)
    with pytest.raises(TypeError, match="model must be"):
        res.render_panel(None, 0, model="small")


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


def test_bad_index_and_size(tmp_path):
    with pytest.raises(ValueError, match="0..1"):
        result().render_prob(tmp_path / "d.png", 2)
    with pytest.raises(ValueError, match="size must be"):
        result().render_prob(None, 0, size=4)
    assert not (tmp_path / "d.png").exists()
