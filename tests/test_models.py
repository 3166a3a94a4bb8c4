"""zfaccel.models: ZFNet's shapes, layer names, the plain-CNN adapter, and code-free weight loading."""

from __future__ import annotations

import pickle
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zfaccel
from zfaccel.demo.shapes import CLASSES
from zfaccel.models import (
    SmallZFNet,
    class_names,
    load_model,
    load_weights,
    read_state_dict,
    small_zfnet,
    split_model,
    zfnet,
)
from zfaccel.models.registry import architecture_of
from zfaccel.models.weights import zfnet_from_pytorchcv


def feature_shapes(features: nn.Sequential, size: int) -> list[tuple[int, ...]]:
    x = torch.randn(1, 3, size, size)
    out = []
    for m in features:
        x = m(x)
        out.append(tuple(x.shape[1:]))
    return out


@pytest.mark.parametrize("lrn_before_pool", [False, True])
def test_zfnet_feature_maps_follow_the_paper(lrn_before_pool):
    model = zfnet(lrn_before_pool=lrn_before_pool).eval()
    shapes = feature_shapes(model.features, 224)
    names = split_model(model).names
    sizes = {name: shapes[i][1] for name, i in names.items()}
    norm1, norm2 = (110, 26) if lrn_before_pool else (55, 13)  # pytorchcv normalises before pooling
    assert sizes == {"conv1": 110, "pool1": 55, "norm1": norm1, "conv2": 26, "pool2": 13, "norm2": norm2,
                     "conv3": 13, "conv4": 13, "conv5": 13, "pool5": 6}  # fmt: skip
    assert [shapes[names[f"conv{k}"]][0] for k in range(1, 6)] == [96, 256, 384, 384, 256]
    assert model(torch.randn(2, 3, 224, 224)).shape == (2, 1000)


def test_small_model_shapes():
    model = small_zfnet(10).eval()
    names = split_model(model).names
    shapes = feature_shapes(model.features, 64)
    assert [shapes[names[n]][1] for n in ("conv1", "pool1", "conv2", "pool2", "conv5", "pool5")] == [
        32,
        16,
        16,
        8,
        8,
        4,
    ]
    assert model(torch.randn(3, 3, 64, 64)).shape == (3, 10)


def test_small_model_with_an_alexnet_like_first_layer():
    model = small_zfnet(10, first_layer="alexnet").eval()
    conv1 = model.features[0]
    assert (conv1.kernel_size, conv1.stride, conv1.padding) == ((9, 9), (4, 4), (4, 4))
    names = split_model(model).names
    shapes = feature_shapes(model.features, 64)
    assert [shapes[names[n]][1] for n in ("conv1", "pool1", "conv2", "pool2", "conv5", "pool5")] == [16, 8, 8, 4, 4, 2]
    assert model.classifier[0].in_features == 64 * 2 * 2
    assert model(torch.randn(3, 3, 64, 64)).shape == (3, 10)
    assert architecture_of(model.state_dict()) == "small-alexnet"
    with pytest.raises(ValueError, match="first_layer must be one of 'zfnet', 'alexnet', got 'vgg'"):
        small_zfnet(10, first_layer="vgg")


class PytorchcvLikeZFNet(nn.Module):
    """The structure and parameter names of pytorchcv's ZFNet (conv -> ReLU -> LRN(5, k=2) -> pool, ceil_mode)."""

    def __init__(self, classes=1000):
        super().__init__()

        def unit(cin, cout, k, s, p):
            m = nn.Module()
            m.conv = nn.Conv2d(cin, cout, k, s, p)
            return m

        def stage(units, pool):
            seq = nn.Sequential()
            for i, u in enumerate(units):
                seq.add_module(f"unit{i + 1}", u)
            seq.add_module(pool, nn.MaxPool2d(3, 2, ceil_mode=True))
            return seq

        self.features = nn.Sequential()
        self.features.add_module("stage1", stage([unit(3, 96, 7, 2, 1)], "pool1"))
        self.features.add_module("stage2", stage([unit(96, 256, 5, 2, 0)], "pool2"))
        self.features.add_module(
            "stage3", stage([unit(256, 384, 3, 1, 1), unit(384, 384, 3, 1, 1), unit(384, 256, 3, 1, 1)], "pool3")
        )
        self.output = nn.Module()
        for name, (i, o) in {"fc1": (9216, 4096), "fc2": (4096, 4096)}.items():
            block = nn.Module()
            block.fc = nn.Linear(i, o)
            setattr(self.output, name, block)
        self.output.fc3 = nn.Linear(4096, classes)

    def forward(self, x):
        for si, stage in enumerate(self.features):
            for name, m in stage.named_children():
                if name.startswith("unit"):
                    x = F.relu(m.conv(x))
                    if si < 2:
                        x = F.local_response_norm(x, size=5, k=2.0)
                else:
                    x = m(x)
        x = x.flatten(1)
        x = F.relu(self.output.fc1.fc(x))
        x = F.relu(self.output.fc2.fc(x))
        return self.output.fc3(x)


