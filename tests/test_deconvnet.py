"""DeconvNet: the paper's projection, checked against the deconvnet rule through autograd and Captum."""

from __future__ import annotations

import warnings

import pytest
import torch
from deconv_oracle import map_projection, max_projection
from torch import nn

from zfaccel.analysis import DeconvNet
from zfaccel.backends import why_unavailable
from zfaccel.models import zfnet


def zfnet_shaped() -> nn.Module:
    """ZFNet's features without the normalisation layers (the oracle's rule needs none)."""
    model = zfnet().eval()
    return nn.Sequential(nn.Sequential(*[m for m in model.features if not isinstance(m, nn.LocalResponseNorm)]))


class AlexNetShaped(nn.Module):
    """torchvision AlexNet's layout (thinner): .features, .avgpool, .classifier."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(16, 24, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(24, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 24, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(96, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def alexnet_shaped() -> nn.Module:
    return AlexNetShaped().eval()


def vgg_shaped() -> nn.Module:
    """VGG's pattern: 3x3 convs with padding 1, 2x2 pools, BatchNorm (eval) and dropout in the mix."""
    bn = nn.BatchNorm2d(16)
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.uniform_(-1.5, 1.5)  # a negative gamma flips its channel's filter
    bn.bias.data.uniform_(-0.5, 0.5)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), bn, nn.ReLU(), nn.Dropout(0.3), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 5),
    ).eval()  # fmt: skip


MODELS = {
    # name: (factory, image size, layers to check)
    "zfnet": (zfnet_shaped, 224, ["conv1", "pool1", "conv2", "conv5", "pool5"]),
    "alexnet": (alexnet_shaped, 127, ["conv1", "conv2", "conv4", "pool5"]),
    # float64: the autograd rule and the deconvnet add up the same terms in other orders, and in float32
    # a projection 1e-6 of its layer's scale (a weakly firing channel) differs by 5e-5 of its maximum.
    "vgg": (lambda: vgg_shaped().double(), 32, ["conv2", "pool2", "conv4", "conv5", "pool5"]),
}


def _rule_applies(features: nn.Sequential, stop: int) -> bool:
    # A BatchNorm right after a convolution is folded into its filter, which is what autograd
    # differentiates through; one anywhere else is passed through unchanged, unlike autograd.
    return all(isinstance(features[i - 1], nn.Conv2d) for i, m in enumerate(features[: stop + 1])
               if isinstance(m, nn.BatchNorm2d))  # fmt: skip


@pytest.mark.parametrize("name", list(MODELS))
def test_max_mode_is_the_deconvnet_rule(name, gen):
    factory, size, layers = MODELS[name]
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    model = factory()
    dn = DeconvNet(model)
    images = torch.randn(2, 3, size, size, generator=gen).to(next(model.parameters()).dtype)
    for layer in layers:
        stop = dn.plain.resolve(layer)
        channels = [0, dn.trace(images[:1], layer)[0].output.shape[1] - 1]
        proj = dn.project(images, layer, channels)
        assert proj.shape == (2, 2, 3, size, size)
        for b in range(2):
            for k, c in enumerate(channels):
                expected = max_projection(dn.plain.features, images, stop, b, c)
                scale = expected.abs().max().clamp_min(1e-12)
                torch.testing.assert_close(proj[b, k] / scale, expected / scale, rtol=0, atol=2e-5,
                                           msg=f"{name} {layer} image {b} channel {c}")  # fmt: skip


@pytest.mark.parametrize("name", ["alexnet", "vgg"])
def test_map_mode_is_the_deconvnet_rule(name, gen):
    factory, size, layers = MODELS[name]
    torch.manual_seed(1)
    model = factory()
    dn = DeconvNet(model)
    images = torch.randn(2, 3, size, size, generator=gen).to(next(model.parameters()).dtype)
    for layer in layers[:3]:
        stop = dn.plain.resolve(layer)
        if not _rule_applies(dn.plain.features, stop):
            continue
        proj = dn.project(images, layer, [1, 2], mode="map")
        for b in range(2):
            for k, c in enumerate([1, 2]):
                expected = map_projection(dn.plain.features, images, stop, b, c)
                scale = expected.abs().max().clamp_min(1e-12)
                torch.testing.assert_close(proj[b, k] / scale, expected / scale, rtol=0, atol=2e-5)


