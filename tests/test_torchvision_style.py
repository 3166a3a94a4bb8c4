"""zfaccel.models.torchvision_style: torchvision's AlexNet and VGG state_dicts, by name in load_model, and
the deconvnet and occlusion on them."""

from __future__ import annotations

from functools import partial

import pytest
import torch

import zfaccel
from zfaccel.models import VGG, AlexNet, alexnet, load_model, small_zfnet, split_model, vgg, zfnet
from zfaccel.models.registry import architecture_of

# torchvision.models.alexnet().state_dict(): convolutions at features 0, 3, 6, 8, 10, linears at classifier 1, 4, 6.
TORCHVISION_ALEXNET = [
    ("features.0.weight", (64, 3, 11, 11)), ("features.0.bias", (64,)),
    ("features.3.weight", (192, 64, 5, 5)), ("features.3.bias", (192,)),
    ("features.6.weight", (384, 192, 3, 3)), ("features.6.bias", (384,)),
    ("features.8.weight", (256, 384, 3, 3)), ("features.8.bias", (256,)),
    ("features.10.weight", (256, 256, 3, 3)), ("features.10.bias", (256,)),
    ("classifier.1.weight", (4096, 9216)), ("classifier.1.bias", (4096,)),
    ("classifier.4.weight", (4096, 4096)), ("classifier.4.bias", (4096,)),
    ("classifier.6.weight", (1000, 4096)), ("classifier.6.bias", (1000,)),
]  # fmt: skip

# torchvision.models.vgg16().state_dict() (configuration D): 13 convolutions, pools at features 4, 9, 16, 23, 30.
TORCHVISION_VGG16 = [
    ("features.0.weight", (64, 3, 3, 3)), ("features.0.bias", (64,)),
    ("features.2.weight", (64, 64, 3, 3)), ("features.2.bias", (64,)),
    ("features.5.weight", (128, 64, 3, 3)), ("features.5.bias", (128,)),
    ("features.7.weight", (128, 128, 3, 3)), ("features.7.bias", (128,)),
    ("features.10.weight", (256, 128, 3, 3)), ("features.10.bias", (256,)),
    ("features.12.weight", (256, 256, 3, 3)), ("features.12.bias", (256,)),
    ("features.14.weight", (256, 256, 3, 3)), ("features.14.bias", (256,)),
    ("features.17.weight", (512, 256, 3, 3)), ("features.17.bias", (512,)),
    ("features.19.weight", (512, 512, 3, 3)), ("features.19.bias", (512,)),
    ("features.21.weight", (512, 512, 3, 3)), ("features.21.bias", (512,)),
    ("features.24.weight", (512, 512, 3, 3)), ("features.24.bias", (512,)),
    ("features.26.weight", (512, 512, 3, 3)), ("features.26.bias", (512,)),
    ("features.28.weight", (512, 512, 3, 3)), ("features.28.bias", (512,)),
    ("classifier.0.weight", (4096, 25088)), ("classifier.0.bias", (4096,)),
    ("classifier.3.weight", (4096, 4096)), ("classifier.3.bias", (4096,)),
    ("classifier.6.weight", (1000, 4096)), ("classifier.6.bias", (1000,)),
]  # fmt: skip

# torchvision's parameter counts (its model documentation): AlexNet and VGG 11, 13, 16, 19.
TORCHVISION_PARAMETERS = {"alexnet": 61_100_840, 11: 132_863_336, 13: 133_047_848, 16: 138_357_544, 19: 143_667_240}


def on_meta(build, *args):
    """The model without memory or initialisation cost: shapes and keys only (VGG19 is 575 MB on the CPU)."""
    with torch.device("meta"):
        return build(*args)


def keys_and_shapes(model) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def test_alexnet_and_vgg16_have_torchvisions_keys_and_shapes():
    assert keys_and_shapes(on_meta(alexnet)) == TORCHVISION_ALEXNET
    assert keys_and_shapes(on_meta(vgg, 16)) == TORCHVISION_VGG16


@pytest.mark.parametrize("depth", [11, 13, 16, 19])
def test_vgg_depths_count_torchvisions_parameters(depth):
    model = on_meta(vgg, depth)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) + 3 == depth and sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMETERS[depth]
    assert architecture_of(model.state_dict()) == f"vgg{depth}"


def test_alexnet_layers_and_declared_preprocessing():
    model = on_meta(alexnet, 10)
    assert sum(p.numel() for p in on_meta(alexnet).parameters()) == TORCHVISION_PARAMETERS["alexnet"]
    assert isinstance(model, AlexNet) and model.classifier[-1].out_features == 10
    assert split_model(model).names == {"conv1": 1, "pool1": 2, "conv2": 4, "pool2": 5, "conv3": 7, "conv4": 9,
                                        "conv5": 11, "pool5": 12}  # fmt: skip
    assert all(isinstance(m, zfaccel.nn.MaxPool2d) for m in model.features if isinstance(m, torch.nn.MaxPool2d))
    assert (model.input_size, model.mean, model.std) == (224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert architecture_of(model.state_dict()) == "alexnet"
    assert architecture_of(on_meta(zfnet).state_dict()) == "zfnet"
    assert architecture_of(on_meta(small_zfnet).state_dict()) == "small"
    assert architecture_of({"features.0.weight": torch.zeros(8, 3, 3, 3)}) is None


def test_bad_depth_and_classes():
    with pytest.raises(ValueError, match="depth must be one of 11, 13, 16, 19, got 12"):
        vgg(12)
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        alexnet(0)


def test_load_model_by_name_with_weights_or_a_file(tmp_path):
    torch.manual_seed(0)
    source = alexnet(10)
    model = load_model("alexnet", source.state_dict())  # a state_dict in Python, a file in the CLI
    assert isinstance(model, AlexNet) and not model.training and model.classifier[6].out_features == 10
    assert torch.equal(model.features[0].weight, source.features[0].weight)
    random_vgg = load_model("vgg13")
    assert isinstance(random_vgg, VGG) and random_vgg.classifier[6].out_features == 1000 and not random_vgg.training
    with pytest.raises(ValueError, match="weights holds vgg11 weights, not alexnet's"):
        load_model("alexnet", on_meta(vgg, 11).state_dict())
    path = tmp_path / "zf.pt"
    torch.save(zfnet(5).state_dict(), path)
    assert load_model("zfnet", path).classifier[6].out_features == 5  # zfnet takes --weights too
    assert load_model(path).classifier[6].out_features == 5


@pytest.mark.parametrize("build, size", [(alexnet, 64), (partial(vgg, 11), 32)], ids=["alexnet", "vgg11"])
def test_deconvnet_and_occlusion_take_them(build, size):
    """Plain CNNs both; small images keep it fast (avgpool adapts the features to the classifier)."""
    torch.manual_seed(0)
    model = build(10).eval()
    x = torch.randn(1, 3, size, size)
    proj = zfaccel.DeconvNet(model).project(x, "conv2", [0, 5], mode="max")
    assert proj.shape == (1, 2, 3, size, size) and bool(proj.abs().amax() > 0)
    occ = zfaccel.Occlusion(model)
    window, stride = size // 2, size // 4  # 3 x 3 positions
    fast = occ.sweep(x, window=window, stride=stride, feature_layer="conv2")
    full = occ.sweep(x, window=window, stride=stride, feature_layer="conv2", incremental=False)
    assert fast.prob.shape == (1, 3, 3)
    torch.testing.assert_close(fast.prob, full.prob, atol=1e-5, rtol=0)
