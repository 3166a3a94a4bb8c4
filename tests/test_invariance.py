"""zfaccel.analysis.invariance (paper Fig. 5): the transforms against hand-computed and independently computed
images, invariant inputs and models that must give distance ~0, the batched distances against a loop of
single forwards, the exact identity, the errors, and the figure."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from figure_checks import assert_png, assert_readable
from matplotlib.figure import Figure
from torch import nn

import zfaccel
from zfaccel.analysis.feature_layers import fc_layers, resolve_layers
from zfaccel.analysis.invariance import InvarianceResult, invariance
from zfaccel.analysis.invariance_figure import render_invariance
from zfaccel.analysis.transforms import default_amounts, transform_images
from zfaccel.demo.shapes import demo_test_set

SIZE = 32


def _toy(seed: int = 0) -> nn.Sequential:
    """conv1 (1x1, so a pixel's features depend on that pixel only) -> global average -> fc7 -> fc8, float64.

    fc7 sees only the average of conv1's map, so it is invariant to any transform that keeps the content
    inside the frame; conv1's map moves with the content. Its ReLU is inplace, as ZFNet's are.
    """
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4),
    ).double().eval()  # fmt: skip


def _blob(cy: float, cx: float, sigma: float = 3.0, size: int = SIZE) -> torch.Tensor:
    """(3, size, size) float64: a Gaussian blob centred at pixel (cy, cx) on 0 (the mean), a colour per channel."""
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                          indexing="ij")  # fmt: skip
    g = torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
    return torch.stack([2.0 * g, -1.0 * g, 0.5 * g])


def _relative(r: InvarianceResult, layer: str) -> torch.Tensor:
    return r.distances[layer] / r.norms[layer].view(-1, 1)


# ---------------------------------------------------------------- the transforms


def test_default_amounts_are_the_papers_ranges():
    assert default_amounts("translate", 224).tolist() == list(range(-60, 61, 10))
    shifts = default_amounts("translate", 64)
    assert shifts.tolist() == [-17, -14, -11, -9, -6, -3, 0, 3, 6, 9, 11, 14, 17]  # 27 % of 64 = 17.1
    assert not any(math.copysign(1, v) < 0 for v in shifts.tolist() if v == 0)  # no -0 on the axis
    assert torch.allclose(default_amounts("scale", 64), torch.linspace(1, 1.8, 9, dtype=torch.float64))
    assert default_amounts("rotate", 64).tolist() == list(range(0, 361, 15))


def test_identity_amounts_return_the_image_bit_for_bit(gen):
    x = torch.randn(4, 3, 9, 7, generator=gen)
    for transform, amounts in (("translate", [0.0, -0.0, 0, 0]), ("scale", [1.0] * 4),
                               ("rotate", [0.0, 360.0, -720.0, 1080.0])):  # fmt: skip
        assert torch.equal(transform_images(x, transform, torch.tensor(amounts)), x), transform


def test_shift_down_by_whole_and_half_pixels_fills_with_zeros():
    x = torch.arange(1, 21, dtype=torch.float64).view(1, 1, 5, 4)
    down2 = torch.zeros_like(x)
    down2[..., 2:, :] = x[..., :3, :]
    torch.testing.assert_close(transform_images(x, "translate", torch.tensor([2.0])), down2, rtol=0, atol=1e-12)
    up1 = torch.zeros_like(x)
    up1[..., :4, :] = x[..., 1:, :]
    # Half a pixel: the mean of the two neighbouring whole-pixel shifts (zeros enter from the edge).
    half = transform_images(x, "translate", torch.tensor([-0.5]))
    torch.testing.assert_close(half, (x + up1) / 2, rtol=0, atol=1e-12)


def test_rotation_turns_counter_clockwise_on_a_non_square_image():
    x = torch.zeros(1, 1, 5, 7, dtype=torch.float64)
    x[0, 0, 0, 3] = 1.0  # top centre: 2 pixels above the centre (2, 3)
    out = transform_images(x, "rotate", torch.tensor([90.0]))  # 5 x 7: grid_sample, not rot90
    assert out.shape == x.shape
    assert out[0, 0, 2, 1] == pytest.approx(1.0, abs=1e-9)  # 2 pixels left of the centre
    assert out.sum().item() == pytest.approx(1.0, abs=1e-9)


def _rotate_reference(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Bilinear rotation about the centre, counter-clockwise, zeros outside, written out pixel by pixel."""
    _, h, w = x.shape
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    out = torch.zeros_like(x)
    for i in range(h):
        for j in range(w):
            px, py = j - (w - 1) / 2, i - (h - 1) / 2
            sx, sy = c * px - s * py + (w - 1) / 2, s * px + c * py + (h - 1) / 2
            x0, y0 = math.floor(sx), math.floor(sy)
            for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                    if 0 <= yy < h and 0 <= xx < w:
                        out[:, i, j] += wy * wx * x[:, yy, xx]
    return out


def _zoom2_reference(x: torch.Tensor) -> torch.Tensor:
    """Zoom x2 about the centre: the centre half (plus one pixel of margin) upsampled x2, margin cut off.
    Sides divisible by 4: output pixel x samples x / 2 + W / 4 - 1 / 4, as the zoom's geometry says."""
    h, w = x.shape[-2:]
    crop = x[..., h // 4 - 1 : 3 * h // 4 + 1, w // 4 - 1 : 3 * w // 4 + 1]
    up = F.interpolate(crop, scale_factor=2, mode="bilinear", align_corners=False)
    return up[..., 2 : h + 2, 2 : w + 2]


def test_rotation_and_zoom_match_independent_implementations(gen):
    x = torch.randn(2, 3, 12, 10, generator=gen, dtype=torch.float64)
    for deg in (30.0, -100.0, 200.0):
        out = transform_images(x, "rotate", torch.tensor([deg, deg]))
        for b in range(2):
            torch.testing.assert_close(out[b], _rotate_reference(x[b], deg), rtol=0, atol=1e-9)
    y = x[..., :8]  # the reference needs sides divisible by 4
    torch.testing.assert_close(transform_images(y, "scale", torch.tensor([2.0, 2.0])), _zoom2_reference(y),
                               rtol=0, atol=1e-9)  # fmt: skip
    # Quarter turns of a square image go through rot90; they agree with the interpolating path.
    sq = torch.randn(1, 3, 8, 8, generator=gen, dtype=torch.float64)
    for deg in (90.0, 180.0, 270.0, -90.0):
        quarter = transform_images(sq, "rotate", torch.tensor([deg]))
        torch.testing.assert_close(quarter[0], _rotate_reference(sq[0], deg), rtol=0, atol=1e-9)


# ---------------------------------------------------------------- invariant inputs and models: distance ~0


def test_rotation_of_a_centred_blob_leaves_every_layer_almost_unchanged():
    model = _toy()
    centred, off = _blob(15.5, 15.5), _blob(10.0, 15.5)  # (15.5, 15.5) is the rotation centre of 32 px
    r = invariance(model, torch.stack([centred, off]), [0, 1], "rotate", amounts=torch.arange(0, 361, 30.0))
    assert r.layers == ("conv1", "fc7")  # the defaults: the first convolution and the layer feeding the last Linear
    # Measured: 0.0016 at most (interpolation error) for the centred blob, 0.08..0.18 for the off-centre one
    # (the background's constant ReLU(bias) makes up most of conv1's norm).
    assert _relative(r, "conv1")[0].max() < 0.005  # rotation-symmetric
    assert _relative(r, "fc7").max() < 0.002  # the global average does not see where the blob is
    assert _relative(r, "conv1")[1, 1:-1].min() > 0.05  # the off-centre blob's map moves
    torch.testing.assert_close(r.prob, r.prob[:, :1].expand_as(r.prob), rtol=0, atol=1e-3)


def test_vertical_shift_of_an_image_constant_down_its_columns():
    x = torch.linspace(-2, 2, SIZE, dtype=torch.float64).view(1, 1, 1, SIZE).expand(1, 3, SIZE, SIZE).clone()
    x[:, 1] *= -1
    shifts = [-9.0, -2.5, 0.0, 4.0, 9.0]
    border = invariance(_toy(), x, [2], "translate", shifts, padding="border")
    for layer in border.layers:
        assert border.distances[layer].abs().max() < 1e-9, layer
    # With the default zeros (the mean) the uncovered rows are grey: the same shifts are seen.
    zeros = invariance(_toy(), x, [2], "translate", shifts)
    assert (_relative(zeros, "conv1")[0, [0, 1, 3, 4]] > 0.1).all()


def test_zoom_of_a_uniform_image_changes_nothing():
    x = torch.tensor([0.7, -1.2, 0.4], dtype=torch.float64).view(1, 3, 1, 1).expand(2, 3, SIZE, SIZE)
    r = invariance(_toy(), x, [0, 3], "scale", [1.0, 1.3, 1.8])  # zooming in samples inside the image only
    for layer in r.layers:
        assert r.distances[layer].abs().max() < 1e-9, layer


# ---------------------------------------------------------------- the bundled model


@pytest.fixture(scope="module")
def small():
    return zfaccel.models.pretrained_small().eval()  # it loads in training mode


@pytest.fixture(scope="module")
def shapes():
    data = demo_test_set(2)
    return torch.stack([data[i][0] for i in range(2)]), [data[i][1] for i in range(2)]


def test_amount_zero_is_exactly_the_original(small, shapes):
    images, labels = shapes
    with torch.no_grad():
        clean = torch.softmax(small(images), 1)[torch.arange(2), labels]
    for transform, amounts in (("translate", [-6.0, 0.0, 6.0]), ("scale", [1.0, 1.5]), ("rotate", [0.0, 45.0, 360.0])):
        r = invariance(small, images, labels, transform, amounts, batch_size=3)
        same = torch.tensor([a in (0.0, 360.0) or (transform == "scale" and a == 1.0) for a in amounts])
        for layer in r.layers:
            assert (r.distances[layer][:, same] == 0).all(), (transform, layer)
            assert (r.distances[layer][:, ~same] > 0).all(), (transform, layer)
            assert r.distances[layer].shape == (2, len(amounts))
        torch.testing.assert_close(r.prob[:, same], clean.view(2, 1).expand(2, int(same.sum())), rtol=1e-6, atol=1e-7)


def _manual_features(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The demo model's conv1 (conv, ReLU) and fc7 (fc6, ReLU, dropout, fc7, ReLU), by hand."""
    with torch.no_grad():
        flat = model.features(x).flatten(1)
        return {"conv1": model.features[:2](x).flatten(1), "fc7": model.classifier[:5](flat),
                "prob": torch.softmax(model.classifier(flat), 1)}  # fmt: skip


def _shift_reference(x: torch.Tensor, d: int) -> torch.Tensor:
    out = torch.zeros_like(x)
    if d >= 0:
        out[..., d:, :] = x[..., : x.shape[-2] - d, :]
    else:
        out[..., :d, :] = x[..., -d:, :]
    return out


def test_batched_distances_match_a_loop_of_single_images(small, shapes):
    images, labels = shapes
    shifts = [-11, 0, 5, 17]
    r = invariance(small, images, labels, "translate", shifts, batch_size=2)  # batches straddle images
    for b in range(2):
        original = _manual_features(small, images[b : b + 1])
        for j, d in enumerate(shifts):
            moved = _manual_features(small, _shift_reference(images[b : b + 1], d))
            for layer in ("conv1", "fc7"):
                expected = torch.dist(moved[layer], original[layer]).item()
                assert r.distances[layer][b, j].item() == pytest.approx(expected, rel=1e-4, abs=1e-4), (b, d, layer)
            assert r.prob[b, j].item() == pytest.approx(moved["prob"][0, labels[b]].item(), abs=1e-5)
            assert r.predicted[b, j].item() == moved["prob"][0].argmax().item()
    torch.testing.assert_close(r.norms["fc7"], torch.stack([_manual_features(small, images[b : b + 1])["fc7"].norm()
                                                            for b in range(2)]), rtol=1e-5, atol=1e-5)  # fmt: skip
    rel = invariance(small, images, labels, "translate", shifts, relative=True)
    torch.testing.assert_close(rel.distances["fc7"], r.distances["fc7"] / r.norms["fc7"].view(2, 1))


def test_a_layer_before_an_inplace_relu_is_read_before_the_relu(gen):
    model = _toy()
    x = torch.randn(2, 3, SIZE, SIZE, generator=gen, dtype=torch.float64)
    r = invariance(model, x, [0, 1], "rotate", [0.0, 30.0, 90.0], layers=[0, "fc8"], batch_size=2)
    assert r.layers == ("features[0]", "fc8")
    moved = transform_images(x, "rotate", torch.tensor([30.0, 30.0]))
    with torch.no_grad():
        expected = torch.stack([torch.dist(model[0](moved[b : b + 1]), model[0](x[b : b + 1])) for b in range(2)])
    torch.testing.assert_close(r.distances["features[0]"][:, 1], expected.float())
    assert not any(m._forward_hooks for m in model.modules())  # the hooks are gone


def test_model_mode_is_restored_and_results_are_on_cpu(small, shapes):
    images, labels = shapes
    small.train()
    try:
        r = invariance(small, images[:1], labels[:1], "scale", [1.0, 1.2])
        assert small.training
    finally:
        small.eval()
    assert r.prob.device.type == "cpu" and r.prob.dtype == torch.float32 and r.predicted.dtype == torch.int64
    assert repr(r) == ("InvarianceResult(transform='scale', images=1, amounts=2 (1..1.2), "
                       "layers=('conv1', 'fc7'), relative=False)")  # fmt: skip


def test_layer_names_of_the_head():
    for model, expected in ((zfaccel.models.zfnet(num_classes=10), {"fc6": 1, "fc7": 4, "fc8": 6}),
                            (zfaccel.models.alexnet(num_classes=10), {"fc6": 2, "fc7": 5, "fc8": 6}),
                            (zfaccel.models.small_zfnet(), {"fc6": 1, "fc7": 4, "fc8": 6})):  # fmt: skip
        names = fc_layers(model)
        assert {n: list(model.classifier).index(m) for n, m in names.items()} == expected
        assert resolve_layers(model, ["penultimate"])[0].name == "fc7"
    lone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 2))
    assert resolve_layers(lone, ["penultimate"])[0].name == "pool1"


def test_zfnet_at_224_pixels(gen):
    model = zfaccel.models.zfnet(num_classes=10).eval()
    x = torch.randn(1, 3, 224, 224, generator=gen)
    r = invariance(model, x, [3], "translate", [0.0, 60.0])
    assert r.layers == ("conv1", "fc7") and r.distances["conv1"][0, 0] == 0 and r.distances["conv1"][0, 1] > 0


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("change", "error", "names"),
    [
        ({"transform": "shear"}, ValueError, "transform"),
        ({"transform": None}, ValueError, "transform"),
        ({"images": torch.zeros(2, 3, SIZE, SIZE, dtype=torch.int64)}, TypeError, "images"),
        ({"images": torch.zeros(2, 4, SIZE, SIZE)}, ValueError, "images"),
        ({"images": [[0.0]]}, TypeError, "images"),
        ({"labels": [0]}, ValueError, "labels"),
        ({"labels": [0, 4]}, ValueError, "labels"),  # the toy model has 4 classes
        ({"labels": [0, -1]}, ValueError, "labels"),
        ({"labels": [0.0, 1.0]}, TypeError, "labels"),
        ({"labels": torch.tensor([0.0, 1.0])}, TypeError, "labels"),
        ({"amounts": [[1.0, 2.0]]}, ValueError, "amounts"),
        ({"amounts": []}, ValueError, "amounts"),
        ({"amounts": [0.0, float("nan")]}, ValueError, "amounts"),
        ({"amounts": [1.0, float("inf")]}, ValueError, "amounts"),
        ({"amounts": ["up"]}, TypeError, "amounts"),
        ({"amounts": [1.0, 0.0], "transform": "scale"}, ValueError, "amounts"),
        ({"layers": ["conv9"]}, ValueError, "layers"),
        ({"layers": [99]}, ValueError, "layers"),
        ({"layers": []}, ValueError, "layers"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"padding": "wrap"}, ValueError, "padding"),
        ({"relative": "yes"}, TypeError, "relative"),
    ],
)
def test_bad_input_names_the_argument(change, error, names):
    args = {"images": torch.zeros(2, 3, SIZE, SIZE, dtype=torch.float64), "labels": [0, 1], "transform": "rotate",
            "amounts": None, "layers": None, "batch_size": 8, "padding": "zeros", "relative": False}  # fmt: skip
    args.update(change)
    with pytest.raises(error, match=names):
        invariance(_toy(), **args)


