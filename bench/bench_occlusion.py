"""pytest-benchmark entries for occlusion sweeps: ``pytest bench --benchmark-enable``.

ZFNet with random weights, one 224 px image, window 64, stride 32 (36 positions, small enough
for the test run); Captum's Occlusion on the same grid. Full tables (windows 16/4, 32/8, 64/16,
MAC ceilings): ``zfaccel bench --ops occlusion``. The GPU entry (64 images, bfloat16,
channels_last) runs only where CUDA is.
"""

from __future__ import annotations

import pytest
import torch

from zfaccel.analysis import Occlusion
from zfaccel.bench.occlusion import _model, captum_rate

HAS_CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def setup():
    model = _model(torch.device("cpu"))
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    return model, images


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full"])
def test_occlusion_zfnet_64_32(benchmark, setup, incremental):
    model, images = setup
    occ = Occlusion(model)
    benchmark.group = "occlusion zfnet 224 px, window 64 stride 32 (36 positions)"
    res = benchmark(lambda: occ.sweep(images, window=64, stride=32, incremental=incremental))
    assert res.prob.shape == (1, 6, 6)


def test_captum_occlusion_zfnet_64_32(benchmark, setup):
    pytest.importorskip("captum", reason="captum is not installed")
    model, images = setup
    benchmark.group = "occlusion zfnet 224 px, window 64 stride 32 (36 positions)"
    rate = benchmark.pedantic(captum_rate, args=(model, images, 64, 32, [36], torch.device("cpu"), 1), rounds=1)
    assert rate[0] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="the GPU variant (64 images, bf16, channels_last) needs a CUDA GPU")
def test_occlusion_gpu_bf16_channels_last(benchmark):
    device = torch.device("cuda")
    model = _model(device, torch.bfloat16)
    images = torch.randn(64, 3, 224, 224, device=device, dtype=torch.bfloat16)
    images = images.contiguous(memory_format=torch.channels_last)
    occ = Occlusion(model)
    benchmark.group = "occlusion zfnet 64 x 224 px bf16, window 32 stride 8"
    res = benchmark(lambda: occ.sweep(images, window=32, stride=8))
    assert res.prob.shape == (64, 25, 25)