def conv_bn(gen) -> nn.Sequential:
    """conv (5 channels, 3x3) + BatchNorm with running statistics and signed gammas + ReLU."""
    conv, bn = nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        bn.running_mean.copy_(torch.randn(5, generator=gen))
        bn.running_var.copy_(torch.rand(5, generator=gen) * 3 + 0.1)
        bn.weight.copy_(torch.randn(5, generator=gen))
        bn.bias.copy_(torch.randn(5, generator=gen) + 3)  # most units fire
    return nn.Sequential(conv, bn, nn.ReLU()).eval()


@pytest.mark.parametrize("fold_bn", [True, False])
def test_batch_norm_is_folded_into_the_filter(fold_bn, gen):
    """conv1's projection of one activation a at (r, c) of channel f is a * W'[f] placed at rows r..r+2,
    cols c..c+2, with W' = W * gamma / sqrt(running_var + eps) (the filter the network applies), or W
    itself with fold_bn=False (BatchNorm passed through, as before)."""
    model = conv_bn(gen)
    conv, bn = model[0], model[1]
    images = torch.randn(2, 3, 9, 9, generator=gen)
    dn = DeconvNet(model, fold_bn=fold_bn)
    act = dn.trace(images, "conv1")[0].output
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if fold_bn else torch.ones(5)
    proj = dn.project(images, "conv1", list(range(5)))
    for b in range(2):
        for f in range(5):
            pos = int(act[b, f].flatten().argmax())
            r, c = divmod(pos, act.shape[3])
            expected = torch.zeros(3, 9, 9)
            expected[:, r : r + 3, c : c + 3] = act[b, f, r, c] * conv.weight[f].detach() * scale[f].detach()
            torch.testing.assert_close(proj[b, f], expected, rtol=1e-5, atol=1e-6)


