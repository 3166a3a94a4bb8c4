"""The bundled demo weights classify held-out shapes: the figures they draw are of a trained model."""

from __future__ import annotations

from zfaccel.demo.shapes import ShapesDataset
from zfaccel.demo.train import evaluate
from zfaccel.models import pretrained_small


def test_bundled_model_reaches_90_percent_on_held_out_shapes():
    # The first 1,000 test images: never trained on (another seed), 100 per class. Random
    # weights score 10 %, so a wrong, stale or untrained file fails here.
    accuracy = evaluate(pretrained_small(), ShapesDataset("test", 1_000))
    assert accuracy >= 0.90, f"the bundled weights score {accuracy:.1%} on held-out shapes"
