"""Named feature layers, the fully connected ones included, and the hooked forward that reads them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zfaccel.analysis.feature_layers import default_layers, features_at, resolve_layers
from zfaccel.models import pretrained_small, zfnet


def test_names_of_the_demo_model_and_zfnet():
    for model in (pretrained_small(), zfnet()):
        assert default_layers(model) == ("conv5", "penultimate")
        layers = resolve_layers(model, ["conv5", "penultimate", "fc6", "fc8", "pool5"])
        assert [f.name for f in layers] == ["conv5", "fc7", "fc6", "fc8", "pool5"]
        # fc7 is the ReLU after the second Linear, fc8 the last Linear itself.
        assert layers[1].module is model.classifier[4] and layers[3].module is model.classifier[6]
        assert layers[0].module is model.features[len(model.features) - 2]


def test_features_at_matches_the_model(gen):
    model = pretrained_small().eval()
    x = torch.randn(3, 3, 64, 64, generator=gen)
    with torch.no_grad():
        got = features_at(model, x, resolve_layers(model, ["conv5", "fc7", "fc8"]))
        conv5 = model.features[:-1](x)  # the last module is pool5
        fc7 = model.classifier[:5](model.features(x).flatten(1))
        torch.testing.assert_close(got["conv5"], conv5.flatten(1))
        torch.testing.assert_close(got["fc7"], fc7)  # a copy: the in-place ReLU after it changed nothing
        torch.testing.assert_close(got["fc8"], model(x))


def test_conv_only_model_and_errors():
    relu = nn.ReLU()
    shared = nn.Sequential(nn.Conv2d(1, 2, 3), relu, nn.Conv2d(2, 2, 3), relu)
    assert default_layers(shared) == ("conv2",)
    with pytest.raises(ValueError, match="ran 2 times"):
        features_at(shared, torch.ones(1, 1, 8, 8), resolve_layers(shared, ["conv1"]))
    with pytest.raises(ValueError, match="unknown layer 'fc7' in layers"):
        resolve_layers(shared, ["fc7"])
    with pytest.raises(ValueError, match="unknown layer 'penultimate'"):
        resolve_layers(shared, ["penultimate"])
    with pytest.raises(ValueError, match="layers must be a non-empty list"):
        resolve_layers(shared, [])
    with pytest.raises(TypeError, match="layers must be a non-empty list"):
        resolve_layers(shared, "conv1")
