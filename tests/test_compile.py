"""torch.compile of a CNN built with zfaccel.nn, of a deconvnet projection and of an occlusion engine
batch: one graph each (fullgraph=True), eager's numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zfaccel
from zfaccel.analysis import DeconvNet
from zfaccel.analysis.occlusion.engine import inference
from zfaccel.analysis.occlusion.factory import make_engine
from zfaccel.analysis.occlusion.incremental import IncrementalEngine
from zfaccel.analysis.occlusion.plan import plan
from zfaccel.nn import MaxPool2d
from zfaccel.ops.crops import conv_transpose_crops, unpool_crops

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")),
]


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        MaxPool2d(3, 2, ceil_mode=True, relu=True),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        MaxPool2d(2),
        nn.Flatten(),
        nn.LazyLinear(5),
    )


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_model_matches_eager(device):
    torch.manual_seed(0)
    model = small_cnn().to(device)
    x = torch.randn(4, 3, 21, 21, device=device)
    model(x)  # materialise the lazy layer
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)  # raises on any graph break
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_eager, out_compiled = model(xa), compiled(xb)
    torch.testing.assert_close(out_compiled, out_eager)
    out_eager.square().sum().backward()
    out_compiled.square().sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad)


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_functional_ops(device):
    """The functional API (checks included) traces into one graph too."""

    def deconv_step(x):
        y, s = zfaccel.max_pool2d_switches(x, 3, 2, relu=True)
        return zfaccel.max_unpool2d_switches(y * 2, s, x.shape[-2:], 3, 2, relu=True)

    x = torch.randn(2, 4, 13, 13, device=device)
    torch._dynamo.reset()
    compiled = torch.compile(deconv_step, fullgraph=True)
    torch.testing.assert_close(compiled(x), deconv_step(x))


# The projection and the occlusion batch are traced with backend="aot_eager": AOTAutograd traces the
# whole function with fake tensors (the ops' fake kernels, functionalisation), and any graph break
# fails fullgraph=True, which is what these tests show; inductor's code generation on top takes
# 15-50 s per graph on two cores and adds nothing to that (test_compiled_functional_ops runs it).
TRACE = "aot_eager"


def small_cnn_features() -> nn.Sequential:
    """ZFNet's pattern: conv, ReLU, pool (ceil_mode), twice, with padding and stride."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 5, 2, 1), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(8, 12, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(3, 2),
    ).eval()  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_deconvnet_projection(device):
    """DeconvNet's whole descent from pool2 to pixels in crop mode (the default), in one graph: per
    layer the switch unpool of the crops with the fused ReLU (zfaccel::unpool_crops) and the
    transposed convolution of the crops (zfaccel::conv_transpose_crops), as project() runs them."""
    torch.manual_seed(0)
    dn = DeconvNet(small_cnn_features().to(device))
    images = torch.randn(2, 3, 40, 40, device=device)
    trace, stop = dn.trace(images, "pool2")
    act = trace.output
    image, channel = torch.tensor([0, 1, 0], device=device), torch.tensor([1, 5, 11], device=device)
    flat = act[image, channel].flatten(1)
    best = flat.argmax(1)
    position = torch.stack([best // act.shape[3], best % act.shape[3]], 1)
    region = dn._single(act, channel, position, flat.amax(1))
    filters = dn._filters(stop)
    eager = dn._down(region, trace, stop, image, filters)
    torch._dynamo.reset()
    compiled = torch.compile(dn._down, fullgraph=True, backend=TRACE)(region, trace, stop, image, filters)
    assert eager.signal.shape[1] == 3 and eager.signal.abs().sum() > 0
    torch.testing.assert_close(compiled.signal, eager.signal)
    assert torch.equal(compiled.offset, eager.offset)


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_occlusion_engine_batch(device):
    """The tensor part of IncrementalEngine._run for one batch, in one graph: stage 0's crops of the
    occluded images (zfaccel::occlusion_batch), each stage's convolution or fused ReLU + switch pool
    on its crops, the recomputed regions pasted into crops of the cached clean maps, the feature
    totals and the head.

    _run as a whole is not traced: its planning (plan(), the paste runs) turns tensors into Python
    ints and lists. So the plan is made first (_schedule, as _run does) and _execute, which _run
    calls with it, is compiled.
    """
    torch.manual_seed(0)
    features = small_cnn_features()
    model = nn.Sequential(features, nn.Flatten(), nn.Linear(12 * 4 * 4, 5)).eval().to(device)
    images = torch.randn(2, 3, 40, 40, device=device)
    engine = make_engine(model, "conv2", incremental=True)
    assert isinstance(engine, IncrementalEngine)
    engine.prepare(images, torch.zeros_like(images))
    window = (8, 8)
    positions = torch.tensor([[0, 0, 0], [1, 12, 20], [0, 30, 6], [1, 32, 32]], device=device)
    with inference(model):
        pos = positions.cpu()
        keys = engine._paste_keys(plan(engine.stages, engine.sizes, pos[:, 1], pos[:, 2], window)).split(6, 1)
        steps = engine._schedule(positions, window, keys)
        kinds = [s.kind for s in steps]
        assert kinds[0] == "occlude" and "cut" in kinds and steps[-1].cut is not None  # crops all the way
        assert any(s.tap is not None for s in steps)
        eager = engine._execute(positions, window, steps)
        torch._dynamo.reset()
        compiled = torch.compile(engine._execute, fullgraph=True, backend=TRACE)(positions, window, steps)
    for ours, theirs in zip(compiled, eager, strict=True):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_new_ops_with_inductor(device):
    """spatial_argmax, occlusion_batch and the crop ops in one graph through inductor, the default backend."""

    def step(images, positions, origins, switches, weight):
        crops = zfaccel.occlusion_batch(images, images.new_zeros(()), positions, 3, origins, (6, 6))
        values, _ = zfaccel.spatial_argmax(crops)
        index = positions[:, 0]
        offset = origins // 2
        up = unpool_crops(crops[:, :, :3, :3] * values[..., None, None], switches, index, offset,
                          (3, 3), (2, 2), (0, 0), (1, 1), (11, 11), relu=True)  # fmt: skip
        return conv_transpose_crops(up, weight, (1, 1), (1, 1), 1, offset * 2, (13, 13), weights_finite=True)

    images = torch.randn(2, 4, 11, 11, device=device)
    _, switches = zfaccel.max_pool2d_switches(images, 3, 2)
    positions = torch.tensor([[0, 2, 3], [1, 5, 0], [1, 8, 8]], device=device)
    origins = torch.tensor([[0, 0], [4, 2], [6, 6]], device=device)
    weight = torch.randn(4, 2, 3, 3, device=device)
    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True)
    torch.testing.assert_close(compiled(images, positions, origins, switches, weight),
                               step(images, positions, origins, switches, weight))  # fmt: skip
