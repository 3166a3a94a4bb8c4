"""Images of one class with the positions of its named parts (the correspondence study's data)."""

from __future__ import annotations

import pytest
import torch

from zfaccel.demo import shapes
from zfaccel.demo.drawing import PARTS
from zfaccel.demo.shapes import part_images


@pytest.mark.parametrize("name", list(PARTS))
def test_parts_lie_on_the_object(name):
    data = part_images(name, 12, seed=3)
    assert data.images.shape == (12, 3, 64, 64) and data.images.dtype == torch.float32
    assert list(data.parts) == list(PARTS[name]) and data.masks.shape == (12, 64, 64)
    for part, where in data.parts.items():
        assert where.shape == (12, 2) and where.dtype == torch.float32
        pixel = where.round().long()
        assert ((pixel >= 0) & (pixel <= 63)).all(), part
        # The part's pixel is covered (at least half) by the object.
        assert data.masks[torch.arange(12), pixel[:, 0], pixel[:, 1]].all(), part
    # Parts are spread over the object: each pair of parts is at least 3 px apart in every image.
    points = torch.stack(list(data.parts.values()), 1)  # (12, parts, 2)
    gaps = torch.cdist(points, points) + 100 * torch.eye(points.shape[1])
    assert gaps.min() > 3


def test_deterministic_centred_and_apart_from_the_splits():
    a, b = part_images("square", 6, 0), part_images("square", 6, 0)
    assert torch.equal(a.images, b.images) and all(torch.equal(a.parts[k], b.parts[k]) for k in a.parts)
    assert not torch.equal(a.images, part_images("square", 6, 1).images)
    assert not torch.equal(a.images[0], shapes.normalize(shapes.images("test", 1)[0]))
    # Centred: the object's middle is the image's (32, 32) in drawing coordinates, pixel index 31.5, and
    # the four corners sit symmetrically around it whatever the size and turn.
    centred = part_images("square", 6, 0, centred=True)
    middle = torch.stack(list(centred.parts.values()), 1).mean(1)
    torch.testing.assert_close(middle, torch.full((6, 2), 31.5), atol=1e-4, rtol=0)
    # Top-left corners are up and left of the middle (squares turn by 12 degrees at most).
    assert (centred.parts["top left corner"] < 31.5).all()
    # The same draws otherwise: the corner pixel, which no object reaches, is the uncentred images' own.
    assert torch.equal(centred.images[:, :, 0, 0], a.images[:, :, 0, 0])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"class_name": "circle"}, ValueError, "class_name must be one of star"),
        ({"size": 0}, ValueError, "size must be at least 1"),
        ({"seed": 1.5}, TypeError, "seed must be an int"),
        ({"centred": 1}, TypeError, "centred must be a bool"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        part_images(**{"class_name": "star", "size": 2, **kwargs})