def test_pytorchcv_weights_map_onto_zfnet():
    ref = PytorchcvLikeZFNet(classes=7).eval()
    ours = zfnet_from_pytorchcv(ref.state_dict()).eval()
    x = torch.randn(2, 3, 224, 224)
    torch.testing.assert_close(ours(x), ref(x))


def test_real_pytorchcv_zfnet_if_installed():
    pytorchcv_zfnet = pytest.importorskip(
        "pytorchcv.models.zfnet", reason="pytorchcv is not installed (it needs torchvision)"
    ).zfnet
    ref = pytorchcv_zfnet().eval()
    ours = zfnet_from_pytorchcv(ref.state_dict()).eval()
    x = torch.randn(1, 3, 224, 224)
    torch.testing.assert_close(ours(x), ref(x))


def test_pytorchcv_mapping_rejects_other_state_dicts():
    with pytest.raises(KeyError, match="not a pytorchcv ZFNet"):
        zfnet_from_pytorchcv(zfnet().state_dict())


class Evil:
    """Unpickling this runs print: what a weights file must never get to do."""

    def __reduce__(self):
        return (print, ("this would run",))


def test_weights_round_trip_and_refuse_code(tmp_path):
    model = small_zfnet(10)
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    other = load_weights(small_zfnet(10), path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True))
    assert isinstance(load_model(path), type(model))

    raw = tmp_path / "evil.pt"
    raw.write_bytes(pickle.dumps({"w": Evil()}, protocol=2))  # torch.save's protocol: torch.load warns of others
    saved = tmp_path / "evil_saved.pt"
    torch.save({"w": Evil()}, saved)  # torch's own zip format: torch names the global it refused
    for evil in (raw, saved):
        with pytest.raises(ValueError, match="holds Python objects other than tensors") as caught:
            read_state_dict(evil)
        message = str(caught.value)
        assert str(evil) in message and "will not run it" in message and "\n" not in message
        assert "weights_only=False" not in message and "Weights only load failed" not in message  # torch's advice
    with pytest.raises(ValueError, match=r"\(print: code that unpickling would run\)"):
        read_state_dict(saved)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_state_dict(tmp_path / "missing.pt")


def test_load_weights_names_the_mismatch_in_one_line(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(small_zfnet(10).state_dict(), path)
    with pytest.raises(ValueError, match=r"the weights in '.*w\.pt' do not fit ZFNet: 2 missing") as caught:
        load_weights(zfnet(), path)
    assert "\n" not in str(caught.value) and "unexpected" in str(caught.value)
    shapes = r"2 of another shape \(classifier.6.weight \(10, 256\) where the model has \(7, 256\)"
    with pytest.raises(ValueError, match=shapes):
        load_weights(small_zfnet(7), path)


def test_legacy_torch_files_and_safetensors_load(tmp_path, monkeypatch):
    model = small_zfnet(10)
    legacy = tmp_path / "legacy.pth"
    torch.save({"state_dict": model.state_dict()}, legacy, _use_new_zipfile_serialization=False)  # torch < 1.6
    assert legacy.read_bytes()[:1] == b"\x80"
    assert torch.equal(load_model(legacy).features[0].weight, model.features[0].weight)
    fake = tmp_path / "w.safetensors"
    fake.write_bytes(len(b'{"a": 1}').to_bytes(8, "little") + b'{"a": 1}')
    monkeypatch.setitem(sys.modules, "safetensors", None)  # as where it is not installed
    with pytest.raises(ValueError, match=r"w\.safetensors' is a safetensors file: reading it needs the safetensors"):
        read_state_dict(fake)


def test_safetensors_round_trip(tmp_path):
    save_file = pytest.importorskip("safetensors.torch", reason="safetensors is not installed").save_file
    model = small_zfnet(10)
    path = tmp_path / "w.pt"  # the content, not the name, says what it is
    save_file(model.state_dict(), str(path))
    assert torch.equal(load_model(path).classifier[6].weight, model.classifier[6].weight)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="cannot read weights from"):
        read_state_dict(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"hello, these are my notes\n", "is not a weights file: neither a torch checkpoint (zip or pickle) nor "),
        (b"", "is not a weights file"),
        (b"PK\x03\x04 a zip cut short", "cannot read weights from"),
    ],
    ids=["text", "empty", "broken zip"],
)
def test_files_that_are_no_weights_say_what_they_are_not(tmp_path, content, message):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        load_model(path)
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert "KeyError" not in str(caught.value) and "\n" not in str(caught.value)


