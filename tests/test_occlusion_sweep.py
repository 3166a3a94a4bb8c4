"""Occlusion.sweep: the grid, the three maps and the clean values against brute force, the defaults,
and errors that name the bad argument."""

from __future__ import annotations

import pytest
import torch
from occlusion_support import build, reference

import zfaccel
from zfaccel.analysis import Occlusion, OcclusionResult
from zfaccel.analysis.occlusion.figures import verdict
from zfaccel.analysis.occlusion.grid import default_geometry, default_window, grid
from zfaccel.models import split_model


@pytest.fixture(scope="module")
def vgg():
    return build("vgg", seed=5)[0]


@pytest.mark.parametrize(
    "size,window,stride,expected",
    [
        ((32, 32), (8, 8), (4, 4), (7, 7)),
        ((32, 20), (8, 5), (3, 4), (9, 4)),
        ((10, 10), (10, 10), (3, 3), (1, 1)),
        ((11, 9), (4, 4), (7, 2), (2, 3)),
    ],  # fmt: skip
)
def test_grid_keeps_the_window_inside(size, window, stride, expected):
    assert grid(size, window, stride) == expected


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full"])
def test_maps_match_brute_force(vgg, gen, incremental):
    images = torch.randn(2, 3, 32, 32, generator=gen)
    target = [1, 3]
    res = Occlusion(vgg).sweep(images, target=target, window=(8, 6), stride=(4, 5), baseline=0.25,
                               feature_layer="conv2", incremental=incremental)  # fmt: skip
    assert isinstance(res, OcclusionResult) and res.grid_shape == (7, 6)
    assert res.window == (8, 6) and res.stride == (4, 5) and res.feature_layer == "conv2"
    plain = split_model(vgg)
    tap = plain.resolve("conv2")
    baseline = torch.full_like(images, 0.25)
    positions = torch.tensor([(b, i * 4, j * 5) for b in range(2) for i in range(7) for j in range(6)])
    logits, feats = reference(vgg, images, baseline, positions, (8, 6), tap, plain.features)
    prob = torch.softmax(logits, 1)
    t = torch.tensor(target)[positions[:, 0]]
    torch.testing.assert_close(res.prob.flatten(), prob[torch.arange(len(t)), t], rtol=0, atol=1e-5)
    assert torch.equal(res.label.flatten(), logits.argmax(1))
    with torch.no_grad():
        clean = vgg(images)
        maps = images
        for m in list(plain.features)[: tap + 1]:
            maps = m(maps)
    channel = maps.amax((2, 3)).argmax(1)
    assert torch.equal(res.feature_channel, channel)
    ref_feature = feats[torch.arange(len(t)), channel[positions[:, 0]]]
    torch.testing.assert_close(res.feature.flatten(), ref_feature, rtol=1e-5, atol=1e-4)
    assert torch.equal(res.target, torch.tensor(target))
    torch.testing.assert_close(res.clean_prob, torch.softmax(clean, 1)[[0, 1], target], rtol=0, atol=1e-6)
    assert torch.equal(res.clean_label, clean.argmax(1))
    torch.testing.assert_close(res.clean_feature, maps.sum((2, 3))[[0, 1], channel], rtol=1e-5, atol=1e-5)
    assert res.images.dtype == torch.float32 and res.images.shape == images.shape


def test_defaults_target_the_clean_prediction_with_a_zero_baseline(vgg, gen):
    images = torch.randn(2, 3, 32, 32, generator=gen)
    occ = Occlusion(vgg)
    res = occ.sweep(images, window=16, stride=8)
    assert res.grid_shape == (3, 3) and res.feature_layer == "conv5"
    assert torch.equal(res.target, res.clean_label)
    explicit = occ.sweep(images, target=res.clean_label, window=(16, 16), stride=(8, 8), baseline=0.0)
    torch.testing.assert_close(res.prob, explicit.prob, rtol=0, atol=0)


