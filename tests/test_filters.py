"""Filter statistics (paper Fig. 6): spectral concentration, norms, BatchNorm folding, dead filters, figure."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from figure_checks import assert_png, assert_readable
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from zfaccel.analysis.filters import FilterReport, filters, noise_concentration, spectral_concentration


def concentration_by_hand(w: np.ndarray) -> float:
    """The definition, one channel at a time: mean removed, |DFT|^2, 4 largest over the total,
    channels weighted by their energy (sum of top-4 energies over the sum of energies)."""
    top = total = 0.0
    for channel in w.astype(np.float64):
        power = np.abs(np.fft.fft2(channel - channel.mean())) ** 2
        top += np.sort(power.ravel())[-4:].sum()
        total += power.sum()
    return top / total


def gabor(k: int, theta: float, phase: float) -> torch.Tensor:
    """A k x k Gabor: Gaussian envelope sigma 0.3 k, carrier wavelength 0.4 k, orientation theta."""
    y, x = torch.meshgrid(torch.arange(k) - (k - 1) / 2, torch.arange(k) - (k - 1) / 2, indexing="ij")
    along = x * math.cos(theta) + y * math.sin(theta)
    return torch.exp(-(x**2 + y**2) / (2 * (0.3 * k) ** 2)) * torch.cos(2 * math.pi * along / (0.4 * k) + phase)


def conv_model(weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Sequential:
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[-1])
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias if bias is not None else torch.zeros(len(weight)))
    return nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))


def test_white_noise_matches_the_definition_and_its_calibration(gen):
    """Per filter, the same number as an independent per-channel numpy computation; on average 0.434 at
    5x5 (Monte-Carlo over 50,000 channels; the per-filter spread is 0.06, so the mean of 2000 filters has
    a standard error of 0.0015 and lies within 0.01 of it)."""
    noise = torch.randn(2000, 3, 5, 5, generator=gen)
    ours = spectral_concentration(noise)
    by_hand = np.array([concentration_by_hand(w) for w in noise[:200].numpy()])
    np.testing.assert_allclose(ours[:200].numpy(), by_hand, rtol=1e-5)
    assert abs(float(ours.mean()) - 0.434) < 0.01
    assert abs(noise_concentration(5, 5) - 0.434) < 0.005
    # Larger filters spread noise over more coefficients: 0.27 at 7x7, 0.14 at 11x11.
    assert abs(noise_concentration(7, 7) - 0.273) < 0.005 and abs(noise_concentration(11, 11) - 0.139) < 0.005


@pytest.mark.parametrize("k", [5, 7])
def test_gabor_scores_about_0_86(k):
    """8 orientations x 4 phases: 0.858 on average at 5x5 and 7x7; every 7x7 one above the 0.6 threshold."""
    bank = torch.stack([gabor(k, t * math.pi / 8, p * math.pi / 4) for t in range(8) for p in range(4)])
    c = spectral_concentration(bank[:, None].expand(-1, 3, -1, -1))
    by_hand = np.array([concentration_by_hand(w) for w in bank[:, None].numpy()])
    np.testing.assert_allclose(c.numpy(), by_hand, rtol=1e-5)
    assert 0.83 < float(c.mean()) < 0.89
    if k == 7:
        assert bool((c > 0.6).all())


def test_a_single_dft_mode_scores_1():
    """cos(2 pi (2 x + y) / 5): its energy sits in one conjugate pair of coefficients, 2 of the 4 counted;
    each channel a different mode, with a different gain."""
    y, x = torch.meshgrid(torch.arange(5.0), torch.arange(5.0), indexing="ij")
    modes = [
        torch.cos(2 * math.pi * (2 * x + y) / 5),
        3 * torch.sin(2 * math.pi * x / 5),
        -torch.cos(2 * math.pi * y / 5),
    ]
    c = spectral_concentration(torch.stack(modes)[None] + 7.0)  # plus a constant: the mean is removed
    torch.testing.assert_close(c, torch.ones(1), rtol=0, atol=1e-6)


def test_a_filter_without_spatial_structure_is_nan_and_not_unstructured():
    """Constant per channel (only the means) or all zero: NaN, not flagged, out of the mean; a constant
    channel beside a structured one weighs nothing (zero energy)."""
    weight = torch.zeros(4, 3, 5, 5)
    weight[0] = torch.tensor([1.0, -2.0, 0.5]).view(3, 1, 1)  # a colour: constant per channel
    weight[2] = gabor(5, 0.0, 0.0)  # structured
    weight[3, 0] = 4.0
    weight[3, 1] = gabor(5, 0.0, 0.0)  # the same Gabor in one channel, a constant in another
    report = filters(conv_model(weight), "conv1", fold_bn=False)
    c = report.concentration
    assert c[0].isnan() and c[1].isnan() and not c[2].isnan()
    torch.testing.assert_close(c[3], c[2])
    assert report.unstructured.tolist() == [False, False, bool(c[2] < 0.6), bool(c[2] < 0.6)]
    assert report.mean_concentration == pytest.approx(float(c[2]))


def test_norm_and_batch_norm_folding(gen):
    """Norms are the L2 norms of W * gamma / sqrt(running_var + eps) per output channel (fold_bn, the
    default) or of W; the concentration is the same either way (a scale per filter)."""
    conv, bn = nn.Conv2d(3, 6, 5), nn.BatchNorm2d(6)
    with torch.no_grad():
        bn.running_var.copy_(torch.rand(6, generator=gen) * 4 + 0.05)
        bn.weight.copy_(torch.randn(6, generator=gen))
    model = nn.Sequential(conv, bn, nn.ReLU())
    folded, plain = filters(model), filters(model, fold_bn=False)
    manual = conv.weight.detach() * (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().view(6, 1, 1, 1)
    torch.testing.assert_close(folded.weights, manual)
    torch.testing.assert_close(folded.norm, manual.flatten(1).norm(dim=1))
    torch.testing.assert_close(plain.weights, conv.weight.detach())
    torch.testing.assert_close(plain.norm, torch.sqrt((conv.weight.detach() ** 2).sum((1, 2, 3))))
    torch.testing.assert_close(folded.concentration, plain.concentration, rtol=1e-5, atol=1e-6)
    assert folded.folded and not plain.folded
    assert not filters(conv_model(conv.weight.detach())).folded  # no BatchNorm to fold


def test_dead_filters(gen):
    """Filter 2's bias of -1000 keeps it below zero on every image: dead. Filter 1 fires at 5 % of the
    others' strength: alive at the default 1 %, dead at 10 %. Every form of data gives the same answer."""
    weight = torch.rand(4, 3, 5, 5, generator=gen) + 0.5  # positive: positive images make them fire
    weight[1] *= 0.05
    bias = torch.tensor([0.0, 0.0, -1000.0, 0.0])
    model = conv_model(weight, bias)
    images = torch.rand(12, 3, 12, 12, generator=gen) + 0.1
    report = filters(model, "conv1", images, batch_size=5)
    assert report.dead.tolist() == [False, False, True, False] and report.images_seen == 12
    assert filters(model, "conv1", images, dead_below=0.1).dead.tolist() == [False, True, True, False]
    labels = torch.zeros(12, dtype=torch.long)
    for data in ([images[:7], images[7:]], TensorDataset(images, labels), DataLoader(TensorDataset(images, labels),
                 batch_size=4)):  # fmt: skip
        assert filters(model, "conv1", data).dead.tolist() == [False, False, True, False]


