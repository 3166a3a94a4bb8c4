"""occlusion_attribute: Captum's Occlusion.attribute, the same numbers on both paths (engine and generic)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_deconvnet import vgg_shaped
from torch import nn

import zfaccel.analysis.occlusion.captum as oa
from zfaccel.analysis import Occlusion
from zfaccel.analysis.occlusion.captum import occlusion_attribute
from zfaccel.models import small_zfnet

captum_attr = pytest.importorskip("captum.attr", reason="captum is the oracle (pip install .[test])")


@pytest.fixture
def engines(monkeypatch) -> list:
    """Every engine the fast path makes during the test (``positions_done`` counts what it evaluated)."""
    made: list = []
    real = oa._make_engine

    def make(model):
        engine = real(model)
        if engine is not None:
            made.append(engine)
        return engine

    monkeypatch.setattr(oa, "_make_engine", make)
    return made


def captum(model, inputs, window, **kw):
    return captum_attr.Occlusion(model).attribute(inputs, window, **kw)


def assert_captum(ours: torch.Tensor, theirs: torch.Tensor, outputs: torch.Tensor | None = None) -> None:
    """Each difference of two float32 outputs carries their rounding (1 ulp = 1.2e-7 x the output), and
    outputs computed in batches of another size may round differently: a few ulps of the largest
    ``outputs`` (or, without them, of the largest attribution) apart."""
    assert ours.dtype == theirs.dtype == torch.float32 and ours.shape == theirs.shape
    scale = float((theirs if outputs is None else outputs).detach().abs().max())
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6 * scale + 1e-9)


# (window, strides, baselines, target, perturbations_per_eval) on (2, 3, 32, 32) images, all channels occluded
CASES = [
    ((3, 8, 8), (3, 4, 4), None, 1, 4),  # the paper's sweep pattern: a square sliding by half its side
    ((3, 5, 7), (1, 5, 6), 0.3, [0, 4], 3),  # non-square, last window clipped at both edges, scalar baseline
    ((3, 6, 6), 6, "tensor", "tensor", 7),  # stride = window (a tiling), per-image baseline, (B,) tensor target
    ((3, 32, 32), None, -1.0, (2,), 2),  # one window over everything, tuple target
    ((3, 11, 9), (3, 11, 9), "colour", [(1,), (3,)], 1),  # a (C, 1, 1) grey baseline, list of tuples target
]


def _baseline(spec, x: torch.Tensor, gen: torch.Generator):
    if spec == "tensor":
        return torch.randn(x.shape[0], *x.shape[1:], generator=gen, dtype=x.dtype)
    if spec == "colour":
        return torch.tensor([0.1, -0.2, 0.3], dtype=x.dtype).view(3, 1, 1)
    return spec


def _target(spec, b: int):
    return torch.tensor([3, 1])[:b] if spec == "tensor" else spec


@pytest.mark.parametrize("window, strides, baselines, target, per_eval", CASES, ids=[str(c[0]) for c in CASES])
def test_equals_captum_on_the_engine_path(window, strides, baselines, target, per_eval, engines, gen):
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    model = vgg_shaped()
    x = torch.randn(2, 3, 32, 32, generator=gen)
    kw = dict(strides=strides, baselines=_baseline(baselines, x, gen), target=_target(target, 2))
    ours = occlusion_attribute(model, x, window, perturbations_per_eval=per_eval, **kw)
    assert engines and engines[0].positions_done > 0, "the engine path was not taken"
    assert_captum(ours, captum(model, x, window, perturbations_per_eval=per_eval, **kw), model(x))
    assert torch.equal(ours, ours[:, :1].expand_as(ours)), "a window over all channels gives every channel the same"


@pytest.mark.parametrize(
    "window, strides, baselines, target, per_eval", CASES[1:3], ids=[str(c[0]) for c in CASES[1:3]]
)
def test_float64_equals_captum(window, strides, baselines, target, per_eval, engines, gen):
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    model = vgg_shaped().double()
    x = torch.randn(2, 3, 32, 32, generator=gen, dtype=torch.float64)
    kw = dict(strides=strides, baselines=_baseline(baselines, x, gen), target=_target(target, 2))
    ours = occlusion_attribute(model, x, window, perturbations_per_eval=per_eval, **kw)
    theirs = captum(model, x, window, perturbations_per_eval=per_eval, **kw)
    assert ours.dtype == theirs.dtype == torch.float32  # Captum divides .float() totals: float32 out
    # float64 sums in another order round to the same or the neighbouring float32 (2**-23 relative)
    torch.testing.assert_close(ours, theirs, rtol=2.4e-7, atol=1.2e-7 * float(theirs.abs().max()))


def test_zfnet_shaped_model(engines, gen):
    """The demo model's ZFNet pattern (LRN, 3x3/2 ceil-mode pools) at 64 x 64, a 16-pixel grey square."""
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    model = small_zfnet(10).eval()
    x = torch.randn(2, 3, 64, 64, generator=gen)
    kw = dict(strides=(3, 12, 12), baselines=0.0, target=[7, 2], perturbations_per_eval=25)
    ours = occlusion_attribute(model, x, (3, 16, 16), **kw)
    assert engines[0].positions_done == 2 * 5 * 5
    assert_captum(ours, captum(model, x, (3, 16, 16), **kw), model(x))


