"""The correspondence analysis (paper Table 1): known answers, a direct loop implementation, the control, errors."""

from __future__ import annotations

import itertools

import pytest
import torch
from figure_checks import assert_png, assert_readable
from matplotlib.figure import Figure
from torch import nn

from zfaccel.analysis.correspondence import corners, correspondence, default_window, pair_hamming
from zfaccel.demo.shapes import part_images
from zfaccel.models import pretrained_small


def identity_model(channels: int = 1) -> nn.Sequential:
    """conv1 = the image itself (a 1x1 identity convolution, no ReLU), float64."""
    conv = nn.Conv2d(channels, channels, 1, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
    return nn.Sequential(conv)


def toy_cnn(gen: torch.Generator) -> nn.Sequential:
    """conv1 (ReLU), then fc7 (ReLU) and fc8: small, float64, random weights."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 6), nn.ReLU(),
                          nn.Linear(6, 2)).double()  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.3)
    return model


def hand_case() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Three 4 x 4 one-channel images: all ones, with (0, 0) = -1 in the second, (1, 1) = 0 and
    (3, 3) = -5 in the third. Part "a" at (1, 1) (a 3 px square covers rows and columns 0..2), part "b"
    at (3, 3) (its square shifted inside: rows and columns 1..3)."""
    x = torch.ones(3, 1, 4, 4, dtype=torch.float64)
    x[1, 0, 0, 0] = -1
    x[2, 0, 1, 1] = 0
    x[2, 0, 3, 3] = -5
    parts = {"a": torch.tensor([[1, 1]] * 3), "b": torch.tensor([[3.0, 3.0]] * 3)}
    return x, parts


def test_hand_computed_case():
    x, parts = hand_case()
    r = correspondence(identity_model(), x, parts, window=3, random_draws=2)
    # The grey square shows 0, so eps = the image inside the square and 0 outside: sign(eps) is the sign
    # of those pixels. Part a: the second image differs from the first at (0, 0) (-1 vs +1), the third at
    # (1, 1) (0 vs +1), the second from the third at both: distances 1, 1, 2 of D = 16 features.
    assert r.hamming["conv1"][0].tolist() == [1, 1, 2]
    # Part b (rows and columns 1..3): the second image equals the first there; the third differs at (1, 1)
    # (0) and (3, 3) (-5): distances 0, 2, 2.
    assert r.hamming["conv1"][1].tolist() == [0, 2, 2]
    assert r.delta["conv1"]["a"] == 4 and r.delta["conv1"]["b"] == 4
    assert r.mean["conv1"]["a"] == pytest.approx(4 / (3 * 16))
    assert r.std["conv1"]["a"] == pytest.approx(torch.tensor([1.0, 1.0, 2.0]).std(correction=0).item() / 16)
    assert r.parts_summary("conv1") == pytest.approx((4 / 48, 0.0))
    assert r.corners[:2, 0].tolist() == [[0, 0], [1, 1]]
    assert r.dims == {"conv1": 16} and r.layers == ("conv1",) and r.pairs == 3


def test_tolerance_zeroes_small_changes():
    x, parts = hand_case()
    # The largest clean activation is |-5|: a tolerance of 0.3 makes every change of at most 1.5 sign 0, so
    # only the -5 at (3, 3) of the third image, under part b, still counts.
    r = correspondence(identity_model(), x, parts, window=3, random_draws=1, tolerance=0.3)
    assert r.hamming["conv1"][:2].tolist() == [[0, 0, 0], [0, 1, 1]]
    assert r.changed["conv1"][:2].tolist() == [[0, 0, 0], [0, 0, 1 / 16]]


def test_identical_images_give_zero():
    model = pretrained_small()
    images = part_images("star", 1, 0).images.expand(3, -1, -1, -1).contiguous()
    parts = {"tip": torch.tensor([[20.0, 30.0]] * 3), "middle": torch.tensor([[32, 32]] * 3)}
    r = correspondence(model, images, parts, random_draws=1)
    assert r.layers == ("conv5", "fc7")
    for layer in r.layers:
        assert r.delta[layer]["tip"] == 0 and r.delta[layer]["middle"] == 0
        assert r.mean[layer]["tip"] == 0 and r.std[layer]["tip"] == 0
        assert r.changed[layer][:2].min() > 0  # the squares did change the features, alike in every copy


def test_pair_hamming_matches_brute_force(gen):
    signs = torch.randint(-1, 2, (7, 50), generator=gen, dtype=torch.int8)
    expected = [int((signs[i] != signs[j]).sum()) for i, j in itertools.combinations(range(7), 2)]
    assert pair_hamming(signs).tolist() == expected


def direct(model: nn.Module, x: torch.Tensor, corner_rows: torch.Tensor, window: int) -> dict[str, list[list[int]]]:
    """A loop implementation: occlude each image by slicing, run conv1 and fc7 by hand, Hamming per pair."""

    def feats(img):
        conv1 = model[1](model[0](img[None]))
        fc7 = model[4](model[3](conv1.flatten(1)))
        return {"conv1": conv1.flatten(), "fc7": fc7.flatten()}

    with torch.no_grad():
        clean = [feats(img) for img in x]
        limit = {k: 1e-5 * max(float(c[k].abs().max()) for c in clean) for k in ("conv1", "fc7")}
        out = {"conv1": [], "fc7": []}
        for cond in corner_rows:
            signs = {"conv1": [], "fc7": []}
            for i, img in enumerate(x):
                covered = img.clone()
                r, c = cond[i].tolist()
                covered[:, r : r + window, c : c + window] = 0
                f = feats(covered)
                for k in signs:
                    eps = clean[i][k] - f[k]
                    signs[k].append(torch.where(eps.abs() > limit[k], torch.sign(eps), torch.zeros_like(eps)))
            for k, s in signs.items():
                out[k].append([int((s[i] != s[j]).sum()) for i, j in itertools.combinations(range(len(x)), 2)])
    return out


def test_matches_a_direct_loop_implementation(gen):
    model = toy_cnn(gen)
    x = torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64)
    parts = {"p": torch.randint(0, 8, (4, 2), generator=gen), "q": torch.rand(4, 2, generator=gen) * 7}
    r = correspondence(model, x, parts, window=3, random_draws=2, seed=5, batch_size=3)
    assert r.layers == ("conv1", "fc7")  # the default: the last convolution and the penultimate layer
    expected = direct(model, x, r.corners, 3)
    for layer in r.layers:
        assert r.hamming[layer].tolist() == expected[layer]
    # The part squares are centred on the parts (then shifted inside): corner = round(centre - 1).
    assert torch.equal(r.corners[1], (parts["q"].double() - 1).round().clamp(0, 5).long())


