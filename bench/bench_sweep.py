"""pytest-benchmark entries for dataset sweeps: ``pytest bench --benchmark-enable``.

The bundled model on 16 shapes PNGs (window 32, stride 16), end to end into a zarr store, beside
the same sweep on the images in memory. Full table (200 images, window 16 stride 4, ZFNet 224 px,
peak memory): ``zfaccel bench --ops sweep``.
"""

from __future__ import annotations

import pytest

from zfaccel.analysis.occlusion import Occlusion, sweep_dataset
from zfaccel.demo.export import write_image_folder
from zfaccel.models import load_images, pretrained_small


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = write_image_folder(tmp_path_factory.mktemp("bench") / "shapes", 16)
    model = pretrained_small()
    return model, folder, load_images(sorted(folder.rglob("*.png")), model)


def test_sweep_dataset_16_images(benchmark, setup, tmp_path):
    model, folder, _ = setup
    benchmark.group = "sweep, bundled model, 16 images, window 32 stride 16"
    store = benchmark(lambda: sweep_dataset(model, folder, tmp_path / "s.zarr", window=32, stride=16, overwrite=True))
    assert store.counts()[1] == 16


def test_in_memory_16_images(benchmark, setup):
    model, _, images = setup
    benchmark.group = "sweep, bundled model, 16 images, window 32 stride 16"
    res = benchmark(lambda: Occlusion(model).sweep(images, window=32, stride=16))
    assert res.prob.shape == (16, 3, 3)
