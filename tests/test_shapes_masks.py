"""Object masks of the shapes data: where each generated image's object is, the images left unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zfaccel.demo import shapes
from zfaccel.demo.drawing import draw, draw_with_coverage


def test_images_are_unchanged():
    """The first 20 test images add up to what they did before masks existed (29,351,503: any change in
    the order random numbers are drawn would move it by far more than the tolerance of a few pixels
    one level off between platforms), and drawing with coverage gives draw's images."""
    assert abs(int(shapes.images("test", 20).long().sum()) - 29_351_503) < 100
    labels = np.arange(30) % len(shapes.CLASSES)
    images, coverage = draw_with_coverage(labels, np.random.default_rng([4, 1, 0]))
    assert np.array_equal(images, draw(labels, np.random.default_rng([4, 1, 0])))
    assert coverage.shape == (30, 64, 64) and coverage.dtype == np.float32
    assert coverage.min() >= 0 and coverage.max() <= 1


def test_masks_cover_the_objects():
    """Inside each mask (eroded by 1 px, past the anti-aliased edge) a picture is one colour plus the
    2 % pixel noise (5 levels): at most 8 levels of spread per channel; the same mask moved 12 px
    lands on background and clutter (a median spread of about 57 levels). 600 images: two chunks."""
    pixels = shapes.images("test", 600).float()
    masks = shapes.object_masks("test", 600)
    assert masks.shape == (600, 64, 64) and masks.dtype == torch.bool
    assert torch.equal(shapes.object_masks("test", 30), masks[:30])  # a prefix, as the images are
    interior = -F.max_pool2d(-masks[:, None].float(), 3, 1, 1)[:, 0] > 0

    def spread(where: torch.Tensor) -> torch.Tensor:
        return torch.stack([pixels[i][:, where[i]].std(1).max() for i in range(len(pixels))])

    assert bool((interior.flatten(1).sum(1) >= 20).all())  # every object has an inside
    assert float(spread(interior).max()) < 8
    assert float(spread(interior.roll(12, 2)).median()) > 20
    share = masks.float().mean()
    assert 0.05 < share < 0.2  # radii of 11-21 px on 64 x 64: about 10 % of the pixels


def test_bad_arguments():
    with pytest.raises(ValueError, match="split must be"):
        shapes.object_masks("val", 10)
    with pytest.raises(ValueError, match="size must be at least 1"):
        shapes.object_masks("test", 0)
    with pytest.raises(TypeError, match="seed must be an int"):
        shapes.object_masks("test", 10, seed=1.5)
