"""Occlusion engines: incremental inference equals full re-inference equals the model's own forward
on brute-force occluded copies, over whole grids (borders included), several windows and models."""

from __future__ import annotations

import warnings

import pytest
import torch
from occlusion_support import Residual, build, energise, reference
from torch import nn

from zfaccel.analysis.occlusion.engine import FullEngine
from zfaccel.analysis.occlusion.factory import make_engine
from zfaccel.analysis.occlusion.grid import grid, positions_of
from zfaccel.analysis.occlusion.incremental import IncrementalEngine
from zfaccel.models import split_model, zfnet

PROB_ATOL = 1e-5  # the bound, float32

# (model, window, stride, feature layer): ZFNet's geometry with the paper's 32/8 and the
# benchmark's 16/4 and 64/16; non-square and odd windows; a window as large as the image.
CASES = [
    ("zfnet", (32, 32), (24, 24), "conv5"),
    ("zfnet", (64, 48), (40, 56), "pool2"),
    ("zfnet", (16, 16), (52, 52), "conv1"),
    ("alexnet", (16, 16), (12, 12), "conv2"),
    ("alexnet", (31, 17), (12, 20), "pool5"),
    ("vgg", (8, 8), (3, 3), "conv3"),
    ("vgg", (5, 11), (4, 7), 9),
    ("vgg", (32, 32), (1, 1), "conv4"),
    ("small", (16, 16), (6, 6), "conv5"),
    ("sequential", (7, 7), (5, 5), "conv2"),
    ("sequential", (48, 20), (3, 7), "conv3"),
]


def _run(engine, images, baseline, positions, window):
    engine.prepare(images, baseline)
    return engine.evaluate(positions, window)


def _compare(logits, feats, ref_logits, ref_feats, what):
    prob, ref_prob = torch.softmax(logits, 1), torch.softmax(ref_logits, 1)
    diff = (prob - ref_prob).abs().max().item()
    assert diff <= PROB_ATOL, f"{what}: max |prob diff| {diff:.2e}"
    # Labels must agree wherever the top two classes are not a near-tie.
    top2 = ref_prob.topk(2, 1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-4
    assert torch.equal(prob.argmax(1)[clear], ref_prob.argmax(1)[clear]), f"{what}: labels differ"
    scale = ref_feats.abs().amax(0, keepdim=True).clamp_min(1e-6)
    torch.testing.assert_close(feats / scale, ref_feats / scale, rtol=0, atol=2e-5, msg=what)


@pytest.mark.parametrize("name,window,stride,layer", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}" for c in CASES])
def test_incremental_equals_full_and_brute_force(name, window, stride, layer, gen):
    model, size = build(name, seed=len(name) + window[0])
    images = torch.randn(2, 3, size, size, generator=gen)
    baseline = torch.randn(2, 3, size, size, generator=gen) * 0.5
    n = grid((size, size), window, stride)
    positions = positions_of(2, n, stride, images.device)
    inc = make_engine(model, layer, incremental=True)
    full = make_engine(model, layer, incremental=False)
    assert isinstance(inc, IncrementalEngine) and type(full) is FullEngine
    logits, feats = _run(inc, images, baseline, positions, window)
    full_logits, full_feats = _run(full, images, baseline, positions, window)
    plain = split_model(model)
    ref_logits, ref_feats = reference(model, images, baseline, positions, window, plain.resolve(layer), plain.features)
    assert ref_prob_spread(ref_logits) > 1e-3, "the model's outputs barely move: the test would be vacuous"
    _compare(logits, feats, ref_logits, ref_feats, f"incremental {name}")
    _compare(full_logits, full_feats, ref_logits, ref_feats, f"full {name}")
    torch.testing.assert_close(inc.clean_logits, full.clean_logits, rtol=1e-5, atol=1e-5)


def ref_prob_spread(logits: torch.Tensor) -> float:
    """How far occlusion moves the probabilities: the largest range over positions of any class."""
    prob = torch.softmax(logits, 1)
    return float((prob.amax(0) - prob.amin(0)).max())


def test_real_zfnet_borders_and_interior(gen):
    """The paper's full-size ZFNet on the four corners, edge midpoints and the centre of the 32/8 grid."""
    torch.manual_seed(0)
    model = energise(zfnet(num_classes=50), seed=3, gain=1.3)
    images = torch.randn(1, 3, 224, 224, generator=gen)
    baseline = torch.zeros_like(images)
    corners = [(0, 0), (0, 192), (192, 0), (192, 192), (0, 96), (96, 0), (192, 104), (96, 96), (8, 184)]
    positions = torch.tensor([(0, r, c) for r, c in corners])
    logits, feats = _run(make_engine(model, "conv5"), images, baseline, positions, (32, 32))
    ref_logits, ref_feats = reference(model, images, baseline, positions, (32, 32), 13, model.features)
    _compare(logits, feats, ref_logits, ref_feats, "zfnet")


def test_order_of_positions_is_kept(gen):
    model, size = build("vgg")
    images = torch.randn(3, 3, size, size, generator=gen)
    positions = positions_of(3, grid((size, size), (6, 6), (3, 3)), (3, 3), images.device)
    shuffled = positions[torch.randperm(len(positions), generator=gen)]
    engine = make_engine(model, "conv2")
    engine.prepare(images, torch.zeros_like(images))
    a = engine.evaluate(positions, (6, 6))
    order = {tuple(p): i for i, p in enumerate(positions.tolist())}
    b = engine.evaluate(shuffled, (6, 6))
    back = torch.tensor([order[tuple(p)] for p in shuffled.tolist()])
    torch.testing.assert_close(b[0], a[0][back], rtol=0, atol=1e-5)
    torch.testing.assert_close(b[1], a[1][back], rtol=1e-5, atol=1e-5)


def test_small_max_memory_gives_small_batches_and_the_same_numbers(gen):
    model, size = build("alexnet")
    images = torch.randn(1, 3, size, size, generator=gen)
    positions = positions_of(1, grid((size, size), (16, 16), (16, 16)), (16, 16), images.device)
    big = make_engine(model, "conv2")
    small = make_engine(model, "conv2", max_memory=200_000)
    a = _run(big, images, torch.zeros_like(images), positions, (16, 16))
    b = _run(small, images, torch.zeros_like(images), positions, (16, 16))
    assert small.last_batch_size < big.last_batch_size and small.last_batch_size <= 4
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(a[1], b[1], rtol=1e-5, atol=1e-5)


def test_out_of_memory_halves_the_batch(gen, monkeypatch):
    model, size = build("vgg")
    images = torch.randn(1, 3, size, size, generator=gen)
    positions = positions_of(1, grid((size, size), (8, 8), (4, 4)), (4, 4), images.device)
    engine = make_engine(model, "conv2", batch_size=32)
    expected = _run(engine, images, torch.zeros_like(images), positions, (8, 8))
    real = IncrementalEngine._evaluate_batch

    def tight(self, pos, window):
        if len(pos) > 5:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes")
        return real(self, pos, window)

    monkeypatch.setattr(IncrementalEngine, "_evaluate_batch", tight)
    got = engine.evaluate(positions, (8, 8))
    assert engine.last_batch_size == 4
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-5, atol=1e-5)