def test_dead_is_measured_after_the_relu_of_a_named_layer(gen):
    """Addressed by name or by index (the Conv2d itself), the second convolution's dead test reads the
    map after its ReLU: filter 1 (bias -1e4) is dead, the others are not."""
    conv2 = nn.Conv2d(2, 3, 5)
    with torch.no_grad():
        conv2.bias.copy_(torch.tensor([0.0, -1e4, 0.0]))
        conv2.weight.copy_(torch.rand(3, 2, 5, 5, generator=gen))
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(), conv2, nn.ReLU())
    images = torch.randn(4, 3, 8, 8, generator=gen)
    by_name, by_index = filters(model, "conv2", images), filters(model, 2, images)
    assert by_name.layer == by_index.layer == "conv2"
    assert by_name.dead.tolist() == by_index.dead.tolist() == [False, True, False]
    torch.testing.assert_close(by_name.weights, conv2.weight.detach())


BAD = [
    (dict(layer="conv9"), ValueError, "unknown layer 'conv9'"),
    (dict(layer="pool1"), ValueError, "layer 'pool1' is not a convolution"),
    (dict(layer=1), ValueError, r"layer=1 is features\[1\], a ReLU, not a Conv2d"),
    (dict(layer=7), ValueError, "out of range"),
    (dict(data=torch.rand(2, 1, 10, 10)), ValueError, r"data must be images \(N, 3, H, W\)"),
    (dict(data=torch.rand(3, 10, 10)), ValueError, "data must be images"),
    (dict(data=torch.ones(2, 3, 10, 10, dtype=torch.uint8)), TypeError, "data must hold float"),
    (dict(data=[]), ValueError, "data holds no images"),
    (dict(data=5), TypeError, "data must be an image tensor"),
    (dict(data=torch.rand(2, 3, 3, 3)), ValueError, "data images of"),
    (dict(threshold=1.5), ValueError, "threshold must be"),
    (dict(dead_below=-0.1), ValueError, "dead_below must be"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(fold_bn="yes"), TypeError, "fold_bn must be a bool"),
]