def test_random_control_is_deterministic_and_inside(gen):
    model = toy_cnn(gen)
    x = torch.randn(5, 3, 8, 8, generator=gen, dtype=torch.float64)
    parts = {"p": torch.full((5, 2), 4)}
    a = correspondence(model, x, parts, window=3, random_draws=4, seed=11)
    b = correspondence(model, x, parts, window=3, random_draws=4, seed=11)
    c = correspondence(model, x, parts, window=3, random_draws=4, seed=12)
    assert torch.equal(a.corners, b.corners) and torch.equal(a.hamming["fc7"], b.hamming["fc7"])
    assert not torch.equal(a.corners[1:], c.corners[1:])
    assert a.corners[1:].min() >= 0 and a.corners[1:].max() <= 8 - 3
    assert a.delta["fc7"]["random"] == pytest.approx(float(a.hamming["fc7"][1:].sum(1).double().mean()))
    # Centred on the only pixel of each mask: the corner is that pixel minus 1, shifted inside.
    masks = torch.zeros(5, 8, 8, dtype=torch.bool)
    pixels = torch.tensor([[0, 0], [7, 7], [3, 4], [5, 1], [2, 6]])
    masks[torch.arange(5), pixels[:, 0], pixels[:, 1]] = True
    m = correspondence(model, x, parts, window=3, random_draws=2, random_within=masks)
    assert m.random_on_object and torch.equal(m.corners[1], corners(pixels, (3, 3), (8, 8)))
    assert m.corners[1].tolist() == [[0, 0], [5, 5], [2, 3], [4, 0], [1, 5]]


