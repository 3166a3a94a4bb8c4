"""occlusion_batch on every backend against an independent oracle, bit for bit (the op is a copy).

The oracle builds each occluded image the obvious way (clone, paste the baseline
over the occluder, cut the crop out of a zero-padded frame) with Python ints,
so it shares no index arithmetic with the reference or the kernels.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import DTYPES, skip_reason, target_params

import zfaccel
from zfaccel import native

TARGETS = target_params("occlusion_batch")
INT_VIEWS = {
    torch.float32: torch.int32,
    torch.float64: torch.int64,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
}
LAYOUTS = ["contiguous", "channels_last", "sliced", "transposed"]
BASELINES = ["scalar", "per_channel", "full", "expanded"]

CASES = [
    # name, images (B, C, H, W), window (wh, ww), positions (image, row, col),
    # crop origins (row, col) or None for (0, 0), crop size or None for (H, W)
    ("full images", (1, 3, 12, 10), (4, 3), [(0, 2, 3), (0, 0, 0), (0, 8, 7)], None, None),
    ("occluder clipped at every border", (1, 2, 9, 9), (5, 5),
     [(0, -2, -3), (0, 6, 7), (0, -4, 8), (0, 7, -4), (0, 20, -20), (0, -5, -5)], None, None),
    ("crops inside the image", (1, 3, 16, 16), (4, 4), [(0, 5, 5), (0, 0, 12)], [(3, 3), (0, 10)], (7, 6)),
    ("crops partly outside", (1, 3, 10, 11), (3, 3), [(0, 0, 0), (0, 8, 9), (0, -1, 4)], [(-3, -2), (6, 8), (-2, 7)],
     (7, 6)),
    ("crops wholly outside", (1, 2, 6, 6), (2, 2), [(0, 1, 1), (0, 1, 1), (0, 1, 1), (0, 0, 0)],
     [(-9, 0), (0, 6), (100, -100), (-4, -5)], (4, 5)),
    ("window bigger than the crop", (1, 3, 12, 12), (9, 9), [(0, 1, 1), (0, -3, 5)], [(3, 3), (0, 6)], (4, 4)),
    ("crop bigger than the image", (1, 1, 5, 4), (2, 3), [(0, 1, 1), (0, 4, 3)], [(-2, -3), (-1, 0)], (9, 11)),
    ("1x1 image", (1, 1, 1, 1), (1, 1), [(0, 0, 0), (0, 1, 0), (0, -1, 0)], None, None),
    ("1x1 crop and window", (1, 2, 5, 5), (1, 1), [(0, 2, 2), (0, 2, 2), (0, 0, 0)], [(2, 2), (2, 3), (5, 5)], (1, 1)),
    ("positions mixing images", (3, 2, 7, 8), (3, 2), [(2, 1, 1), (0, 4, 5), (1, 0, 0), (2, 6, 7), (0, -1, -1)],
     [(0, 0), (2, 2), (-1, -1), (3, 4), (0, 0)], (5, 5)),
    ("no positions", (2, 3, 6, 6), (2, 2), [], None, None),
    ("zfnet conv1 receptive crop", (2, 3, 40, 40), (8, 8), [(1, 16, 16), (0, 30, 2)], [(12, 12), (25, -3)], (15, 15)),
]  # fmt: skip
CASE_IDS = [c[0].replace(" ", "_") for c in CASES]


def special_values(shape: tuple[int, ...], dtype: torch.dtype, gen: torch.Generator) -> torch.Tensor:
    """Random values with 5% NaN, 5% +inf, 5% -inf and 5% -0.0 (bit copies must keep them all)."""
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    u = torch.rand(shape, generator=gen, dtype=torch.float64)
    x[u < 0.05] = float("nan")
    x[(u >= 0.05) & (u < 0.10)] = float("inf")
    x[(u >= 0.10) & (u < 0.15)] = float("-inf")
    x[(u >= 0.15) & (u < 0.20)] = -0.0
    return x.to(dtype)


def make_images(shape, dtype, layout: str, gen: torch.Generator, device: str) -> torch.Tensor:
    """(B, C, H, W) with the given strides: contiguous, channels_last, sliced (every other row and column of a
    larger tensor, at an offset) or transposed (H and W swapped in memory)."""
    b, c, h, w = shape
    x = special_values(shape, dtype, gen)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "sliced":
        big = torch.zeros((b, c + 1, 2 * h + 1, 2 * w + 1), dtype=dtype)
        big[:, 1:, 1::2, 1::2] = x
        x = big[:, 1:, 1::2, 1::2]
    elif layout == "transposed":
        x = x.transpose(2, 3).contiguous().transpose(2, 3)
    return x.to(device)


def make_baseline(kind: str, shape, dtype, gen: torch.Generator, device: str) -> torch.Tensor:
    """What the op accepts: a scalar tensor, a (C, 1, 1) colour, a full (B, C, H, W) tensor, or a
    (1, C, 1, W) tensor expanded to (B, C, H, W) with stride 0 (the sweep engine's grey image)."""
    b, c, h, w = shape
    if kind == "scalar":
        return special_values((), dtype, gen).to(device)
    if kind == "per_channel":
        return special_values((c, 1, 1), dtype, gen).to(device)
    if kind == "full":
        return special_values(shape, dtype, gen).to(device)
    return special_values((1, c, 1, w), dtype, gen).to(device).expand(b, c, h, w)


def oracle(images, baseline, positions, window, crop_origins, crop_size) -> torch.Tensor:
    """Per position: clone the image, paste the baseline over the clipped occluder, cut out the crop."""
    images4 = images if images.dim() == 4 else images.unsqueeze(0)
    base4 = baseline.expand_as(images4)
    _, c, h, w = images4.shape
    wh, ww = window
    ch, cw = crop_size
    out = torch.zeros((len(positions), c, ch, cw), dtype=images.dtype)
    for p, ((n, pr, pc), (r0, c0)) in enumerate(zip(positions, crop_origins, strict=True)):
        img = images4[n].cpu().clone()
        rlo, rhi = min(max(pr, 0), h), min(max(pr + wh, 0), h)
        clo, chi = min(max(pc, 0), w), min(max(pc + ww, 0), w)
        img[:, rlo:rhi, clo:chi] = base4[n, :, rlo:rhi, clo:chi].cpu()
        ilo, ihi = min(max(-r0, 0), ch), min(max(h - r0, 0), ch)
        jlo, jhi = min(max(-c0, 0), cw), min(max(w - c0, 0), cw)
        if ilo < ihi and jlo < jhi:
            out[p, :, ilo:ihi, jlo:jhi] = img[:, r0 + ilo : r0 + ihi, c0 + jlo : c0 + jhi]
    return out


def assert_bits(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """The same bits everywhere: NaN payloads and the sign of zero included."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.is_contiguous(), f"{what}: output not contiguous"
    view = INT_VIEWS[actual.dtype]
    same = actual.cpu().view(view) == expected.view(view)
    if not bool(same.all()):
        idx = tuple(int(i) for i in (~same).nonzero()[0])
        raise AssertionError(
            f"{what}: {int((~same).sum())} of {same.numel()} differ; first at {list(idx)}: "
            f"{actual.cpu()[idx]} != {expected[idx]}"
        )


def run_case(target, shape, window, positions, origins, crop, dtype, layout, baseline_kind, gen, **kw):
    device, backend = target
    images = make_images(shape, dtype, layout, gen, device)
    baseline = make_baseline(baseline_kind, shape, dtype, gen, device)
    pos = torch.tensor(positions, dtype=torch.int64).view(-1, 3).to(device)
    co = None if origins is None else torch.tensor(origins, dtype=torch.int64).view(-1, 2).to(device)
    out = zfaccel.occlusion_batch(images, baseline, pos, window, co, crop, backend=backend, **kw)
    origins = origins if origins is not None else [(0, 0)] * len(positions)
    expected = oracle(images, baseline, positions, window, origins, crop or tuple(shape[2:]))
    assert_bits(out, expected, f"{backend} {dtype} {layout} {baseline_kind}")
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("target", TARGETS)
def test_matches_oracle(target, case, dtype, gen):
    """The table's configurations x every dtype; layouts and baselines cycle along the table."""
    name, shape, window, positions, origins, crop = case
    k = CASES.index(case)
    run_case(target, shape, window, positions, origins, crop, dtype, LAYOUTS[k % 4], BASELINES[k % 4], gen)


@pytest.mark.parametrize("baseline_kind", BASELINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("target", TARGETS)
def test_layouts_and_baselines(target, layout, baseline_kind, gen):
    """Every images layout with every kind of baseline, on crops partly outside and clipped occluders."""
    dtype = torch.float16 if layout == "sliced" else torch.float32
    positions = [(1, -2, 3), (0, 4, 5), (1, 6, -1)]
    run_case(target, (2, 3, 9, 10), (4, 5), positions, [(-2, -1), (2, 3), (5, 4)], (6, 8), dtype, layout,
             baseline_kind, gen)  # fmt: skip


@pytest.mark.parametrize("target", TARGETS)
def test_unbatched_images_and_defaults(target, gen):
    """(C, H, W) images with image index 0; no crop arguments gives whole images."""
    device, backend = target
    images = special_values((3, 6, 7), torch.float32, gen).to(device)
    baseline = torch.tensor(0.5, device=device)
    positions = [(0, 1, 2), (0, 5, 5)]
    out = zfaccel.occlusion_batch(images, baseline, torch.tensor(positions, device=device), 3, backend=backend)
    assert_bits(out, oracle(images, baseline, positions, (3, 3), [(0, 0)] * 2, (6, 7)), backend)


@pytest.mark.parametrize("target", TARGETS)
def test_extreme_coordinates(target, gen):
    """Any int64 occluder or crop position is safe: far outside reads as no occluder / all zeros."""
    device, backend = target
    if backend == "torch":
        pytest.skip("the torch reference adds sizes to int64 coordinates, which overflows at the extremes")
    big, small = 2**63 - 1, -(2**63)
    images = special_values((1, 2, 5, 6), torch.float64, gen).to(device)
    baseline = torch.zeros((), dtype=torch.float64, device=device)
    positions = torch.tensor([(0, big, big), (0, small, small), (0, 1, 1), (0, 1, 1)], device=device)
    origins = torch.tensor([(0, 0), (0, 0), (big, big), (small, 2)], device=device)
    out = zfaccel.occlusion_batch(images, baseline, positions, (2, 2), origins, (5, 6), backend=backend)
    assert_bits(out[0], images[0].cpu(), "occluder at +2^63")
    assert_bits(out[1], images[0].cpu(), "occluder at -2^63")
    assert_bits(out[2:], torch.zeros_like(out[2:]).cpu(), "crops at +-2^63")


@pytest.mark.parametrize("target", TARGETS)
def test_unvalidated_bad_image_index(target, gen):
    """validate=False skips the GPU-syncing check: native CPU still raises, Triton and CUDA give NaN planes."""
    device, backend = target
    images = special_values((2, 2, 4, 4), torch.float32, gen).to(device)
    baseline = torch.zeros((), device=device)
    positions = torch.tensor([(0, 1, 1), (2, 1, 1), (-1, 0, 0)], device=device)
    if backend == "torch":
        pytest.skip("the torch reference indexes out of range (IndexError on CPU, device assert on GPU)")
    if backend == "native" and device == "cpu":
        with pytest.raises(ValueError, match=r"positions\[1, 0\] = 2 is not an image index 0..1"):
            zfaccel.occlusion_batch(images, baseline, positions, 2, backend=backend, validate=False)
        return
    out = zfaccel.occlusion_batch(images, baseline, positions, 2, backend=backend, validate=False).cpu()
    assert_bits(out[:1], oracle(images, baseline, [(0, 1, 1)], (2, 2), [(0, 0)], (4, 4)), "good row")
    assert bool(out[1:].isnan().all()), "bad image indices give NaN planes"


@pytest.mark.parametrize("target", [t for t in TARGETS if "cuda" in t.id])
def test_cuda_current_stream(target, gen):
    """CUDA launches go on the caller's current stream: a side stream's result is right once it is synced."""
    device, backend = target
    images = special_values((2, 3, 32, 32), torch.float32, gen).to(device)
    positions = torch.tensor([(1, 4, 4), (0, 20, 25)], device=device)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out = zfaccel.occlusion_batch(images, images.new_zeros(()), positions, 8, backend=backend, validate=False)
    stream.synchronize()
    assert_bits(out, oracle(images, images.new_zeros(()), positions.tolist(), (8, 8), [(0, 0)] * 2, (32, 32)), "")


@st.composite
def configurations(draw):
    b, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    window = (draw(st.integers(1, 14)), draw(st.integers(1, 14)))
    crop = (draw(st.integers(1, 14)), draw(st.integers(1, 14)))
    p = draw(st.integers(0, 5))
    coord = st.integers(-16, 20)
    positions = [(draw(st.integers(0, b - 1)), draw(coord), draw(coord)) for _ in range(p)]
    origins = [(draw(coord), draw(coord)) for _ in range(p)]
    return (b, c, h, w), window, positions, origins, crop


def check_random(target, config, dtype, layout, baseline_kind, seed):
    shape, window, positions, origins, crop = config
    run_case(target, shape, window, positions, origins, crop, dtype, layout, baseline_kind,
             torch.Generator().manual_seed(seed))  # fmt: skip


PROPERTY = dict(config=configurations(), dtype=st.sampled_from(DTYPES), layout=st.sampled_from(LAYOUTS),
                baseline_kind=st.sampled_from(BASELINES), seed=st.integers(0, 2**31))  # fmt: skip
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("target", [t for t in TARGETS if t.id != "cpu-triton"])
@settings(max_examples=40, **SETTINGS)
@given(**PROPERTY)
def test_property_random_configurations(target, config, dtype, layout, baseline_kind, seed):
    """Random sizes, windows, crops, coordinates in and around the image, dtypes, layouts and baselines."""
    check_random(target, config, dtype, layout, baseline_kind, seed)


@pytest.mark.parametrize("target", [t for t in TARGETS if t.id == "cpu-triton"])
@settings(max_examples=20, **SETTINGS)
@given(**PROPERTY)
def test_property_random_configurations_interpreted(target, config, dtype, layout, baseline_kind, seed):
    """The same under the Triton interpreter, fewer examples: about 0.1 s each."""
    check_random(target, config, dtype, layout, baseline_kind, seed)


# --- bad input: ValueError / TypeError naming the argument ---------------------------------------

IMG = torch.randn(2, 3, 8, 8)
BASE = torch.zeros(())
POS = torch.tensor([[0, 1, 1], [1, 2, 2]])
BAD = [
    # (description, args, kwargs, exception, message fragment)
    ("images int", (IMG.int(), BASE.int(), POS, 2), {}, TypeError, "images must have dtype"),
    ("images 2-d", (IMG[0, 0], BASE, POS, 2), {}, ValueError, "images must be"),
    ("images empty", (IMG[:, :0], BASE, POS, 2), {}, ValueError, "images must not be empty"),
    ("images not a tensor", (IMG.tolist(), BASE, POS, 2), {}, TypeError, "images must be a torch.Tensor"),
    ("baseline not a tensor", (IMG, 0.5, POS, 2), {}, TypeError, "baseline must be a tensor"),
    ("baseline dtype", (IMG, BASE.double(), POS, 2), {}, TypeError, "baseline must have the dtype"),
    ("baseline device", (IMG, torch.zeros((), device="meta"), POS, 2), {}, TypeError, "baseline must have"),
    ("baseline shape", (IMG, torch.zeros(3, 8), POS, 2), {}, ValueError, "baseline of shape"),
    ("baseline rank 5", (IMG, torch.zeros(1, 2, 3, 8, 8), POS, 2), {}, ValueError, "baseline of shape"),
    ("positions int32", (IMG, BASE, POS.int(), 2), {}, TypeError, "positions must be an int64"),
    ("positions list", (IMG, BASE, POS.tolist(), 2), {}, TypeError, "positions must be an int64"),
    ("positions (P, 2)", (IMG, BASE, POS[:, :2], 2), {}, ValueError, r"positions must have shape \(P, 3\)"),
    ("positions device", (IMG, BASE, POS.to("meta"), 2), {}, TypeError, "positions must be on cpu"),
    ("image index too large", (IMG, BASE, torch.tensor([[2, 0, 0]]), 2), {}, ValueError, r"positions\[:, 0\]"),
    ("image index negative", (IMG, BASE, torch.tensor([[-1, 0, 0]]), 2), {}, ValueError, r"positions\[:, 0\]"),
    ("window zero", (IMG, BASE, POS, 0), {}, ValueError, "window must be"),
    ("window three", (IMG, BASE, POS, (2, 2, 2)), {}, ValueError, "window must be"),
    ("window float", (IMG, BASE, POS, 2.5), {}, ValueError, "window must be"),
    ("window bool", (IMG, BASE, POS, True), {}, ValueError, "window must be"),
    ("crop_origins int32", (IMG, BASE, POS, 2, POS[:, 1:].int()), {}, TypeError, "crop_origins must be an int64"),
    ("crop_origins shape", (IMG, BASE, POS, 2, POS[:1, 1:]), {}, ValueError, r"crop_origins must be a \(P, 2\)"),
    ("crop_size zero", (IMG, BASE, POS, 2, None, (0, 3)), {}, ValueError, "crop_size must be"),
    ("crop_size negative", (IMG, BASE, POS, 2, None, -1), {}, ValueError, "crop_size must be"),
    ("backend", (IMG, BASE, POS, 2), {"backend": "cudnn"}, ValueError, "backend must be one of"),
    ("validate", (IMG, BASE, POS, 2), {"validate": "yes"}, TypeError, "validate must be a bool"),
]  # fmt: skip


@pytest.mark.parametrize("backend", ["torch", "native"])
@pytest.mark.parametrize("what, args, kwargs, exc, match", BAD, ids=[b[0] for b in BAD])
def test_bad_input(what, args, kwargs, exc, match, backend):
    with pytest.raises(exc, match=match):
        zfaccel.occlusion_batch(*args, **{"backend": backend, **kwargs})


# --- the compiled entry point checks its own arguments (it takes raw pointers from anyone) -------

ext = native.extension()
NATIVE_CPU, NATIVE_CUDA = (skip_reason(device, "native", "occlusion_batch") for device in ("cpu", "cuda"))
OUT = torch.empty(2, 3, 8, 8)
SHAPE = (2, 3, 8, 8, 2, 2, 2, 8, 8)  # b, c, h, w, p, wh, ww, ch, cw
STRIDES = IMG.stride()
ORIGINS = torch.zeros(2, 2, dtype=torch.int64)


def run_native(shape=SHAPE, strides=STRIDES, dtype=0, threads=1, positions=POS, ptrs=None):
    images, out = ptrs or (IMG.data_ptr(), OUT.data_ptr())
    ext.occlusion_batch_cpu(images, BASE.data_ptr(), positions.data_ptr(), ORIGINS.data_ptr(), out, shape,
                            strides, (0, 0, 0, 0), dtype, threads)  # fmt: skip


def with_(i: int, v: int) -> tuple[int, ...]:
    return tuple(v if j == i else s for j, s in enumerate(SHAPE))


NATIVE_BAD = [
    ("zero images", dict(shape=with_(0, 0)), "images sizes"),
    ("negative width", dict(shape=with_(3, -8)), "images sizes"),
    ("negative positions", dict(shape=with_(4, -1)), "number of positions"),
    ("zero window", dict(shape=with_(5, 0)), "window sizes"),
    ("zero crop", dict(shape=with_(8, 0)), "crop_size"),
    ("huge crop", dict(shape=with_(7, 2**31)), "below 2"),
    ("negative stride", dict(strides=(192, 64, -8, 1)), "images strides"),
    ("dtype code", dict(dtype=7), "dtype code"),
    ("no threads", dict(threads=0), "num_threads"),
    ("null pointer", dict(ptrs=(0, OUT.data_ptr())), "null"),
    ("image index", dict(positions=torch.tensor([[0, 1, 1], [5, 2, 2]])), r"positions\[1, 0\] = 5"),
]


@pytest.mark.skipif(NATIVE_CPU is not None, reason=f"cpu/native: {NATIVE_CPU}")
@pytest.mark.parametrize("what, kwargs, match", NATIVE_BAD, ids=[b[0] for b in NATIVE_BAD])
def test_native_entry_point_rejects(what, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_native(**kwargs)


@pytest.mark.skipif(NATIVE_CPU is not None, reason=f"cpu/native: {NATIVE_CPU}")
def test_native_entry_point_runs():
    run_native()
    with pytest.raises(TypeError):  # 8 sizes instead of 9
        ext.occlusion_batch_cpu(0, 0, 0, 0, 0, SHAPE[:8], STRIDES, STRIDES, 0, 1)


@pytest.mark.skipif(NATIVE_CUDA is not None, reason=f"cuda/native: {NATIVE_CUDA}")
@pytest.mark.gpu
def test_native_cuda_entry_point_rejects():
    with pytest.raises(ValueError, match="window sizes"):
        ext.occlusion_batch_cuda(0, 0, 0, 0, 0, with_(5, 0), STRIDES, STRIDES, 0, 0)