@pytest.mark.parametrize("override, exc, match", BAD, ids=[f"{next(iter(b[0]))}-{i}" for i, b in enumerate(BAD)])
def test_bad_input(override, exc, match, gen):
    args = dict(model=conv_model(torch.randn(4, 3, 5, 5, generator=gen)), layer="conv1", data=None)
    args.update(override)
    with pytest.raises(exc, match=match):
        filters(**args)


def test_not_a_cnn():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        filters("model")


def test_small_filters_warn_that_noise_scores_high(gen):
    """At 3x3 white noise scores 0.79, above the 0.6 threshold: the flag means nothing there."""
    with pytest.warns(UserWarning, match=r"white noise already has a concentration of 0\.79"):
        filters(conv_model(torch.randn(4, 3, 3, 3, generator=gen)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        filters(conv_model(torch.randn(4, 3, 5, 5, generator=gen)))


def test_repr_and_render(gen, tmp_path):
    weight = torch.randn(6, 3, 5, 5, generator=gen)
    weight[0] = gabor(5, 0.3, 0.0)
    model = conv_model(weight, torch.tensor([0.0, -1e4, 0.0, 0.0, 0.0, 0.0]))
    report = filters(model, "conv1", torch.rand(3, 3, 12, 12, generator=gen))
    assert isinstance(report, FilterReport)
    unstructured, mean = int((report.concentration < 0.6).sum()), float(report.concentration.mean())
    assert repr(report) == (f"FilterReport(conv1: 6 filters 5x5, mean concentration {mean:.2f}, 1 dead, "
                            f"{unstructured} unstructured)")  # fmt: skip
    path = tmp_path / "filters.png"
    fig = report.render(path)
    assert_readable(fig)
    assert_png(path)
    assert "1 dead" in fig._suptitle.get_text()
    grey = filters(nn.Sequential(nn.Conv2d(2, 4, 5), nn.ReLU())).render()  # 2 input channels: shown in grey
    assert "mean over the 2 input channels" in grey.axes[0].get_title()
    with pytest.raises(ValueError, match="columns must be"):
        report.render(columns=0)
