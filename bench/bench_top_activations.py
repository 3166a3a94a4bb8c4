"""pytest-benchmark entry for top_activations mining: ``pytest bench --benchmark-enable``.

ZFNet conv5 over 16 random 224 px images, k = 9, no projection. Full tables:
``zfaccel bench --ops top_activations``.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from zfaccel.analysis.topk import top_activations
from zfaccel.bench.deconvnet import _model

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def test_top_activations_conv5_mining(benchmark):
    model = _model(DEVICE)
    data = TensorDataset(torch.randn(16, 3, 224, 224, generator=torch.Generator().manual_seed(1)))
    benchmark.group = "top_activations zfnet conv5, 16 images"
    top = benchmark(lambda: top_activations(model, data, "conv5", batch_size=8, project=False, show_progress=False))
    assert top.values.shape == (256, 9)