def test_occlusion_attribute_method_and_training_mode(engines, gen):
    """Occlusion(model).attribute is the one-line switch from Captum; a model left in training mode
    (dropout) is run as Captum runs it, by the generic path."""
    model = vgg_shaped()
    x = torch.randn(1, 3, 32, 32, generator=gen)
    ours = Occlusion(model).attribute(x, (3, 8, 8), strides=(3, 8, 8), baselines=0.2, target=4)
    assert engines[0].positions_done == 16
    assert_captum(ours, captum(model, x, (3, 8, 8), strides=(3, 8, 8), baselines=0.2, target=4), model(x))
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0  # training mode without randomness, so that Captum's numbers are reproducible
    Occlusion(model).attribute(x, (3, 8, 8), strides=(3, 8, 8), target=4)
    assert len(engines) == 1


def test_batch_size_changes_nothing(engines, gen):
    model = vgg_shaped()
    x = torch.randn(3, 3, 32, 32, generator=gen)
    one = occlusion_attribute(model, x[:1], (1, 16, 16), strides=(1, 8, 8), target=2)
    for per_eval in (1, 100):
        many = occlusion_attribute(model, x, (1, 16, 16), strides=(1, 8, 8), target=2, perturbations_per_eval=per_eval)
        torch.testing.assert_close(many[:1], one, rtol=1e-5, atol=1e-7)


def test_windows_smaller_than_the_channels_take_the_generic_path(engines, gen):
    model = vgg_shaped()
    x = torch.randn(2, 3, 32, 32, generator=gen)
    kw = dict(strides=(1, 4, 4), baselines=0.5, target=0, perturbations_per_eval=5)
    ours = occlusion_attribute(model, x, (2, 8, 8), **kw)
    assert not engines
    assert_captum(ours, captum(model, x, (2, 8, 8), **kw))


class TwoInputs(nn.Module):
    """Images and a (B, 5) side vector, plus optional extra arguments: a (B,) weight and a float."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6 + 5, 3)

    def forward(self, x, v, weight=None, scale=1.0):
        out = self.fc(torch.cat([torch.relu(self.conv(x)).flatten(1), v], 1)) * scale
        return out if weight is None else out * weight[:, None]


def test_tuple_inputs(engines, gen):
    model = TwoInputs().eval()
    x, v = torch.randn(2, 3, 8, 8, generator=gen), torch.randn(2, 5, generator=gen)
    window, strides = ((3, 3, 3), (2,)), ((3, 2, 2), 1)
    for baselines in (None, (0.5, torch.randn(1, 5, generator=gen))):
        ours = occlusion_attribute(model, (x, v), window, strides, baselines, target=1, perturbations_per_eval=4)
        theirs = captum(model, (x, v), window, strides=strides, baselines=baselines, target=1, perturbations_per_eval=4)
        assert isinstance(ours, tuple) and len(ours) == 2
        for a, b in zip(ours, theirs, strict=True):
            assert_captum(a, b)
    assert not engines


def test_additional_forward_args(engines, gen):
    model = TwoInputs().eval()
    x, v = torch.randn(3, 3, 8, 8, generator=gen), torch.randn(3, 5, generator=gen)
    weight = torch.rand(3, generator=gen) + 0.5
    kw = dict(strides=(3, 2, 2), target=[0, 2, 1], additional_forward_args=(v, weight, 2.0))
    for per_eval in (1, 3):
        ours = occlusion_attribute(model, x, (3, 4, 4), perturbations_per_eval=per_eval, **kw)
        assert_captum(ours, captum(model, x, (3, 4, 4), perturbations_per_eval=per_eval, **kw))
    assert not engines


class SoftmaxOut(nn.Module):
    """A plain CNN (features, classifier) whose forward adds a softmax that its split does not see."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(6 * 8 * 8, 4))

    def forward(self, x):
        return torch.softmax(self.classifier(self.features(x)), 1)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 16 * 16, 4)

    def forward(self, x):
        return self.fc((x + torch.relu(self.conv(x))).flatten(1))


@pytest.mark.parametrize("factory", [SoftmaxOut, Residual])
def test_models_the_engine_cannot_run_exactly(factory, engines, gen):
    model = factory().eval()
    x = torch.randn(2, 3, 16, 16, generator=gen)
    kw = dict(strides=(3, 2, 2), target=3, perturbations_per_eval=6)
    assert_captum(occlusion_attribute(model, x, (3, 4, 4), **kw), captum(model, x, (3, 4, 4), **kw))
    assert all(e.positions_done == 0 for e in engines)  # made (SoftmaxOut's split looks plain), never used