def test_default_window_scales_with_the_image():
    assert default_window((64, 64)) == (8, 8) and default_window((224, 300)) == (28, 28)
    assert default_window((4, 4)) == (1, 1)


def test_markdown_and_render(tmp_path):
    x, parts = hand_case()
    r = correspondence(identity_model(), x, parts, window=3, random_draws=2)
    md = r.markdown()
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| layer"))
    assert header.split(" | ")[1:3] == ["a", "b"] and "random squares (2 draws, anywhere in the image)" in header
    rows = [line for line in lines if line.startswith("| conv1 (16)")]
    assert len(rows) == 2  # the normalised table and the Delta table, one layer each
    assert rows[0].split(" | ")[1:3] == ["0.0833 ± 0.0295", "0.0833 ± 0.0589"]
    assert rows[1].split(" | ")[1:3] == ["4", "4"]
    assert "3 pairs of 3 images" in md and "CorrespondenceResult(images=3" in repr(r)
    path = tmp_path / "table.png"
    fig = r.render(path)
    assert_readable(fig)
    assert_png(path)
    table = fig.axes[0].tables[0]
    texts = [cell.get_text() for cell in table.get_celld().values()]
    assert {t.get_text() for t in texts} >= {"a", "b", "0.0833 ± 0.0295", "conv1 (16)"}
    assert min(t.get_fontsize() for t in texts) >= 9
    assert isinstance(r.render(), Figure)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"model": "net"}, TypeError, "torch.nn.Module"),
        ({"images": [[1.0]]}, TypeError, "images must be a torch.Tensor"),
        ({"images": torch.ones(3, 4, 4, dtype=torch.float64)}, ValueError, r"images must be \(N, C, H, W\)"),
        ({"images": torch.ones(1, 1, 4, 4, dtype=torch.float64)}, ValueError, "N >= 2"),
        ({"images": torch.ones(3, 1, 4, 4, dtype=torch.int64)}, TypeError, "floating"),
        ({"images": torch.ones(3, 1, 4, 4)}, TypeError, "model's dtype"),
        ({"images": torch.full((3, 1, 4, 4), float("nan"), dtype=torch.float64)}, ValueError, "finite"),
        ({"parts": {}}, TypeError, "parts must be a non-empty mapping"),
        ({"parts": {"a": torch.ones(2, 2)}}, ValueError, r"parts\['a'\] must have shape \(3, 2\)"),
        ({"parts": {"a": [[1, 1]] * 3}}, TypeError, r"parts\['a'\] must be a real tensor"),
        ({"parts": {"a": torch.tensor([[1, 1], [1, 4], [0, 0]])}}, ValueError, r"parts\['a'\]\[1\].*outside"),
        ({"parts": {"a": torch.tensor([[1, 1], [1, 1], [-1, 0]])}}, ValueError, r"parts\['a'\]\[2\].*outside"),
        ({"parts": {"random": torch.ones(3, 2)}}, ValueError, "other than 'random'"),
        ({"layers": ["conv9"]}, ValueError, "unknown layer 'conv9' in layers"),
        ({"layers": []}, ValueError, "layers must be a non-empty list"),
        ({"layers": "conv1"}, TypeError, "layers must be a non-empty list"),
        ({"layers": ["conv1", 0]}, ValueError, "names a layer twice"),
        ({"window": 5}, ValueError, "window .* does not fit"),
        ({"window": 0}, ValueError, "window must be positive"),
        ({"random_draws": 0}, ValueError, "random_draws must be a positive int"),
        ({"seed": -1}, ValueError, "seed must be an int >= 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive int"),
        ({"tolerance": -1.0}, ValueError, "tolerance must be a number"),
        ({"random_within": torch.ones(3, 4, 4)}, TypeError, "random_within must be a bool tensor"),
        ({"random_within": torch.ones(3, 4, 5, dtype=torch.bool)}, ValueError, r"random_within must have shape"),
        ({"random_within": torch.zeros(3, 4, 4, dtype=torch.bool)}, ValueError, r"random_within\[0\] is all False"),
    ],
)
def test_bad_inputs_raise(change, error, match):
    x, parts = hand_case()
    kwargs = {"model": identity_model(), "images": x, "parts": parts, "window": 3, **change}
    with pytest.raises(error, match=match):
        correspondence(**kwargs)
