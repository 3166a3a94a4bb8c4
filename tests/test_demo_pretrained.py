"""The bundled demo weights classify held-out shapes, and their first layer is the one the paper asks
for: the figures they draw are of a trained model with structured filters."""

from __future__ import annotations

import pytest

from zfaccel.analysis import filters
from zfaccel.demo.shapes import ShapesDataset, normalize
from zfaccel.demo.train import evaluate
from zfaccel.models import pretrained_small

# The first 1,000 test images: never trained on (another seed), 100 per class.
TEST = ShapesDataset("test", 1_000)


@pytest.mark.parametrize("first_layer", ["zfnet", "alexnet"])
def test_bundled_models_reach_90_percent_on_held_out_shapes(first_layer):
    # Random weights score 10 %, so a wrong, stale or untrained file fails here.
    accuracy = evaluate(pretrained_small(first_layer), TEST)
    assert accuracy >= 0.90, f"the bundled {first_layer} weights score {accuracy:.1%} on held-out shapes"


def test_bundled_first_layer_is_structured_and_alive():
    # The bundled model's promise (zfaccel.demo.train): conv1's mean spectral concentration >= 0.75
    # (white noise 0.43 at 5x5) and at most 10 % of its filters dead on held-out images.
    report = filters(pretrained_small(), "conv1", data=normalize(TEST.pixels))
    assert report.mean_concentration >= 0.75, repr(report)
    assert int(report.dead.sum()) <= 0.1 * len(report.norm), repr(report)