def test_folded_projection_is_the_deconvnet_rule_through_batch_norm(gen):
    """With BatchNorm folded, every layer of a conv-BN-ReLU stack projects as autograd's deconvnet rule
    through the BatchNorm (its backward multiplies by gamma / sigma, as the folded filter does)."""
    features = nn.Sequential(*conv_bn(gen), nn.MaxPool2d(2), nn.Conv2d(5, 6, 3, padding=1), nn.BatchNorm2d(6),
                             nn.ReLU()).eval()  # fmt: skip
    with torch.no_grad():
        features[5].running_var.uniform_(0.2, 3.0)
        features[5].weight.uniform_(-2, 2)
    images = torch.randn(2, 3, 14, 14, generator=gen)
    dn = DeconvNet(features)
    proj = dn.project(images, "conv2", [0, 3, 5])
    for b in range(2):
        for k, c in enumerate([0, 3, 5]):
            expected = max_projection(features, images, dn.plain.resolve("conv2"), b, c)
            torch.testing.assert_close(proj[b, k], expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
    with pytest.raises(TypeError, match="fold_bn must be a bool"):
        DeconvNet(features, fold_bn=1)


@pytest.mark.parametrize("backend", ["torch", "native"])
def test_crops_equal_composite_path(backend, gen):
    """The fused C++ crop kernels and the composite PyTorch path give the same projections."""
    why = why_unavailable(backend, torch.device("cpu"))
    if why:
        pytest.skip(f"{backend}: {why}")
    model = alexnet_shaped()
    images = torch.randn(3, 3, 127, 127, generator=gen)
    ref = DeconvNet(model, backend="torch").project(images, "conv5", [0, 5, 9])
    ours = DeconvNet(model, backend=backend).project(images, "conv5", [0, 5, 9])
    assert not ours.requires_grad and not ref.requires_grad  # pictures: no graph holding the model's weights
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


@pytest.mark.parametrize("backend", ["torch", "native"])
def test_unpooling_and_filter_share_a_kernel_on_the_native_backend(backend):
    """conv1 and conv2 of ZFNet (each under a ReLU and a pool) take the fused unpool + filter kernel
    where it runs natively, and the two steps on the torch path."""
    why = why_unavailable(backend, torch.device("cpu"))
    if why:
        pytest.skip(f"{backend}: {why}")
    dn = DeconvNet(zfnet().eval(), backend=backend)
    fused = {j: f[2] for j, f in dn._filters(dn.plain.resolve("conv5")).items()}
    assert fused == {0: backend == "native", 4: backend == "native", 8: False, 10: False, 12: False}


def test_weights_changed_between_projections_are_used(gen):
    """The filters are computed once per state of the weights: an in-place change, a new weight
    tensor and a weight turned non-finite each give what a fresh DeconvNet gives."""
    model = alexnet_shaped()
    images = torch.randn(2, 3, 127, 127, generator=gen)
    dn = DeconvNet(model)
    dn.project(images, "conv5", [0, 3])
    with torch.no_grad():
        model.features[3].weight.mul_(-2.0)
    torch.testing.assert_close(dn.project(images, "conv5", [0, 3]), DeconvNet(model).project(images, "conv5", [0, 3]))
    model.features[6].weight = nn.Parameter(torch.randn(model.features[6].weight.shape, generator=gen))
    torch.testing.assert_close(dn.project(images, "conv5", [0, 3]), DeconvNet(model).project(images, "conv5", [0, 3]))
    with torch.no_grad():
        model.features[0].weight[0, 0, 0, 0] = float("inf")
    assert not dn._filters(dn.plain.resolve("conv5"))[0][1]  # seen: the native kernels step aside
    torch.testing.assert_close(dn.project(images, "conv5", [0, 3]), DeconvNet(model).project(images, "conv5", [0, 3]),
                               equal_nan=True)  # fmt: skip


def test_cropping_gives_the_whole_map_numbers(gen):
    """Receptive-field crops compute exactly what whole maps do, on the support only."""
    model = zfnet().eval()
    images = torch.randn(2, 3, 224, 224, generator=gen)
    for layer in ("conv1", "conv2", "conv5"):
        cropped = DeconvNet(model).project(images, layer, [1, 30])
        whole = DeconvNet(model, crop=False).project(images, layer, [1, 30])
        torch.testing.assert_close(cropped, whole, rtol=1e-5, atol=1e-6 * float(whole.abs().max()))


def test_batch_size_does_not_change_results(gen):
    model = alexnet_shaped()
    images = torch.randn(3, 3, 127, 127, generator=gen)
    dn = DeconvNet(model)
    whole = dn.project(images, "conv4", list(range(8)))
    for batch_size in (1, 5):
        torch.testing.assert_close(dn.project(images, "conv4", list(range(8)), batch_size=batch_size), whole)
    small = DeconvNet(model, max_memory=1 << 16).project(images, "conv4", list(range(8)))
    torch.testing.assert_close(small, whole)


def test_projection_stays_in_the_receptive_field(gen):
    """conv1 of ZFNet: a single activation reaches a 7 x 7 patch of pixels and nothing else."""
    model = zfnet().eval()
    images = torch.randn(1, 3, 224, 224, generator=gen)
    dn = DeconvNet(model)
    act = dn.trace(images, "conv1")[0].output[0, 4]
    pos = int(act.flatten().argmax())
    r, c = divmod(pos, act.shape[1])
    proj = dn.project(images, "conv1", 4)[0, 0]
    support = proj.abs().sum(0).nonzero()
    rows, cols = support[:, 0], support[:, 1]
    assert rows.min() >= 2 * r - 1 and rows.max() <= 2 * r - 1 + 6
    assert cols.min() >= 2 * c - 1 and cols.max() <= 2 * c - 1 + 6


def test_matches_captum_neuron_deconvolution(gen):
    captum_attr = pytest.importorskip("captum.attr", reason="captum is not installed")
    torch.manual_seed(3)
    model = alexnet_shaped()
    for m in model.features:  # Captum's ReLU hooks refuse in-place ReLUs
        if isinstance(m, nn.ReLU):
            m.inplace = False
    images = torch.randn(2, 3, 127, 127, generator=gen)
    dn = DeconvNet(model)
    layer = dn.plain.resolve("conv4")
    act = dn.trace(images, layer)[0].output
    proj = dn.project(images, layer, [2, 7])
    captum = captum_attr.NeuronDeconvolution(model, model.features[layer])
    for b in range(2):
        for k, c in enumerate([2, 7]):
            pos = int(act[b, c].flatten().argmax())
            r, col = divmod(pos, act.shape[3])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                attribution = captum.attribute(images[b : b + 1], neuron_selector=(c, r, col))[0]
            expected = attribution * act[b, c, r, col]
            scale = expected.abs().max()
            torch.testing.assert_close(proj[b, k] / scale, expected / scale, rtol=0, atol=2e-5)


def test_float64_and_unbatched(gen):
    model = vgg_shaped().double()
    images = torch.randn(3, 32, 32, generator=gen, dtype=torch.float64)
    proj = DeconvNet(model).project(images, "conv2", [0, 1])
    assert proj.shape == (1, 2, 3, 32, 32) and proj.dtype == torch.float64


BAD = [
    (dict(layer="conv9"), ValueError, "unknown layer 'conv9'"),
    (dict(layer=99), ValueError, "out of range"),
    (dict(channels=[0, 64]), ValueError, r"channels \[64\] out of range"),
    (dict(channels=-1), ValueError, "out of range"),
    (dict(channels=[]), TypeError, "non-empty"),
    (dict(channels=1.5), TypeError, "channels must be"),
    (dict(mode="sum"), ValueError, "mode must be"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(images=torch.randn(2, 1, 32, 32)), ValueError, "1 channels"),
    (dict(images=torch.ones(2, 3, 32, 32, dtype=torch.int64)), TypeError, "float"),
    (dict(images=torch.randn(32, 32)), ValueError, r"\(B, C, H, W\)"),
    (dict(images=[[1.0]]), TypeError, "torch.Tensor"),
]


@pytest.mark.parametrize("override, exc, match", BAD, ids=[str(list(b[0].items())[0])[:40] for b in BAD])
def test_bad_arguments(override, exc, match):
    model = nn.Sequential(nn.Conv2d(3, 64, 3), nn.ReLU(), nn.MaxPool2d(2))
    args = dict(images=torch.randn(2, 3, 32, 32), layer="conv1", channels=[0], mode="max", batch_size=None)
    args.update(override)
    with pytest.raises(exc, match=match):
        DeconvNet(model).project(**args)


def test_unsupported_model_is_named():
    class Skip(nn.Module):
        def forward(self, x):
            return x + 1

    with pytest.raises(TypeError, match=r"model\[0\]\[1\] is Skip"):
        DeconvNet(nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), Skip())))


