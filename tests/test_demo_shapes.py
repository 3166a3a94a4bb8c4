"""The generated shapes data: deterministic, balanced, disjoint splits, normalised as the model expects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zfaccel.demo import shapes
from zfaccel.demo.drawing import draw
from zfaccel.demo.shapes import CLASSES, MEAN, STD, ShapesDataset
from zfaccel.models import small_zfnet
from zfaccel.models.preprocessing import preprocessing_for


def test_items_shape_dtype_and_labels():
    data = ShapesDataset("test", 30)
    image, label = data[12]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert isinstance(label, int) and label == 12 % len(CLASSES)
    assert data.pixels.shape == (30, 3, 64, 64) and data.pixels.dtype == torch.uint8
    assert data.targets.dtype == torch.int64 and len(data) == 30
    assert len(CLASSES) >= 10 and len(set(CLASSES)) == len(CLASSES)


def test_deterministic_and_prefix_stable():
    labels = np.arange(20) % len(CLASSES)
    rng = lambda seed: np.random.default_rng([seed, 1, 0])
    assert np.array_equal(draw(labels, rng(7)), draw(labels, rng(7)))
    assert not np.array_equal(draw(labels, rng(7)), draw(labels, rng(8)))
    # The training split's second chunk, drawn afresh, is images 500..999 of the cached split,
    # so a smaller size is a prefix of a larger one. (Chunks of 500: the drawing is most of the cost.)
    cached = shapes.images("train", 1_000)
    assert torch.equal(shapes._chunk("train", 0, 1), cached[500:])
    assert torch.equal(ShapesDataset("train", 40).pixels, cached[:40])


def test_the_images_stay_the_ones_the_bundled_model_was_trained_and_measured_on():
    """Refactors of the drawing code must keep the data: the bundled weights, the benchmarks' SSIM and the
    studies' numbers were made on these images. Tolerant of a rare pixel moving one level (float32 sin and
    hypot may differ in the last bit between platforms), not of any real change."""
    test, train = shapes.images("test", 64, 0).long(), shapes.images("train", 64, 0).long()
    assert abs(int(test.sum()) - 99_894_430) < 1_000 and abs(int(train.sum()) - 107_083_935) < 1_000
    pixels = {(0, 10, 10): [228, 143, 177], (5, 32, 32): [220, 137, 114], (63, 50, 20): [39, 97, 21]}
    for (i, r, c), rgb in pixels.items():
        assert (test[i, :, r, c] - torch.tensor(rgb)).abs().max() <= 1, (i, r, c)


def test_classes_are_balanced():
    counts = torch.bincount(shapes.labels(1_005), minlength=len(CLASSES))
    assert counts.max() - counts.min() <= 1 and counts.sum() == 1_005
    assert torch.equal(ShapesDataset("test", 30).targets, shapes.labels(30))


def test_train_and_test_share_no_image():
    train, test = ShapesDataset("train", 500).pixels, ShapesDataset("test", 500).pixels
    train_keys = {hash(img.numpy().tobytes()) for img in train}
    assert not any(hash(img.numpy().tobytes()) in train_keys for img in test)
    assert len(train_keys) == 500  # no duplicates within a split either


def test_normalisation_constants_match_the_data():
    mean, std = shapes.measure_stats(ShapesDataset("train", 1_000).pixels)
    # Background colours are drawn per image, so 1,000 images are ~1,000 samples: the mean of a
    # channel wanders by 0.29 / sqrt(1000) = 0.009 (one sigma); 0.03 is over three sigma.
    assert np.allclose(mean, MEAN, atol=0.03) and np.allclose(std, STD, atol=0.03)
    x = torch.stack([ShapesDataset("train", 1_000)[i][0] for i in range(0, 1_000, 10)])
    per_channel = x.transpose(0, 1).reshape(3, -1)
    assert per_channel.mean(1).abs().max() < 0.15 and (per_channel.std(1) - 1).abs().max() < 0.15


def test_model_declares_the_shapes_preprocessing():
    prep = preprocessing_for(small_zfnet())
    assert (prep.size, prep.mean, prep.std) == (64, MEAN, STD)
    assert small_zfnet().classifier[-1].out_features == len(CLASSES)
    pixels = ShapesDataset("test", 2).pixels
    torch.testing.assert_close(prep.normalize(pixels.float() / 255), shapes.normalize(pixels))


def test_objects_stand_out_and_vary_in_colour():
    data = ShapesDataset("train", 200)
    px = data.pixels.float() / 255
    # Each image spans a real range (an object on a background), and colour is no class cue:
    # the mean colour of one class spreads as widely as that of all images.
    assert (px.amax((1, 2, 3)) - px.amin((1, 2, 3))).min() > 0.3
    means = px.mean((2, 3))
    assert means[data.targets == 0].std(0).min() > 0.5 * means.std(0).min()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"split": "val"}, ValueError, "split must be 'train' or 'test'"),
        ({"size": 0}, ValueError, "size must be at least 1"),
        ({"size": 2.5}, TypeError, "size must be an int"),
        ({"seed": -1}, ValueError, "seed must be at least 0"),
        ({"seed": "0"}, TypeError, "seed must be an int"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ShapesDataset(**{"split": "train", "size": 10, **kwargs})


def test_index_out_of_range():
    data = ShapesDataset("test", 5)
    with pytest.raises(IndexError, match="out of range for 5 images"):
        data[5]
    assert data[-1][1] == 4