def test_images_must_have_the_models_input_size(small):
    with pytest.raises(ValueError, match=r"images must be 64 x 64"):
        invariance(small, torch.zeros(1, 3, 32, 32), [0], "translate")
    with pytest.raises(TypeError, match="model"):
        invariance("not a model", torch.zeros(1, 3, 64, 64), [0], "translate")


# ---------------------------------------------------------------- the figure


def test_render_draws_four_columns_per_transform_and_writes_a_png(small, shapes, tmp_path):
    images, labels = shapes
    runs = (("translate", [-9, 0, 9]), ("scale", [1.0, 1.8]), ("rotate", [0, 45, 90]))
    results = [invariance(small, images, labels, t, amounts) for t, amounts in runs]
    fig = render_invariance(results, tmp_path / "fig5.png")
    assert_readable(fig)
    grid = [ax for ax in fig.axes if ax.get_visible()]
    assert len(grid) == 12
    titles = [ax.get_title() for ax in grid]
    assert titles[:4] == ["vertical translation: examples", "conv1: distance to original",
                          "fc7: distance to original", "p(true class)"]  # fmt: skip
    assert titles[4].startswith("scale") and titles[8].startswith("rotation")
    for ax in grid[1:4]:
        assert len(ax.get_lines()) == 2  # one line per image
    w, h = assert_png(tmp_path / "fig5.png")
    assert w > 1000 and h > 800
    one = results[2].render()  # no path: the Figure only, nothing written
    assert isinstance(one, Figure) and len([ax for ax in one.axes if ax.get_visible()]) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig5.png"]


def test_render_rejects_what_is_not_a_result():
    with pytest.raises(ValueError, match="results"):
        render_invariance([])
    with pytest.raises(TypeError, match=r"results\[0\]"):
        render_invariance(["translate"])