def test_scalar_output_and_no_target(gen):
    model = lambda x: (x**2).sum((1, 2))  # noqa: E731
    x = torch.randn(2, 5, 6, generator=gen)
    ours = occlusion_attribute(model, x, (2, 3), strides=(1, 2), baselines=1.0)
    assert_captum(ours, captum(model, x, (2, 3), strides=(1, 2), baselines=1.0))


@st.composite
def generic_configs(draw):
    """Inputs of 1 to 3 dims per example, any window within them, strides up to the window (any where
    the window fills the dim), per-example or scalar baselines, 1 to 5 perturbations per call."""
    shape = tuple(draw(st.integers(1, 6)) for _ in range(draw(st.integers(1, 3))))
    window = tuple(draw(st.integers(1, n)) for n in shape)
    strides = tuple(draw(st.integers(1, w if w < n else 3)) for w, n in zip(window, shape, strict=True))
    baseline = draw(st.sampled_from([None, 0.5, "tensor"]))
    return shape, window, strides, baseline, draw(st.integers(1, 5)), draw(st.integers(0, 2**31))


@settings(max_examples=20, deadline=None)
@given(config=generic_configs())
def test_property_any_window_equals_captum(config):
    """The generic path on N-d inputs: a fixed random (B, ...) -> (B, 3) map, target per example."""
    shape, window, strides, baseline, per_eval, seed = config
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, *shape, generator=g, dtype=torch.float64)
    mix = torch.randn(x[0].numel(), 3, generator=g, dtype=torch.float64)
    model = lambda t: torch.tanh(t.flatten(1) @ mix)  # noqa: E731
    base = torch.randn(2, *shape, generator=g, dtype=torch.float64) if baseline == "tensor" else baseline
    kw = dict(strides=strides, baselines=base, target=[2, 0], perturbations_per_eval=per_eval)
    ours, theirs = occlusion_attribute(model, x, window, **kw), captum(model, x, window, **kw)
    torch.testing.assert_close(ours, theirs, rtol=2.4e-7, atol=1.2e-7 * float(theirs.abs().max()))


def test_a_hand_computed_case():
    """1-d inputs [1, 2, 3, 4], model = sum, window 2 stride 1: windows {0,1} {1,2} {2,3} remove 3, 5, 7;
    element 1 is covered by two of them: (3 + 5) / 2 = 4."""
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    out = occlusion_attribute(lambda t: t.sum(1), x, (2,))
    assert out.tolist() == [[3.0, 4.0, 6.0, 7.0]]


BAD = [
    (dict(sliding_window_shapes=(3, 40, 8)), ValueError, "between 1 and the input's dims"),
    (dict(sliding_window_shapes=(3, 8)), ValueError, "tuple of 3 ints"),
    (dict(sliding_window_shapes=(3, 0, 8)), ValueError, "between 1"),
    (dict(sliding_window_shapes=(3, 4, 4), strides=(1, 5, 1)), ValueError, "exceeds the window"),
    (dict(sliding_window_shapes=(3, 4, 4), strides=0), ValueError, "at least 1"),
    (dict(sliding_window_shapes=(3, 4, 4), strides=(1, 2)), ValueError, "tuple of 3 ints"),
    (dict(sliding_window_shapes=(3, 4, 4), baselines=torch.zeros(5, 5)), ValueError, "does not broadcast"),
    (dict(sliding_window_shapes=(3, 4, 4), baselines=(0.0, 1.0)), ValueError, "one baseline per input"),
    (dict(sliding_window_shapes=(3, 4, 4), baselines="grey"), TypeError, "number or a tensor"),
    (dict(sliding_window_shapes=(3, 4, 4), target=9), ValueError, "out of range"),
    (dict(sliding_window_shapes=(3, 4, 4), target=[1, 2, 3]), ValueError, "3 entries for 2 examples"),
    (dict(sliding_window_shapes=(3, 4, 4), target=1.5), TypeError, "target must be"),
    (dict(sliding_window_shapes=(3, 4, 4), perturbations_per_eval=0), ValueError, "at least 1"),
]  # fmt: skip


@pytest.mark.parametrize("kw, error, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_arguments(kw, error, message):
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 4)).eval()
    with pytest.raises(error, match=message):
        occlusion_attribute(model, torch.zeros(2, 3, 8, 8), **kw)


def test_aggregating_model_needs_one_perturbation_per_eval():
    with pytest.raises(ValueError, match="must grow with the batch"):
        occlusion_attribute(lambda t: t.sum(), torch.ones(2, 4), (2,), perturbations_per_eval=2)
    assert_captum(
        occlusion_attribute(lambda t: t.sum(), torch.ones(2, 4), (2,)),
        captum(lambda t: t.sum(), torch.ones(2, 4), (2,)),
    )
