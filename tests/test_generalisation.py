"""The glyphs data and the feature-generalisation study (paper section 5.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from figure_checks import assert_png, assert_readable
from matplotlib.figure import Figure
from torch import nn

from zfaccel.analysis.generalisation import (
    fit_softmax,
    fresh_copy,
    generalisation,
    penultimate_features,
    shift,
    train_from_scratch,
)
from zfaccel.analysis.generalisation_result import GeneralisationResult
from zfaccel.demo.generalisation_record import RECORD
from zfaccel.demo.glyphs import _SEGMENTS, CLASSES, GlyphsDataset, _segment_distance, glyph_images
from zfaccel.demo.shapes import normalize
from zfaccel.models import pretrained_small
from zfaccel.models.small import SmallZFNet

# The glyphs data ------------------------------------------------------------------------------------


def test_glyphs_are_deterministic_balanced_and_in_range():
    a = glyph_images("train", 40, seed=3)
    assert a.shape == (40, 3, 64, 64) and a.dtype == torch.uint8
    assert torch.equal(a, glyph_images("train", 40, seed=3))
    assert torch.equal(a[:20], glyph_images("train", 20, seed=3))  # a smaller size is a prefix
    assert not torch.equal(a, glyph_images("train", 40, seed=4))
    assert not torch.equal(a, glyph_images("test", 40, seed=3))
    data = GlyphsDataset("test", 30, seed=0)
    assert torch.bincount(data.targets).tolist() == [3] * 10 and len(CLASSES) == 10
    image, label = data[12]
    assert label == 2 and image.dtype == torch.float32 and image.shape == (3, 64, 64)
    assert torch.equal(image, normalize(data.pixels[12]))
    # Real pictures, not blank canvases: the pixels span most of the range.
    assert int(a.min()) < 40 and int(a.max()) > 215 and float(a.float().std()) > 20


def test_segment_distance_matches_a_point_by_point_formula():
    a = np.array([[10.0, 20.0], [5.0, 5.0]], np.float32)
    b = np.array([[40.0, 30.0], [5.0, 5.0]], np.float32)  # the second is a point
    d = _segment_distance(a, b)
    for i in range(2):
        for y, x in ((0, 0), (25, 25), (21, 11), (63, 2), (30, 50)):
            p = np.array([x + 0.5, y + 0.5])
            ab = b[i] - a[i]
            t = 0.0 if not ab.any() else np.clip((p - a[i]) @ ab / (ab @ ab), 0, 1)
            assert d[i, y, x] == pytest.approx(np.linalg.norm(p - a[i] - t * ab), abs=1e-4)


def test_shift_moves_each_image_by_its_own_offset():
    images = torch.arange(2 * 1 * 5 * 6, dtype=torch.float32).view(2, 1, 5, 6)
    gen = torch.Generator().manual_seed(0)
    moved = shift(images, 2, gen)
    offsets = torch.randint(-2, 3, (2, 2), generator=torch.Generator().manual_seed(0))
    for i, (dy, dx) in enumerate(offsets.tolist()):
        for r in range(5):
            for c in range(6):  # the pixel that lands at (r, c) came from (r - dy, c - dx), clamped to the border
                assert moved[i, 0, r, c] == images[i, 0, min(max(r - dy, 0), 4), min(max(c - dx, 0), 5)]
    assert shift(images, 0, gen) is images


def test_every_digit_has_strokes_inside_its_box():
    for name in CLASSES:
        seg = _SEGMENTS[name]
        assert seg.ndim == 3 and seg.shape[1:] == (2, 2) and len(seg) >= 2
        assert np.abs(seg[..., 0]).max() <= 0.31 and np.abs(seg[..., 1]).max() <= 0.51


def test_bad_glyph_arguments_raise():
    with pytest.raises(ValueError, match="split"):
        glyph_images("val", 10)
    with pytest.raises(ValueError, match="size"):
        glyph_images("train", 0)
    with pytest.raises(TypeError, match="seed"):
        GlyphsDataset("train", 10, seed=1.5)


# The study ------------------------------------------------------------------------------------------


def _blobs(per_class: int, seed: int, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Linearly separable toy images (N, 1, 2, 4): class c is 3 * e_c plus noise of std 0.3."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat(per_class)
    x = 3.0 * nn.functional.one_hot(y, 8).float() + 0.3 * torch.randn(len(y), 8, generator=gen)
    return x.view(-1, 1, 2, 4), y


def _toy_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 3))  # penultimate features: the flattened input itself


def test_softmax_separates_separable_features_and_reaches_its_optimum():
    x, y = _blobs(5, seed=0)
    w, b = fit_softmax(x.flatten(1), y, 3, weight_decay=1e-3)
    xt, yt = _blobs(50, seed=1)
    assert ((xt.flatten(1) @ w + b).argmax(1) == yt).float().mean() == 1.0
    # The penalised loss is convex: at its minimum its gradient vanishes.
    w, b = w.clone().requires_grad_(), b.clone().requires_grad_()
    loss = nn.functional.cross_entropy(x.flatten(1) @ w + b, y) + 1e-3 * w.square().sum()
    gw, gb = torch.autograd.grad(loss, (w, b))
    assert float(gw.abs().max()) < 1e-4 and float(gb.abs().max()) < 1e-4


def test_study_on_separable_toy_features_reaches_full_accuracy():
    result = generalisation(_toy_model(), _blobs(6, seed=0), _blobs(40, seed=1), shots=(1, 5), seeds=2, epochs=3)
    assert result.shots == (1, 5) and result.frozen.shape == result.scratch.shape == (2, 2)
    assert result.num_classes == 3 and result.test_size == 120
    assert np.all(result.frozen >= 0.98)
    assert np.all((0 <= result.scratch) & (result.scratch <= 1))


def test_the_study_repeats_itself_whatever_ran_before():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    runs = []
    for disturb in (1, 5):
        torch.rand(disturb)  # dropout draws from the global generator: the study must not depend on its state
        runs.append(generalisation(model, _blobs(6, seed=0), _blobs(10, seed=1), shots=(2, 4), seeds=2, epochs=4))
    assert np.array_equal(runs[0].scratch, runs[1].scratch) and np.array_equal(runs[0].frozen, runs[1].frozen)
    assert np.array_equal(runs[0].scratch_fit, runs[1].scratch_fit)
    x, y = _blobs(4, seed=2)
    weights = []
    for disturb in (1, 5):
        torch.rand(disturb)
        net = train_from_scratch(fresh_copy(model, 3, seed=0), x, y, epochs=3, batch_size=4, lr=1e-2,
                                 weight_decay=0.0, augment=1, seed=0)  # fmt: skip
        weights.append(net.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_the_model_is_really_frozen():
    model = pretrained_small()
    model.classifier.train()  # a mixed mode, which the study must give back as it found it
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    train, test = GlyphsDataset("train", 10, seed=0), GlyphsDataset("test", 10, seed=0)
    result = generalisation(model, train, test, shots=(1,), seeds=1, epochs=1, batch_size=5)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bitwise, running statistics included
    assert [m.training for m in model.modules()] == modes
    assert result.frozen.shape == (1, 1) and result.settings["feature_size"] == 256
    # The features are fc7's output: the last Linear maps them to the model's logits.
    model.eval()
    x = normalize(train.pixels[:4])
    features = penultimate_features(model, x)
    with torch.no_grad():
        assert torch.allclose(model.classifier[6](features), model(x), atol=1e-5)


def test_fresh_copy_is_the_same_architecture_with_new_weights():
    model = pretrained_small()
    fresh = fresh_copy(model, 7, seed=0)
    reference = SmallZFNet(num_classes=7).state_dict()
    got = fresh.state_dict()
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in reference.items()}
    assert not torch.equal(got["features.0.weight"], model.state_dict()["features.0.weight"])
    assert torch.equal(got["features.5.running_var"], torch.ones(64))  # BatchNorm statistics reset too
    assert torch.equal(fresh_copy(model, 7, seed=0).state_dict()["classifier.0.weight"], got["classifier.0.weight"])


def _record() -> GeneralisationResult:
    frozen = np.array([[0.3, 0.5], [0.6, 0.8]])
    scratch = np.array([[0.1, 0.1], [0.2, 0.4]])
    fit = np.array([[1.0, 1.0], [0.9, 0.92]])
    return GeneralisationResult((1, 5), frozen, scratch, fit, 10, 500, {"dataset": "glyphs"}, 1.5)


def test_result_table_figure_and_record(tmp_path):
    result = _record()
    assert result.mean("frozen") == pytest.approx([0.4, 0.7])
    assert result.std("scratch") == pytest.approx([0.0, 0.1])
    table = result.markdown()
    assert "| 1 | 40.0 ± 10.0 % | 10.0 ± 0.0 % | +30.0 | 100 % |" in table
    assert "| 5 | 70.0 ± 10.0 % | 30.0 ± 10.0 % | +40.0 | 91 % |" in table
    assert "chance 10.0 %" in table
    assert "under 95% of their training examples at 5 per class" in table
    assert "frozen%=[40.0, 70.0]" in repr(result)
    fig = result.render(tmp_path / "curve.png")
    assert_readable(fig)
    assert_png(tmp_path / "curve.png")
    assert isinstance(result.render(), Figure)
    result.save(tmp_path / "record.json")
    back = GeneralisationResult.load(tmp_path / "record.json")
    assert back.shots == result.shots and back.settings == result.settings and back.test_size == 500
    for name in ("frozen", "scratch", "scratch_fit"):
        assert np.array_equal(getattr(back, name), getattr(result, name))
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a generalisation record"):
        GeneralisationResult.load(tmp_path / "other.json")
    with pytest.raises(ValueError, match="method"):
        result.mean("both")


def test_the_bundled_record_loads():
    record = GeneralisationResult.load(RECORD)
    assert record.shots == (1, 5, 15, 30) and record.num_classes == 10
    assert record.frozen.shape == record.scratch.shape == (4, record.seeds)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shots": (0, 5)}, ValueError, "shots"),
        ({"shots": (1, 7)}, ValueError, "shots asks for 7"),
        ({"shots": (True,)}, ValueError, "shots"),
        ({"shots": (2, 2)}, ValueError, "shots"),
        ({"shots": ()}, ValueError, "shots"),
        ({"seeds": 0}, ValueError, "seeds"),
        ({"epochs": 1.5}, ValueError, "epochs"),
        ({"augment": -1}, ValueError, "augment"),
        ({"lr": -1.0}, ValueError, "lr"),
        ({"softmax_weight_decay": float("nan")}, ValueError, "softmax_weight_decay"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        generalisation(_toy_model(), _blobs(6, seed=0), _blobs(5, seed=1), **{"shots": (1,), **kwargs})


def test_bad_models_and_data_raise():
    train, test = _blobs(6, seed=0), _blobs(5, seed=1)
    with pytest.raises(ValueError, match="model must end in an nn.Linear"):
        generalisation(nn.Sequential(nn.Flatten()), train, test, shots=(1,))
    with pytest.raises(ValueError, match="model must end in an nn.Linear"):
        generalisation(nn.Sequential(nn.Flatten(), nn.Linear(8, 3), nn.Softmax(1)), train, test, shots=(1,))
    with pytest.raises(TypeError, match="model"):
        generalisation("small", train, test, shots=(1,))
    with pytest.raises(TypeError, match="train"):
        generalisation(_toy_model(), 5, test, shots=(1,))
    with pytest.raises(ValueError, match="test has label 3"):
        generalisation(_toy_model(), train, (test[0], test[1] + 1), shots=(1,))
    with pytest.raises(ValueError, match="train labels"):
        generalisation(_toy_model(), (train[0], train[1].float()), test, shots=(1,))
    with pytest.raises(ValueError, match="test images"):
        generalisation(_toy_model(), train, (test[0].view(-1, 1, 4, 2), test[1]), shots=(1,))
