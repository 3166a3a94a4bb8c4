"""zfaccel deconv / topk: files written on success; one-line errors and exit code 2 on bad input."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zfaccel.cli.main import main
from zfaccel.models import alexnet, small_zfnet


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((48, 56, 3)) * 255).astype(np.uint8)).save(path / f"img{i}.png")
    return path


def saved_weights(tmp_path_factory, build, name: str):
    """The state_dict of ``build(10)`` (random weights, seed 0) saved as ``name`` in a fresh folder."""
    path = tmp_path_factory.mktemp("weights") / name
    torch.manual_seed(0)
    torch.save(build(10).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A demo-model weights file: --model accepts files."""
    return saved_weights(tmp_path_factory, small_zfnet, "small.pt")


@pytest.fixture(scope="module")
def alexnet_weights(tmp_path_factory):
    """A torchvision-layout AlexNet state_dict with 10 classes (218 MB, once per module)."""
    return saved_weights(tmp_path_factory, alexnet, "alexnet.pth")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def last_line(err: str) -> str:
    """The last line of stderr, after the progress bars (which redraw with \\r and end with \\n)."""
    lines = err.split("\n")
    assert lines[-1] == "" and "\r" not in lines[-2], err
    return lines[-2]


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


@pytest.fixture
def junky(folder, tmp_path):
    """The four images plus two junk files sorted among them (img0b.png, img2b.jpg: indices 1 and 4)."""
    path = tmp_path / "junky"
    path.mkdir()
    for f in folder.iterdir():
        (path / f.name).write_bytes(f.read_bytes())
    (path / "img0b.png").write_bytes(b"\x89PNG not really")
    (path / "img2b.jpg").write_text("not a jpeg")
    return path


def test_topk_skips_unreadable_files_and_reports_them(capsys, junky, weights, tmp_path):
    code, stdout, err = run(capsys, "topk", "--model", weights, "--data", junky, "--layer", "conv2", "--k", "3",
                            "--out", tmp_path / "top")  # fmt: skip
    assert code == 0, err
    table_path = tmp_path / "top" / "conv2.pt"
    assert "(4 images, 64 channels, k=3)" in stdout
    report = last_line(err)
    assert report.startswith(f"zfaccel topk: skipped 2 unreadable files (listed in {table_path}): img0b.png: cannot")
    assert "; img2b.jpg: cannot read image" in report
    table = torch.load(table_path, weights_only=True)
    assert [(i, Path(p).name) for i, p, _ in table["failures"]] == [(1, "img0b.png"), (4, "img2b.jpg")]
    named = {Path(table["files"][i]).name for i in table["image_index"].view(-1).tolist()}
    assert named and not named & {"img0b.png", "img2b.jpg"}


def test_topk_strict_stops_at_the_first_unreadable_file(capsys, junky, weights, tmp_path):
    code, _, err = run(capsys, "topk", "--model", weights, "--data", junky, "--layer", "conv2", "--strict",
                       "--out", tmp_path / "top")  # fmt: skip
    assert code == 2 and "Traceback" not in err
    assert last_line(err).startswith(f"zfaccel topk: error: cannot read image {str(junky / 'img0b.png')!r}")
    assert not (tmp_path / "top" / "conv2.pt").exists()


def test_deconv_on_alexnet_with_torchvision_weights(capsys, folder, alexnet_weights, tmp_path):
    out = tmp_path / "alexnet.png"
    for model in (["--model", "alexnet", "--weights", alexnet_weights], ["--model", alexnet_weights]):
        code, stdout, err = run(capsys, "deconv", *model, "--image", folder / "img0.png", "--layer", "conv5",
                                "--channels", "top2", "--out", out)  # fmt: skip
        assert code == 0 and out.is_file() and "wrote" in stdout, err
        assert err == ""  # trained weights: no note


def test_random_weights_are_noted_on_stderr(capsys, folder, tmp_path):
    code, _, err = run(capsys, "deconv", "--model", "alexnet", "--image", folder / "img0.png", "--layer", "conv1",
                       "--channels", "0", "--out", tmp_path / "a.png")  # fmt: skip
    assert code == 0 and err.count("\n") == 1 and "--model alexnet has random weights" in err


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
    (["deconv", "--model", "{tmp}/notes.txt", "--image", "{img}", "--layer", "conv1", "--out", "{tmp}/a.png"],
     "notes.txt' is not a weights file: neither a torch checkpoint (zip or pickle) nor .safetensors"),
    (["deconv", "--model", "{tmp}/evil.pt", "--image", "{img}", "--layer", "conv1", "--out", "{tmp}/a.png"],
     "evil.pt' holds Python objects other than tensors"),
    (["deconv", "--model", "small", "--weights", "{w}", "--image", "{img}", "--layer", "conv1", "--out", "{tmp}/a.png"],
     "--weights works with --model zfnet, alexnet, vgg11, vgg13, vgg16, vgg19 only; --model 'small' is a bundled"),
    (["deconv", "--model", "{w}", "--weights", "{w}", "--image", "{img}", "--layer", "conv1", "--out", "{tmp}/a.png"],
     "small.pt' is a weights file already; --weights works with --model zfnet"),
    (["deconv", "--model", "alexnet", "--weights", "{w}", "--image", "{img}", "--layer", "conv1", "--out",
      "{tmp}/a.png"], "small.pt' holds demo-model weights, not alexnet's"),
    (["deconv", "--model", "vgg16", "--weights", "{tmp}/notes.txt", "--image", "{img}", "--layer", "conv1", "--out",
      "{tmp}/a.png"], "is not a weights file"),
    (["deconv", "--model", "alexnet", "--weights", "{tmp}/none.pt", "--image", "{img}", "--layer", "conv1", "--out",
      "{tmp}/a.png"], "none.pt' does not exist"),
    (["deconv", "--model", "resnet50", "--image", "{img}", "--layer", "conv1", "--out", "{tmp}/a.png"],
     "--model 'resnet50' is neither a model name (zfnet, small, small-alexnet, alexnet, vgg11, vgg13, vgg16, vgg19)"),
    (["topk", "--model", "small", "--weights", "{w}", "--data", "{dir}", "--layer", "conv1", "--out", "{tmp}/o"],
     "--weights works with"),
    (["topk", "--model", "{w}", "--data", "{tmp}/none", "--layer", "conv1", "--out", "{tmp}/o"], "does not exist"),
    (["topk", "--model", "{w}", "--data", "{img}", "--layer", "conv1", "--out", "{tmp}/o"], "is not a folder"),
    (["topk", "--model", "{w}", "--data", "{dir}", "--layer", "conv1", "--k", "0", "--out", "{tmp}/o"], "k must be"),
    (["topk", "--model", "{w}", "--data", "{dir}", "--layer", "conv1", "--channels", "99", "--out", "{tmp}/o"],
     "out of range"),
]  # fmt: skip


class Evil:
    """Unpickling this runs print: a weights file must never get to."""

    def __reduce__(self):
        return (print, ("this would run",))


@pytest.mark.parametrize("argv, message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_one_line_and_exit_2(capsys, folder, weights, tmp_path, argv, message):
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "notes.txt").write_text("these are my notes\n")
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"w": Evil()}, protocol=2))
    fill = dict(img=folder / "img0.png", w=weights, tmp=tmp_path, dir=folder)
    code, _, err = run(capsys, *[a.format(**fill) for a in argv])
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert "KeyError" not in err and "weights_only=False" not in err
