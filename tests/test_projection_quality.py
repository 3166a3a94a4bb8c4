"""Projection quality: the share of a top activation's projection that lies on the object's mask."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from zfaccel.analysis.projection_quality import (
    ProjectionQuality,
    dilate_masks,
    projection_on_object,
    share_on_mask,
    strongest_targets,
)


def dilate_by_shifts(masks: torch.Tensor, pixels: int) -> torch.Tensor:
    """The square dilation by hand: OR of the masks shifted by every (dy, dx) in [-pixels, pixels]^2."""
    n, h, w = masks.shape
    padded = torch.zeros(n, h + 2 * pixels, w + 2 * pixels, dtype=torch.bool)
    padded[:, pixels : pixels + h, pixels : pixels + w] = masks
    out = torch.zeros_like(masks)
    for dy in range(2 * pixels + 1):
        for dx in range(2 * pixels + 1):
            out |= padded[:, dy : dy + h, dx : dx + w]
    return out


def test_dilation(gen):
    masks = torch.rand(3, 17, 13, generator=gen) > 0.97
    for pixels in (0, 1, 2, 3):
        assert torch.equal(dilate_masks(masks, pixels), dilate_by_shifts(masks, pixels))
    one = torch.zeros(1, 10, 10, dtype=torch.bool)
    one[0, 5, 5] = one[0, 0, 9] = True
    grown = dilate_masks(one, 2)[0]
    assert grown[3:8, 3:8].all() and grown[0:3, 7:10].all() and int(grown.sum()) == 25 + 9


def test_share_on_mask_known_answers(gen):
    proj = torch.randn(4, 3, 8, 8, generator=gen)
    inside = torch.zeros(4, 8, 8, dtype=torch.bool)
    inside[:, 2:6, 1:7] = True
    contained = proj * inside[:, None]  # entirely on the mask
    assert torch.equal(share_on_mask(contained, inside), torch.ones(4, dtype=torch.float64))
    assert torch.equal(share_on_mask(proj, torch.ones(4, 8, 8, dtype=torch.bool)), torch.ones(4, dtype=torch.float64))
    assert torch.equal(share_on_mask(proj * ~inside[:, None], inside), torch.zeros(4, dtype=torch.float64))
    # Two pixels, |-3| + |1| on the mask of 3 + 1 + 2 + 2 in all: 4 / 8, signs and channels by absolute value.
    p = torch.zeros(1, 3, 4, 4)
    p[0, 0, 0, 0], p[0, 2, 0, 0], p[0, 1, 3, 3], p[0, 2, 3, 3] = -3.0, 1.0, 2.0, -2.0
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 0, 0] = True
    assert share_on_mask(p, mask).tolist() == [0.5]
    assert math.isnan(float(share_on_mask(torch.zeros(1, 3, 4, 4), mask)[0]))


def test_strongest_targets():
    act = torch.zeros(2, 3, 4, 5)
    act[0, 2, 1, 3] = 5.0
    act[1, 0, 3, 4] = act[1, 1, 0, 0] = 2.0  # a tie: the first in (channel, row, col) order
    assert strongest_targets(act).tolist() == [[0, 2, 1, 3], [1, 0, 3, 4]]


def one_by_one() -> nn.Sequential:
    """A 1x1 convolution summing the colours, then ReLU: an activation's projection is its own pixel."""
    conv = nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    return nn.Sequential(conv, nn.ReLU())


@pytest.mark.parametrize("method", ["deconvnet", "saliency"])
def test_a_projection_on_or_off_the_object(method):
    """The brightest pixel is the strongest activation and its whole projection: 1 where the mask (grown
    by 2 px) reaches it, 0 where it does not."""
    images = torch.zeros(3, 3, 12, 12)
    images[:, :, 6, 6] = 1.0
    masks = torch.zeros(3, 12, 12, dtype=torch.bool)
    masks[0, 6, 6] = True  # on it
    masks[1, 8, 8] = True  # 2 px away diagonally: on it once grown
    masks[2, 9, 6] = True  # 3 px away: off
    result = projection_on_object(one_by_one(), images, masks, layers=("conv1",), method=method)
    assert isinstance(result, ProjectionQuality)
    assert result.per_image["conv1"].tolist() == [1.0, 1.0, 0.0]
    assert result.share["conv1"] == pytest.approx(2 / 3)
    assert result.mask_share == pytest.approx(25 / 144)
    assert projection_on_object(one_by_one(), images, masks, ("conv1",), dilate=0).per_image["conv1"].tolist() == [
        1.0, 0.0, 0.0]  # fmt: skip


def small_net(gen) -> nn.Sequential:
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    bn = nn.BatchNorm2d(6)
    with torch.no_grad():
        bn.running_var.uniform_(0.3, 3.0)
        bn.weight.uniform_(-2.0, 2.0)
    return nn.Sequential(nn.Conv2d(3, 6, 5, padding=2), bn, nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2)).eval()  # fmt: skip


def test_whole_image_masks_give_1_and_conv1_methods_agree(gen):
    """Masks of the whole image hold every projection. At conv1 a single activation's deconvnet projection
    and its input gradient are both the (BatchNorm-folded) filter, scaled: the same shares."""
    model = small_net(gen)
    images = torch.randn(4, 3, 20, 20, generator=gen)
    full = torch.ones(4, 20, 20, dtype=torch.bool)
    for method in ("deconvnet", "saliency"):
        result = projection_on_object(model, images, full, ("conv1", "conv2", "pool2"), method=method)
        assert result.share == {"conv1": 1.0, "conv2": 1.0, "pool2": 1.0} and result.mask_share == 1.0
    masks = torch.rand(4, 20, 20, generator=gen) > 0.9
    deconv = projection_on_object(model, images, masks, ("conv1",), dilate=1, batch_size=3)
    saliency = projection_on_object(model, images, masks, ("conv1",), dilate=1, method="saliency")
    torch.testing.assert_close(deconv.per_image["conv1"], saliency.per_image["conv1"])
    assert repr(deconv).startswith("ProjectionQuality(deconvnet, dilate 1: conv1 ")


BAD = [
    (dict(masks=torch.ones(2, 8, 8)), TypeError, "masks must be a bool tensor"),
    (dict(masks=torch.ones(2, 8, 9, dtype=torch.bool)), ValueError, r"masks must be \(N, H, W\) = \(2, 8, 8\)"),
    (dict(masks=torch.ones(3, 8, 8, dtype=torch.bool)), ValueError, "masks must be"),
    (dict(images=torch.ones(2, 3, 8, 8, dtype=torch.long)), TypeError, "images must be a float tensor"),
    (dict(layers=("conv7",)), ValueError, "unknown layers 'conv7'"),
    (dict(layers=()), ValueError, "layers must be a non-empty"),
    (dict(dilate=-1), ValueError, "dilate must be"),
    (dict(dilate=1.5), ValueError, "dilate must be"),
    (dict(method="gradcam"), ValueError, "method must be one of deconvnet, saliency"),
    (dict(batch_size=0), ValueError, "batch_size"),
]


@pytest.mark.parametrize("override, exc, match", BAD, ids=[f"{next(iter(b[0]))}-{i}" for i, b in enumerate(BAD)])
def test_bad_input(override, exc, match):
    args = dict(model=one_by_one(), images=torch.rand(2, 3, 8, 8), masks=torch.ones(2, 8, 8, dtype=torch.bool),
                layers=("conv1",))  # fmt: skip
    args.update(override)
    with pytest.raises(exc, match=match):
        projection_on_object(**args)