def test_baseline_forms_agree(vgg, gen):
    images = torch.randn(1, 3, 32, 32, generator=gen)
    occ = Occlusion(vgg)
    colour = [0.5, -0.25, 1.0]
    a = occ.sweep(images, window=8, stride=8, baseline=colour)
    b = occ.sweep(images, window=8, stride=8, baseline=torch.tensor(colour).view(3, 1, 1).expand(3, 32, 32))
    c = occ.sweep(images, window=8, stride=8, baseline=torch.tensor(colour))
    torch.testing.assert_close(a.prob, b.prob, rtol=0, atol=1e-6)
    torch.testing.assert_close(a.prob, c.prob, rtol=0, atol=1e-6)
    grey = occ.sweep(images, window=8, stride=8, baseline=0.5)
    same = occ.sweep(images, window=8, stride=8, baseline=[0.5, 0.5, 0.5])
    torch.testing.assert_close(grey.prob, same.prob, rtol=0, atol=1e-6)


def test_small_max_memory_and_progress_bar_give_the_same_maps(vgg, gen, capsys):
    images = torch.randn(2, 3, 32, 32, generator=gen)
    occ = Occlusion(vgg)
    a = occ.sweep(images, window=8, stride=6, feature_layer=4)
    b = occ.sweep(images, window=8, stride=6, feature_layer=4, max_memory=100_000, show_progress=True)
    c = occ.sweep(images, window=8, stride=6, feature_layer=4, batch_size=7)
    for other in (b, c):
        torch.testing.assert_close(a.prob, other.prob, rtol=0, atol=1e-5)
        torch.testing.assert_close(a.feature, other.feature, rtol=1e-5, atol=1e-4)
    assert "occlusion" in capsys.readouterr().err


def test_whole_image_window_and_a_single_3d_image(gen):
    model, size = build("small", seed=2)
    image = torch.randn(3, size, size, generator=gen)
    res = zfaccel.Occlusion(model).sweep(image, window=size, stride=5, baseline=0.0)
    assert res.grid_shape == (1, 1)
    with torch.no_grad():
        blank = torch.softmax(model(torch.zeros(1, 3, size, size)), 1)[0]
    torch.testing.assert_close(res.prob[0, 0, 0], blank[res.target[0]], rtol=0, atol=1e-6)


def test_zfnet_shaped_sweep_incremental_equals_full(gen):
    model, size = build("zfnet", seed=4)
    images = torch.randn(2, 3, size, size, generator=gen)
    occ = Occlusion(model)
    a = occ.sweep(images, window=64, stride=32)
    b = occ.sweep(images, window=64, stride=32, incremental=False)
    assert a.grid_shape == (6, 6)
    assert (a.prob - b.prob).abs().max() <= 1e-5
    torch.testing.assert_close(a.feature, b.feature, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"window": 33}, ValueError, "window"),
        ({"window": (8, 40)}, ValueError, "window"),
        ({"stride": 0}, ValueError, "stride"),
        ({"stride": (4, -1)}, ValueError, "stride"),
        ({"stride": 2.5}, TypeError, "stride"),
        ({"window": "big"}, TypeError, "window"),
        ({"target": 10}, ValueError, "target"),
        ({"target": [0, -1]}, ValueError, "target"),
        ({"target": [0, 1, 2]}, ValueError, "target"),
        ({"target": torch.tensor([0.5, 1.0])}, TypeError, "target"),
        ({"feature_layer": "conv9"}, ValueError, "feature_layer"),
        ({"feature_layer": 99}, ValueError, "feature_layer"),
        ({"baseline": torch.zeros(2, 3, 5, 5)}, ValueError, "baseline"),
        ({"baseline": "grey"}, TypeError, "baseline"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"max_memory": 0}, ValueError, "max_memory"),
        ({"show_progress": 1}, TypeError, "show_progress"),
    ],
)
def test_bad_arguments_name_themselves(vgg, gen, kwargs, error, match):
    images = torch.randn(2, 3, 32, 32, generator=gen)
    with pytest.raises(error, match=match):
        Occlusion(vgg).sweep(images, **kwargs)


