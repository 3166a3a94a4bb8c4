"""zfaccel.metrics.ssim equals scikit-image's structural_similarity on random and real occlusion maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zfaccel.metrics import ssim
from zfaccel.metrics.ssim import window_size

skimage_metrics = pytest.importorskip("skimage.metrics", reason="scikit-image (the test extra) is not installed")


def reference(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """scikit-image's SSIM in float64 (it computes float32 maps in float32; ours always in float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return skimage_metrics.structural_similarity(a, b, data_range=data_range, win_size=window_size(*a.shape))


@pytest.mark.parametrize("shape", [(13, 13), (25, 25), (7, 9), (5, 6), (3, 3), (40, 17)])
def test_equals_scikit_image_on_random_maps(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.random(shape)
    b = np.clip(a + 0.2 * rng.standard_normal(shape), 0, 1)
    assert float(ssim(a, b, data_range=1.0)) == pytest.approx(reference(a, b, 1.0), abs=1e-12)
    spread = max(a.max(), b.max()) - min(a.min(), b.min())
    assert float(ssim(a, b)) == pytest.approx(reference(a, b, spread), abs=1e-12)


def test_equals_scikit_image_on_occlusion_maps():
    import zfaccel
    from zfaccel.demo.shapes import demo_test_set

    data = demo_test_set(4)
    images = torch.stack([data[i][0] for i in range(4)])
    occ = zfaccel.Occlusion(zfaccel.models.pretrained_small())
    exact = occ.sweep(images).prob.numpy()
    coarse = occ.sweep(images, stride=8).prob
    rough = torch.nn.functional.interpolate(coarse[:, None], size=exact.shape[-2:], mode="bilinear")[:, 0].numpy()
    batch = ssim(rough, exact, data_range=1.0)
    assert batch.shape == (4,)
    for i in range(4):
        assert float(batch[i]) == pytest.approx(reference(rough[i], exact[i], 1.0), abs=1e-12)


def test_identical_maps_and_batches():
    a = torch.rand(3, 10, 12)
    assert torch.allclose(ssim(a, a), torch.ones(3, dtype=torch.float64))
    assert float(ssim(torch.zeros(8, 8), torch.zeros(8, 8))) == 1.0
    assert ssim(a[0], a[0].clone()).dim() == 0


@pytest.mark.parametrize("a, b, kwargs, error, match", [
    (np.zeros((4, 4)), np.zeros((4, 5)), {}, ValueError, "same shape"),
    (np.zeros((2, 2)), np.zeros((2, 2)), {}, ValueError, "at least 3 x 3"),
    (np.zeros((4,)), np.zeros((4,)), {}, ValueError, "map"),
    (np.zeros((4, 4)), np.zeros((4, 4)), {"data_range": 0}, ValueError, "data_range"),
    (np.zeros((4, 4), dtype=bool), np.zeros((4, 4), dtype=bool), {}, TypeError, "numbers"),
])  # fmt: skip
def test_bad_input_names_the_argument(a, b, kwargs, error, match):
    with pytest.raises(error, match=match):
        ssim(a, b, **kwargs)
