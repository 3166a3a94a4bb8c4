"""Fig. 6's comparison of first layers: the numbers are filters()'s, the accuracy is counted, the
projections are conv2's receptive fields, and bad input is named."""

from __future__ import annotations

import pytest
import torch
from figure_checks import assert_png, assert_readable

from zfaccel.analysis import compare_first_layers, filters
from zfaccel.models import small_zfnet


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    models = {"5x5 / 2": small_zfnet(10).eval(), "9x9 / 4": small_zfnet(10, first_layer="alexnet").eval()}
    images = torch.randn(12, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    return models, images


def test_numbers_are_the_filter_reports_and_the_counted_accuracy(pair):
    models, images = pair
    with torch.no_grad():
        predicted = models["5x5 / 2"](images).argmax(1)
    labels = predicted.clone()
    labels[:3] = (labels[:3] + 1) % 10  # three wrong for the first model
    result = compare_first_layers(models, images, labels, channels=9)
    assert result.names == ("5x5 / 2", "9x9 / 4") and result.geometry == ("5x5 / 2", "9x9 / 4")
    assert result.accuracy[0] == pytest.approx(9 / 12)
    with torch.no_grad():
        expected = float((models["9x9 / 4"](images).argmax(1) == labels).float().mean())
    assert result.accuracy[1] == pytest.approx(expected)
    for report, model in zip(result.reports, models.values(), strict=True):
        direct = filters(model, "conv1", data=images)
        torch.testing.assert_close(report.concentration, direct.concentration, equal_nan=True)
        assert torch.equal(report.dead, direct.dead) and report.images_seen == 12
    # conv2's receptive field: 5 + 2 * 2 + 2 * 4 = 17 px, and 9 + 2 * 4 + 2 * 8 = 33 px at stride 4.
    assert [tuple(t.shape) for t in result.tiles] == [(9, 3, 17, 17), (9, 3, 33, 33)]
    assert all(float(t.min()) >= 0 and float(t.max()) <= 1 for t in result.tiles)
    table = result.markdown().splitlines()
    assert len(table) == 4 and table[2].startswith("| 5x5 / 2 | 32 x 5x5 / 2 |") and table[2].endswith("| 75.0% |")
    assert "9x9 / 4: 9x9 / 4" in repr(result)


def test_without_labels_no_accuracy_and_the_figure_draws(pair, tmp_path):
    models, images = pair
    result = compare_first_layers(models, images[:4], channels=4)
    assert result.accuracy == (None, None) and "| - |" in result.markdown()
    fig = result.render(tmp_path / "fig6.png")
    assert_readable(fig)
    assert_png(tmp_path / "fig6.png")


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (({}, torch.zeros(2, 3, 64, 64)), {}, "models must be a non-empty mapping"),
        (("m", torch.zeros(2, 3, 64, 64)), {}, "models must be a non-empty mapping"),
        (
            (None, torch.zeros(3, 64, 64)),
            {},
            r"images must be a float tensor \(N, C, H, W\) with N >= 1, got \(3, 64, 64\)",
        ),
        ((None, torch.zeros(2, 3, 64, 64, dtype=torch.uint8)), {}, "images must be a float tensor"),
        (
            (None, torch.zeros(2, 3, 64, 64), [1, 2, 3]),
            {},
            r"labels must give one class per image \(2\), got 3",
        ),
        ((None, torch.zeros(2, 3, 64, 64)), {"channels": 0}, "channels must be a positive int, got 0"),
    ],
)
def test_bad_input_is_named(pair, args, kwargs, match):
    models, _ = pair
    args = (models if args[0] is None else args[0], *args[1:])
    with pytest.raises(ValueError, match=match):
        compare_first_layers(*args, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="need a CUDA GPU (none on this machine)")
def test_on_a_gpu_the_numbers_are_the_cpu_ones(pair):
    models, images = pair
    labels = torch.arange(len(images)) % 10
    cpu = compare_first_layers(models, images, labels, channels=4)
    gpu = compare_first_layers({k: m.cuda() for k, m in models.items()}, images.cuda(), labels, channels=4)
    for m in models.values():
        m.cpu()
    assert gpu.accuracy == cpu.accuracy
    for a, b in zip(gpu.reports, cpu.reports, strict=True):
        torch.testing.assert_close(a.concentration, b.concentration, equal_nan=True)
        assert torch.equal(a.dead, b.dead)
    for a, b in zip(gpu.tiles, cpu.tiles, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
