"""zfaccel train: tiny runs through the Python API and the CLI, resuming, and what the files hold."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import zfaccel.demo.train as training
from zfaccel.cli.main import main
from zfaccel.demo.train import (
    CHECKPOINT,
    EVOLUTION,
    FIGURE,
    LOG,
    WEIGHTS,
    ResumeError,
    TrainConfig,
    file_names,
    train,
)
from zfaccel.models import load_model, small_zfnet

# 256 training images in 4 batches, 64 test images, 16 probe images, 1 followed map per layer:
# a couple of seconds per epoch on 2 busy cores.
TINY = TrainConfig(epochs=2, train_size=256, test_size=64, batch_size=64, probe_size=16, evolution_channels=1)


class Interrupt(Exception):
    pass


def _stop_after(last: int):
    def on_epoch(epoch: int, entry: dict) -> None:
        if epoch == last:
            raise Interrupt

    return on_epoch


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    return out, train(out, TINY, show_progress=False)


def test_outputs_load_without_unpickling_code(finished):
    out, result = finished
    assert result.weights == out / WEIGHTS and (out / FIGURE).is_file()
    state = torch.load(out / WEIGHTS, weights_only=True)
    assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
    small_zfnet().load_state_dict(state)  # a plain state_dict of the demo model
    assert isinstance(load_model(out / WEIGHTS), torch.nn.Module)
    torch.load(out / CHECKPOINT, weights_only=True)
    log = json.loads((out / LOG).read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert {"train_loss", "test_accuracy", "seconds", "load_average"} <= set(log["epochs"][0])
    assert log["threads"] == TINY.threads and log["torch"] == torch.__version__ and log["seed"] == TINY.seed
    assert log["test_accuracy"] == result.test_accuracy == log["epochs"][-1]["test_accuracy"]
    with np.load(out / EVOLUTION) as data:
        assert data["epochs"].tolist() == [1, 2]
        assert data["conv5/pictures"].shape[:2] == (2, 1) and data["conv5/pictures"].dtype == np.uint8


def test_resume_after_interruption_loses_nothing(finished, tmp_path):
    with pytest.raises(Interrupt):
        train(tmp_path, TINY, show_progress=False, on_epoch=_stop_after(1))
    with np.load(tmp_path / EVOLUTION) as data:
        assert data["epochs"].tolist() == [1]
    ran = []
    result = train(tmp_path, TINY, resume=True, show_progress=False, on_epoch=lambda e, _: ran.append(e))
    assert ran == [2]  # epoch 1 was not trained again
    assert result.log["resumed_after"] == [1] and [e["epoch"] for e in result.log["epochs"]] == [1, 2]
    # Each epoch reseeds from (seed, epoch): the resumed run ends where the uninterrupted one did.
    whole = torch.load(finished[0] / WEIGHTS, weights_only=True)
    for key, value in torch.load(tmp_path / WEIGHTS, weights_only=True).items():
        torch.testing.assert_close(value, whole[key], msg=key)
    with np.load(tmp_path / EVOLUTION) as data:
        assert data["epochs"].tolist() == [1, 2]


@pytest.fixture
def no_training(monkeypatch):
    """Training itself fails the test: what is refused must be refused before it starts."""

    def run(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(training, "_run", run)


def test_existing_checkpoint_needs_resume_and_the_same_settings(finished):
    out, _ = finished
    with pytest.raises(ResumeError, match="already holds a training checkpoint; resume it \\(resume=True\\) or "
                       "choose another out$"):  # fmt: skip
        train(out, TINY, show_progress=False)
    with pytest.raises(ValueError, match="trained with epochs=2 \\(now 3\\)"):
        train(out, TrainConfig(**{**TINY.__dict__, "epochs": 3}), resume=True, show_progress=False)


def test_resume_without_a_checkpoint_is_refused_before_training(tmp_path, no_training):
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.mkdir()
    for out in (empty, missing):
        with pytest.raises(ResumeError) as refused:
            train(out, TINY, resume=True, show_progress=False)
        assert str(refused.value) == (f"resume=True: '{out}' holds no training checkpoint (checkpoint.pt); "
                                      "run without resume=True to start")  # fmt: skip
    assert list(empty.iterdir()) == [] and not missing.exists()  # nothing written, no folder made


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "epochs must be at least 1"),
        ({"batch_size": 512}, ValueError, "train_size \\(256\\) must be at least batch_size"),
        ({"lr": 0.0}, ValueError, "lr must be positive"),
        ({"epochs": 2.0}, TypeError, "epochs must be an int"),
        ({"lr": "0.1"}, TypeError, "lr must be a number"),
        ({"conv1_lr": -1.0}, ValueError, "conv1_lr must be positive"),
        ({"conv1_epochs": 0}, ValueError, "conv1_epochs must be at least 1"),
        ({"conv1_weight_decay": -0.1}, ValueError, "conv1_weight_decay must be at least 0"),
        ({"first_layer": "vgg"}, ValueError, "first_layer must be one of 'zfnet', 'alexnet', got 'vgg'"),
    ],
)
def test_bad_settings(tmp_path, change, error, match):
    with pytest.raises(error, match=match):
        train(tmp_path, TrainConfig(**{**TINY.__dict__, **change}), show_progress=False)


def test_cli_trains_resumes_and_reports(tmp_path, capsys):
    args = ["train", "--out", str(tmp_path), "--epochs", "1", "--train-size", "128", "--test-size", "32", "--quiet"]
    assert main(args) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(args) == 2  # the checkpoint is there: refuse to start over
    assert "resume it (--resume) or choose another --out\n" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0  # finished already: writes the final files again
    assert main(["train", "--out", str(tmp_path / "x"), "--epochs", "0"]) == 2
    assert "epochs must be at least 1" in capsys.readouterr().err


def test_cli_resume_without_a_checkpoint_fails_fast(tmp_path, capsys, no_training):
    for out in (tmp_path, tmp_path / "missing"):
        assert main(["train", "--out", str(out), "--resume", "--quiet"]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == (f"zfaccel train: error: --resume: '{out}' holds no training checkpoint "
                                "(checkpoint.pt); run without --resume to start\n")  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # no folder made for the missing one


def test_cli_bundle_replaces_only_the_bundled_files(tmp_path, monkeypatch, capsys):
    import zfaccel.models.registry as registry

    assets = tmp_path / "assets"
    monkeypatch.setattr(registry, "SMALL_WEIGHTS", assets / WEIGHTS)  # never the real package's files
    args = ["train", "--out", str(tmp_path / "run"), "--epochs", "1", "--train-size", "128", "--test-size", "32"]
    assert main([*args, "--quiet", "--bundle"]) == 0
    assert sorted(p.name for p in assets.iterdir()) == sorted([WEIGHTS, LOG, EVOLUTION])
    assert "replaced the bundled" in capsys.readouterr().out
    alexnet = ["train", "--out", str(tmp_path / "alexnet"), "--epochs", "1", "--train-size", "128", "--test-size",
               "32", "--first-layer", "alexnet"]  # fmt: skip
    assert main([*alexnet, "--quiet", "--bundle"]) == 0
    variant = file_names("alexnet")
    assert sorted(p.name for p in assets.iterdir()) == sorted([WEIGHTS, LOG, EVOLUTION, variant[0], variant[1]])
    assert load_model(assets / variant[0]).features[0].kernel_size == (9, 9)


def test_conv1_stays_fixed_after_conv1_epochs_also_across_a_resume(tmp_path):
    config = TrainConfig(**{**TINY.__dict__, "epochs": 3, "conv1_epochs": 1})
    torch.manual_seed(config.seed)
    initial = small_zfnet().state_dict()
    seen = {}

    def record(epoch: int, _: dict) -> None:
        seen[epoch] = torch.load(tmp_path / "whole" / CHECKPOINT, weights_only=True)["model"]

    train(tmp_path / "whole", config, show_progress=False, on_epoch=record)
    conv1, conv2 = "features.0.weight", "features.4.weight"
    assert not torch.equal(initial[conv1], seen[1][conv1])  # trained in epoch 1
    assert torch.equal(seen[1][conv1], seen[3][conv1]) and torch.equal(
        seen[1]["features.0.bias"], seen[3]["features.0.bias"]
    )
    assert not torch.equal(seen[1][conv2], seen[3][conv2])  # the rest trains on
    with pytest.raises(Interrupt):
        train(tmp_path / "cut", config, show_progress=False, on_epoch=_stop_after(2))
    train(tmp_path / "cut", config, resume=True, show_progress=False)
    for key, value in torch.load(tmp_path / "cut" / WEIGHTS, weights_only=True).items():
        torch.testing.assert_close(value, seen[3][key], msg=key)


def test_the_alexnet_like_variant_writes_its_own_files(tmp_path):
    result = train(
        tmp_path, TrainConfig(**{**TINY.__dict__, "epochs": 1, "first_layer": "alexnet"}), show_progress=False
    )
    weights, log, evolution, figure = file_names("alexnet")
    assert (result.weights, result.log_file, result.evolution, result.figure) == (
        tmp_path / weights, tmp_path / log, tmp_path / evolution, tmp_path / figure)  # fmt: skip
    assert weights == "small_zfnet_alexnet.pt" and not (tmp_path / WEIGHTS).exists()
    assert load_model(result.weights).features[0].stride == (4, 4)
    assert json.loads((tmp_path / log).read_text())["model"] == "SmallZFNet(first_layer='alexnet')"