def test_other_errors_are_not_taken_for_out_of_memory(gen, monkeypatch):
    model, size = build("vgg")
    engine = make_engine(model, "conv2")
    images = torch.randn(1, 3, size, size, generator=gen)
    engine.prepare(images, torch.zeros_like(images))
    monkeypatch.setattr(IncrementalEngine, "_evaluate_batch", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        engine.evaluate(torch.tensor([[0, 0, 0]]), (4, 4))


def test_unsupported_model_warns_and_runs_full(gen):
    torch.manual_seed(0)
    model = energise(Residual(), seed=1)
    images = torch.randn(2, 3, 20, 20, generator=gen)
    with pytest.warns(UserWarning, match="full re-inference"):
        engine = make_engine(model, "block")
    assert type(engine) is FullEngine
    positions = positions_of(2, grid((20, 20), (6, 6), (7, 7)), (7, 7), images.device)
    logits, feats = _run(engine, images, torch.zeros_like(images), positions, (6, 6))
    ref_logits, _ = reference(model, images, torch.zeros_like(images), positions, (6, 6))
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)
    assert feats.shape == (len(positions), 8)
    with pytest.raises(ValueError, match="feature_layer"):
        make_engine(model, "nope", incremental=False)


def test_features_not_starting_with_a_convolution_fall_back(gen):
    model = nn.Sequential(nn.Sequential(nn.BatchNorm2d(3).eval(), nn.Conv2d(3, 4, 3), nn.ReLU()), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 3)).eval()  # fmt: skip
    with pytest.warns(UserWarning, match="BatchNorm2d"):
        engine = make_engine(model, "conv1")
    images = torch.randn(1, 3, 10, 10, generator=gen)
    positions = positions_of(1, grid((10, 10), (4, 4), (3, 3)), (3, 3), images.device)
    logits, _ = _run(engine, images, torch.zeros_like(images), positions, (4, 4))
    torch.testing.assert_close(logits, reference(model, images, torch.zeros_like(images), positions, (4, 4))[0])


def test_full_engine_asked_for_gives_no_warning():
    model, _ = build("vgg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert type(make_engine(model, "conv1", incremental=False)) is FullEngine


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"max_memory": -1}, {"batch_size": 2.5}])
def test_bad_engine_arguments(bad):
    model, _ = build("vgg")
    with pytest.raises(ValueError, match=next(iter(bad))):
        make_engine(model, "conv1", **bad)


def test_engine_counts_macs():
    model, size = build("zfnet")
    engine = make_engine(model, "conv5")
    images = torch.randn(1, 3, size, size)
    _run(engine, images, torch.zeros_like(images), torch.tensor([[0, 96, 96]]), (32, 32))
    assert engine.positions_done == 1 and 0 < engine.macs_done
