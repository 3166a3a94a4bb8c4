"""pytest-benchmark entry for DeconvNet projections: ``pytest bench --benchmark-enable``.

ZFNet conv5, one 224 px image, 16 channels (mode "max"); Captum's NeuronDeconvolution
on one of those targets for scale. Full tables: ``zfaccel bench --ops deconvnet``.
"""

from __future__ import annotations

import pytest
import torch

from zfaccel.analysis import DeconvNet
from zfaccel.bench.deconvnet import _model, captum_rate

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="module")
def setup():
    model = _model(DEVICE)
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    return model, images


@pytest.mark.parametrize("crop", [True, False], ids=["cropped", "whole_maps"])
def test_deconvnet_conv5_16_channels(benchmark, setup, crop):
    model, images = setup
    dn = DeconvNet(model, crop=crop)
    benchmark.group = "deconvnet zfnet conv5, 16 projections"
    out = benchmark(lambda: dn.project(images, "conv5", list(range(16))))
    assert out.shape == (1, 16, 3, 224, 224)


def test_captum_one_target(benchmark, setup):
    pytest.importorskip("captum", reason="captum is not installed")
    model, images = setup
    benchmark.group = "deconvnet zfnet conv5, 16 projections"
    rate = benchmark.pedantic(captum_rate, args=(model, images, 13, [(0, 0, 6, 6)], DEVICE, 1), rounds=1)
    assert rate > 0
