"""zfaccel deconv / topk: files written on success; one-line errors and exit code 2 on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zfaccel.cli.main import main
from zfaccel.models import small_zfnet


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((48, 56, 3)) * 255).astype(np.uint8)).save(path / f"img{i}.png")
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A demo-model weights file (random weights): --model accepts files."""
    path = tmp_path_factory.mktemp("weights") / "small.pt"
    torch.manual_seed(0)
    torch.save(small_zfnet(10).state_dict(), path)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_deconv_writes_a_png(capsys, folder, weights, tmp_path):
    out = tmp_path / "deep" / "proj.png"
    code, stdout, _ = run(capsys, "deconv", "--model", weights, "--image", folder / "img0.png", "--layer", "conv3",
                          "--channels", "top4", "--out", out)  # fmt: skip
    assert code == 0 and out.is_file() and "wrote" in stdout
    code, _, _ = run(capsys, "deconv", "--model", weights, "--image", folder / "img1.png", "--layer", "9",
                     "--channels", "0", "5", "--mode", "map", "--out", out)  # fmt: skip
    assert code == 0


def test_topk_writes_figure_and_table(capsys, folder, weights, tmp_path):
    code, stdout, _ = run(capsys, "topk", "--model", weights, "--data", folder, "--layer", "conv2", "--k", "3",
                          "--out", tmp_path / "top")  # fmt: skip
    assert code == 0, stdout
    table = torch.load(tmp_path / "top" / "conv2.pt", weights_only=True)
    assert table["values"].shape == (64, 3) and len(table["files"]) == 4
    assert (tmp_path / "top" / "conv2.png").is_file()


def test_topk_refuses_a_checkpoint_made_with_other_weights(capsys, folder, weights, tmp_path):
    ckpt = tmp_path / "mining.pt"
    argv = ["topk", "--data", folder, "--layer", "conv2", "--k", "3", "--checkpoint", ckpt, "--out", tmp_path / "top"]
    code, _, err = run(capsys, *argv, "--model", weights)
    assert code == 0 and ckpt.is_file(), err
    code, _, err = run(capsys, *argv, "--model", weights)  # the same weights resume (here: nothing left to mine)
    assert code == 0, err
    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    torch.save(small_zfnet(10).state_dict(), other)
    code, _, err = run(capsys, *argv, "--model", other)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"checkpoint {str(ckpt)!r} was made with other settings: model (hash " in err
    assert "differs from the checkpoint's (hash " in err and err.count(" differs ") == 1


BAD = [
    (["deconv", "--model", "nowhere.pt", "--image", "{img}", "--layer", "conv1", "--out", "{tmp}/a.png"], "neither"),
    (["deconv", "--model", "{w}", "--image", "{tmp}/missing.png", "--layer", "conv1", "--out", "{tmp}/a.png"],
     "does not exist"),
    (["deconv", "--model", "{w}", "--image", "{tmp}/junk.png", "--layer", "conv1", "--out", "{tmp}/a.png"],
     "cannot read image"),
    (["deconv", "--model", "{w}", "--image", "{img}", "--layer", "fc7", "--out", "{tmp}/a.png"], "unknown layer"),
    (["deconv", "--model", "{w}", "--image", "{img}", "--layer", "conv1", "--channels", "32", "--out", "{tmp}/a.png"],
     "out of range"),
    (["deconv", "--model", "{w}", "--image", "{img}", "--layer", "conv1", "--channels", "topx", "--out", "{tmp}/a.png"],
     "topN"),
    (["deconv", "--model", "{w}", "--image", "{img}", "--layer", "conv1", "--out", "{tmp}/a.jpg"],
     "must end with .png"),
    (["topk", "--model", "{w}", "--data", "{tmp}/none", "--layer", "conv1", "--out", "{tmp}/o"], "does not exist"),
    (["topk", "--model", "{w}", "--data", "{img}", "--layer", "conv1", "--out", "{tmp}/o"], "is not a folder"),
    (["topk", "--model", "{w}", "--data", "{dir}", "--layer", "conv1", "--k", "0", "--out", "{tmp}/o"], "k must be"),
    (["topk", "--model", "{w}", "--data", "{dir}", "--layer", "conv1", "--channels", "99", "--out", "{tmp}/o"],
     "out of range"),
]  # fmt: skip


@pytest.mark.parametrize("argv, message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_one_line_and_exit_2(capsys, folder, weights, tmp_path, argv, message):
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really")
    fill = dict(img=folder / "img0.png", w=weights, tmp=tmp_path, dir=folder)
    code, _, err = run(capsys, *[a.format(**fill) for a in argv])
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
