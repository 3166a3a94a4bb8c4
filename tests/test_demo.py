"""zfaccel demo: every figure written and listed, on a random model and tiny data (the bundled
run is exercised in test_demo_bundled)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from zfaccel.demo.run import run_demo
from zfaccel.models import small_zfnet


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = small_zfnet(10).eval()
    images = torch.randn(60, 3, 64, 64)
    labels = torch.arange(60) % 10
    return model, torch.utils.data.TensorDataset(images, labels)


def test_demo_writes_every_figure(tiny, tmp_path):
    model, data = tiny
    names = [f"c{i}" for i in range(10)]
    out = run_demo(tmp_path / "demo", model=model, data=data, class_names=names, images=3, occluded=1,
                   show_progress=False)  # fmt: skip
    assert [p.name for p in out.projections] == ["0_c0.png", "1_c3.png", "2_c7.png"]  # spread over the classes
    assert [p.stem for p in out.top9] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert [p.name for p in out.occlusion] == ["0_c0.png"]
    for path in out.all():
        with Image.open(path) as img:
            assert img.size[0] > 100 and img.size[1] > 100, path
    page = out.index.read_text()
    assert all(p.relative_to(out.folder).as_posix() in page for p in out.all())


@pytest.mark.parametrize("images, occluded", [(0, 0), (2, 3), (2, -1), ("2", 1)])
def test_demo_rejects_bad_counts(tiny, tmp_path, images, occluded):
    model, data = tiny
    with pytest.raises(ValueError, match="images"):
        run_demo(tmp_path, model=model, data=data, images=images, occluded=occluded, show_progress=False)


def test_cli_demo_on_the_bundled_model_and_data(tmp_path, capsys):
    """The README's main job, smaller: bundled weights, shapes test data, Fig. 4 record, occlusion."""
    from zfaccel.cli.main import main

    code = main(["demo", "--out", str(tmp_path / "d"), "--images", "2", "--occluded", "1"])
    out = capsys.readouterr().out
    assert code == 0
    written = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    names = sorted(p.split("/d/", 1)[1] for p in written)
    assert names == sorted(["projections/0_circle.png", "projections/1_diamond.png", "evolution.png",
                            "occlusion/0_circle.png"] + [f"top9/conv{i}.png" for i in range(1, 6)])  # fmt: skip
    assert (tmp_path / "d" / "index.html").is_file()
