"""FeatureEvolution (paper Fig. 4): per-epoch pictures on disk after every epoch, and the figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from figure_checks import all_text, assert_png, assert_readable
from torch.utils.data import TensorDataset

from zfaccel.analysis.evolution import FeatureEvolution, render_evolution
from zfaccel.analysis.topk import top_activations
from zfaccel.models import small_zfnet


def test_records_each_epoch_and_renders(tmp_path):
    torch.manual_seed(0)
    model = small_zfnet().eval()
    probe = TensorDataset(torch.randn(12, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    record = tmp_path / "evolution.npz"
    recorder = FeatureEvolution(probe, record, layers=("conv1", "conv4"), channels=2, seed=3)
    for epoch in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.1)
        summary = recorder(model, epoch)
        with np.load(record) as data:  # on disk after every epoch: an interruption loses nothing
            assert data["epochs"].tolist() == list(range(epoch + 1))
            assert data["conv4/pictures"].shape[:2] == (epoch + 1, 2) and data["conv4/pictures"].dtype == np.uint8
    channels = recorder.chosen["conv4"]
    top = top_activations(model, probe, "conv4", k=1, channels=channels, show_progress=False)
    assert summary["top_activation"]["conv4"] == pytest.approx(top.values[:, 0].tolist(), abs=1e-4)
    fig = render_evolution(record, tmp_path / "fig4.png", tile=24)
    assert_readable(fig)
    _, height = assert_png(tmp_path / "fig4.png", (100, 4 * 24))
    text = all_text(fig)
    assert all(f"{name} map {c}" in text for name in ("conv1", "conv4") for c in recorder.chosen[name])
    assert "epoch:" in text and all(f"\n{e}\n" in f"\n{text}\n" for e in range(3))  # a column per epoch
    canvas = np.asarray(fig.axes[0].images[0].get_array())
    assert canvas.shape[0] < height and canvas.shape[1] > 3 * 24  # 4 rows of 24 px tiles, 3 columns
    with pytest.raises(ValueError, match="tile must be a positive int"):
        render_evolution(record, tile=0)


def test_bad_channel_count(tmp_path):
    with pytest.raises(ValueError, match="channels must be at least 1"):
        FeatureEvolution(TensorDataset(torch.zeros(1, 3, 64, 64)), tmp_path / "x.npz", channels=0)