@pytest.mark.parametrize("lrn_before_pool", [False, True])
def test_trace_is_the_models_own_forward(lrn_before_pool, gen):
    """The trace (LocalResponseNorm included, which it computes its own faster way) gives the model's
    activations bit for bit at every layer, so its switches are those of the model's own forward."""
    torch.manual_seed(0)
    model = zfnet(lrn_before_pool=lrn_before_pool).eval()
    images = torch.randn(2, 3, 224, 224, generator=gen)
    dn = DeconvNet(model, backend="torch")
    with torch.no_grad():
        x = images
        for i, m in enumerate(model.features):
            x = m(x)
            if isinstance(m, nn.ReLU | nn.MaxPool2d | nn.LocalResponseNorm):
                out = dn.trace(images, i, record=False)[0].output
                assert torch.equal(out.view(torch.int32), x.view(torch.int32)), f"features[{i}] {m}"


def test_auto_filters_dense_crops_with_torch_and_sparse_ones_natively():
    """backend="auto" on the CPU: torch's dense transposed convolution for crops more than DENSE_ABOVE
    non-zero, the configured backend otherwise, and an explicit backend always."""
    from zfaccel.analysis.deconvnet import DENSE_ABOVE

    dense = torch.zeros(4, 10, 3, 3)
    dense.view(-1)[: int(DENSE_ABOVE * dense.numel()) + 1] = 1.0
    sparse = torch.zeros_like(dense)
    sparse.view(-1)[: int(DENSE_ABOVE * dense.numel())] = 1.0
    auto = DeconvNet(zfnet_shaped())
    assert auto._filter_backend(dense) == "torch"
    assert auto._filter_backend(sparse) == "auto"
    assert DeconvNet(zfnet_shaped(), backend="native")._filter_backend(dense) == "native"