@pytest.mark.parametrize(
    "images,error",
    [
        (torch.zeros(2, 3, 32), ValueError),
        (torch.zeros(2, 1, 32, 32), ValueError),
        (torch.zeros(0, 3, 32, 32), ValueError),
        (torch.zeros(1, 3, 32, 32, dtype=torch.int64), TypeError),
        (torch.zeros(1, 3, 32, 32, dtype=torch.float64), TypeError),
        ([[0.0]], TypeError),
    ],
    ids=["3d-wrong", "channels", "empty", "int", "float64-model-float32", "list"],
)
def test_bad_images(vgg, images, error):
    with pytest.raises(error, match="images"):
        Occlusion(vgg).sweep(images, window=4, stride=4)


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match="model"):
        Occlusion(lambda x: x)


@pytest.mark.parametrize("size, window", [(224, 32), (64, 16), (32, 8), (128, 32), (96, 16), (4, 1)])
def test_default_window_suits_the_image(size, window):
    assert default_window(size) == window
    assert default_geometry((size, size + 50)) == ((window, window), (max(1, window // 4),) * 2)


def test_default_geometry_keeps_what_is_given():
    assert default_geometry((224, 224), window=(16, 8)) == ((16, 8), (4, 2))
    assert default_geometry((224, 224), stride=3) == ((32, 32), (3, 3))
    assert default_geometry((224, 224), window=10, stride=(2, 5)) == ((10, 10), (2, 5))


def test_sweep_defaults_fit_the_image(vgg, gen):
    res = Occlusion(vgg).sweep(torch.randn(1, 3, 32, 32, generator=gen))
    assert res.window == (8, 8) and res.stride == (2, 2) and res.grid_shape == (13, 13)


def test_true_labels_are_the_default_target_and_are_kept(vgg, gen):
    images = torch.randn(2, 3, 32, 32, generator=gen)
    occ = Occlusion(vgg)
    plain = occ.sweep(images, window=16, stride=8)
    with torch.no_grad():
        classes = vgg(images).shape[1]
    labels = [(int(plain.clean_label[0]) + 1) % classes, int(plain.clean_label[1])]  # image 0 misclassified
    res = occ.sweep(images, window=16, stride=8, labels=labels)
    assert res.true_label.tolist() == labels and res.target.tolist() == labels
    assert torch.equal(res.clean_label, plain.clean_label)
    torch.testing.assert_close(res.clean_label_prob, plain.clean_prob, rtol=0, atol=0)  # p(prediction)
    names = [f"n{k}" for k in range(classes)]
    assert verdict(res, 0, names) == (f"true: {names[labels[0]]}, predicted: {names[int(res.clean_label[0])]} "
                                      f"({float(res.clean_label_prob[0]):.2f})")  # fmt: skip
    assert verdict(res, 1, names).startswith(f"{names[labels[1]]} (true and predicted, ")
    assert verdict(plain, 0).startswith(f"predicted: class {int(plain.clean_label[0])} (")
    other = occ.sweep(images, window=16, stride=8, labels=labels, target=1)  # an explicit target wins
    assert other.target.tolist() == [1, 1] and other.true_label.tolist() == labels
    with pytest.raises(ValueError, match="labels"):
        occ.sweep(images, window=16, stride=8, labels=[0])


def test_result_repr_is_one_short_line(vgg, gen):
    res = Occlusion(vgg).sweep(torch.randn(5, 3, 32, 32, generator=gen), window=16, stride=8)
    text = repr(res)
    assert "\n" not in text and len(text) < 200
    assert text.startswith("OcclusionResult(images=5, grid=3x3, window=16x16, stride=8x8") and ", ...]" in text


def test_backend_is_used_and_checked(vgg, gen):
    why = zfaccel.backends.why_unavailable("native", torch.device("cpu"))
    if why:
        pytest.skip(f"the native backend cannot run here: {why}")
    images = torch.randn(1, 3, 32, 32, generator=gen)
    native = Occlusion(vgg, backend="native").sweep(images, window=8, stride=4)
    reference = Occlusion(vgg, backend="torch").sweep(images, window=8, stride=4)
    torch.testing.assert_close(native.prob, reference.prob, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="backend"):
        Occlusion(vgg, backend="cuda")
