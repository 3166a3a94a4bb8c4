"""zfaccel occlusion: the Fig. 7 maps, panel and .npz on success; one-line errors and exit code 2 on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zfaccel.cli.main import main
from zfaccel.models import small_zfnet
from zfaccel.models.registry import SMALL_WEIGHTS
from zfaccel.models.small import INPUT_SIZE, SmallZFNet


@pytest.fixture(autouse=True)
def demo_input_size(monkeypatch):
    """The demo model takes 64 px images; until SmallZFNet declares it (the demo branch adds
    ``input_size``), preprocessing would resize to 224."""
    if not hasattr(SmallZFNet, "input_size"):
        monkeypatch.setattr(SmallZFNet, "input_size", INPUT_SIZE, raising=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A demo-model weights file (random weights), an image, a junk 'image' and a class-name list."""
    path = tmp_path_factory.mktemp("occ")
    torch.manual_seed(0)
    torch.save(small_zfnet(10).state_dict(), path / "small.pt")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((70, 60, 3)) * 255).astype(np.uint8)).save(path / "cat.png")
    (path / "junk.png").write_bytes(b"\x89PNG not really")
    (path / "names.txt").write_text("\n".join(f"shape {i}" for i in range(10)))
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_writes_the_maps_panel_and_npz(capsys, files, tmp_path):
    out = tmp_path / "deep" / "occ"
    code, stdout, _ = run(capsys, "occlusion", "--model", files / "small.pt", "--image", files / "cat.png",
                          "--window", "16", "--stride", "12", "--target", "3", "--baseline", "0.5",
                          "--classes", files / "names.txt", "--out", out)  # fmt: skip
    assert code == 0, stdout
    names = ["cat_feature.png", "cat_prob.png", "cat_label.png", "cat_panel.png", "cat_occlusion.npz"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert all(str(out / n) in stdout for n in names)
    with np.load(out / "cat_occlusion.npz") as z:
        assert z["prob"].shape == (1, 5, 5) and z["target"].tolist() == [3]  # (64 - 16) / 12 + 1 = 5
        assert z["window"].tolist() == [16, 16] and 0 <= z["prob"].min() <= z["prob"].max() <= 1
    assert Image.open(out / "cat_panel.png").size[0] > Image.open(out / "cat_prob.png").size[0]


def test_rectangular_window_and_defaults(capsys, files, tmp_path):
    code, stdout, _ = run(capsys, "occlusion", "--model", files / "small.pt", "--image", files / "cat.png",
                          "--window", "24", "12", "--stride", "20", "10", "--batch-size", "5",
                          "--feature-layer", "conv3", "--out", tmp_path)  # fmt: skip
    assert code == 0, stdout
    with np.load(tmp_path / "cat_occlusion.npz") as z:
        assert z["prob"].shape == (1, 3, 6) and str(z["feature_layer"]) == "conv3"


@pytest.mark.skipif(not SMALL_WEIGHTS.is_file(), reason=f"the bundled demo weights {SMALL_WEIGHTS} are not built yet")
def test_bundled_demo_model(capsys, files, tmp_path):
    code, stdout, _ = run(capsys, "occlusion", "--model", "small", "--image", files / "cat.png", "--window", "16",
                          "--stride", "16", "--out", tmp_path)  # fmt: skip
    assert code == 0, stdout


def test_default_geometry_class_names_and_backend(capsys, files, tmp_path):
    """The bundled model's names label the output and --target takes one; window and stride fit 64 px."""
    code, stdout, _ = run(capsys, "occlusion", "--image", files / "cat.png", "--target", "diamond",
                          "--backend", "torch", "--out", tmp_path)  # fmt: skip
    assert code == 0, stdout
    with np.load(tmp_path / "cat_occlusion.npz") as z:
        assert z["target"].tolist() == [5] and z["window"].tolist() == [16, 16] and z["prob"].shape == (1, 13, 13)
    assert "target diamond: p = " in stdout and "window 16x16, stride 4x4" in stdout
    assert "class 5" not in stdout and "predicted: " in stdout


BAD = [
    (["--window", "80"], "larger than the image"),
    (["--window", "16", "--stride", "0"], "--stride must be at least 1"),
    (["--window", "0"], "--window must be at least 1"),
    (["--window", "8", "8", "8"], "one or two numbers"),
    (["--window", "16", "--target", "10"], "target classes must lie in 0..9"),
    (["--window", "16", "--target", "blob"], "--target 'blob' is not a class number"),
    (["--window", "16", "--baseline", "grey"], "--baseline 'grey'"),
    (["--window", "16", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["--window", "16", "--feature-layer", "fc7"], "unknown feature_layer"),
    (["--window", "16", "--classes", "{d}/none.txt"], "does not exist"),
    (["--image", "{d}/junk.png"], "cannot read image"),
    (["--image", "{d}/missing.png"], "does not exist"),
    (["--model", "{d}/nowhere.pt"], "neither"),
    (["--model", "{d}/names.txt"], "names.txt' is not a weights file"),
    (["--weights", "{d}/small.pt"], "small.pt' is a weights file already; --weights works with --model zfnet"),
]  # fmt: skip


@pytest.mark.parametrize("extra, message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_one_line_and_exit_2(capsys, files, tmp_path, extra, message):
    # argparse keeps the last of repeated options: the extra arguments override the good ones
    argv = ["occlusion", "--model", files / "small.pt", "--image", files / "cat.png", "--out", tmp_path / "o"]
    argv += [a.format(d=files) for a in extra]
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