def test_split_model_torchvision_style_and_sequential():
    alexnet_like = nn.Module()
    alexnet_like.features = nn.Sequential(
        nn.Conv2d(3, 8, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(8, 8, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
    )  # fmt: skip
    alexnet_like.avgpool = nn.AdaptiveAvgPool2d((2, 2))
    alexnet_like.classifier = nn.Sequential(nn.Dropout(), nn.Linear(32, 5))
    plain = split_model(alexnet_like)
    assert plain.names == {"conv1": 1, "pool1": 2, "conv2": 4, "pool2": 5}
    assert plain.head(torch.randn(2, 8, 6, 6)).shape == (2, 5)

    seq = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 7 * 7, 3)
    )
    plain = split_model(seq)
    assert len(plain.features) == 4 and plain.names["conv1"] == 2 and plain.names["norm1"] == 1
    assert plain.head(torch.randn(2, 4, 7, 7)).shape == (2, 3)
    nested = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), nn.Flatten())
    assert split_model(nested).names == {"conv1": 1}


def test_split_model_names_the_unsupported_module():
    class Residual(nn.Module):
        def forward(self, x):
            return x + x

    model = nn.Module()
    model.features = nn.Sequential(nn.Conv2d(3, 4, 3), Residual())
    with pytest.raises(TypeError, match=r"model.features\[1\] is Residual"):
        split_model(model)
    with pytest.raises(TypeError, match="not a plain CNN"):
        split_model(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="padding_mode"):
        split_model(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")))


def test_resolve_layer():
    plain = split_model(zfnet())
    assert plain.resolve("conv5") == 13 and plain.resolve(14) == 14
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        plain.resolve("conv9")
    with pytest.raises(ValueError, match="out of range"):
        plain.resolve(15)
    with pytest.raises(TypeError, match="layer must be"):
        plain.resolve(2.0)


def test_load_model_specs(tmp_path):
    assert isinstance(load_model("zfnet"), type(zfnet()))
    with pytest.raises(
        FileNotFoundError, match=r"spec='.*nope\.pt' is neither a model name \(zfnet, small, small-alexnet, alexnet"
    ):
        load_model(tmp_path / "nope.pt")


def test_python_errors_name_python_arguments(tmp_path):
    """load_model names its own parameters (spec, weights); the CLI passes names=("--model", "--weights")."""
    path = tmp_path / "w.pt"
    torch.save(small_zfnet(10).state_dict(), path)
    cases = [
        ((["resnet50"], {}), FileNotFoundError, "spec='resnet50' is neither"),
        ((["small"], {"weights": path}), ValueError, "weights works with spec zfnet, alexnet, vgg11"),
        (([path], {"weights": path}), ValueError, "is a weights file already"),
        ((["alexnet"], {"weights": path}), ValueError, "weights='.*w.pt' holds demo-model weights, not alexnet's"),
        ((["alexnet"], {"weights": 3}), TypeError, "weights must be a weights file path or a state_dict"),
        (([3], {}), TypeError, "spec must be a model name"),
    ]
    for (args, kwargs), error, message in cases:
        with pytest.raises(error, match=message) as caught:
            load_model(*args, **kwargs)
        assert "--" not in str(caught.value)
    with pytest.raises(FileNotFoundError, match="--model 'resnet50' is neither"):
        load_model("resnet50", names=("--model", "--weights"))


def test_class_names_of_the_demo_model_and_others():
    assert SmallZFNet.class_names == tuple(CLASSES) and len(CLASSES) == 10
    assert class_names(small_zfnet()) == list(CLASSES)
    assert zfaccel.class_names is class_names
    assert class_names(small_zfnet(7)) is None  # ten names do not name seven outputs
    assert class_names(zfnet()) is None  # declares none
    named = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2, 2))
    named.class_names = ("cat", "dog")
    assert class_names(named) == ["cat", "dog"]
    named.class_names = "cd"  # a string is not a list of names
    assert class_names(named) is None
    with pytest.raises(TypeError, match="model must be"):
        class_names("small")
