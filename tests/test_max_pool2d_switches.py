"""max_pool2d_switches against torch's max_pool2d on every backend, dtype, layout and configuration.

y must equal F.max_pool2d bit for bit and the switches must name exactly the
indices torch returns (ties: first maximum; NaN: torch's choice).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pool_cases import CASE_IDS, CASES, PoolCase, crossed
from support import DTYPES, LAYOUTS, assert_same, interpreted, make_input, target_params

import zfaccel

TARGETS = target_params("max_pool2d_switches")


def torch_pool(x: torch.Tensor, case: PoolCase) -> tuple[torch.Tensor, torch.Tensor]:
    return F.max_pool2d(x, case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode, return_indices=True)


def check_against_torch(x: torch.Tensor, case: PoolCase, backend: str, relu: bool = False) -> None:
    y, s = zfaccel.max_pool2d_switches(x, **case.kwargs(), relu=relu, backend=backend)
    y_ref, idx_ref = torch_pool(x, case)
    assert_same(y, torch.relu(y_ref) if relu else y_ref, "y")
    assert s.dtype == torch.uint8 and s.shape == y_ref.shape and s.device == x.device
    idx = zfaccel.switches_to_indices(s, tuple(x.shape[-2:]), **case.unpool_kwargs())
    assert_same(idx, idx_ref, "switches (as torch indices)")
    cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    expected_format = torch.channels_last if cl else torch.contiguous_format
    assert y.is_contiguous(memory_format=expected_format) and s.is_contiguous(memory_format=expected_format)


@pytest.mark.parametrize("target, case, dtype, layout", crossed(TARGETS, DTYPES, LAYOUTS))
def test_matches_torch(target, case, dtype, layout, gen):
    device, backend = target
    x = make_input(case.input_shape(interpreted(target)), dtype, device, gen, layout)
    check_against_torch(x, case, backend)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("target", TARGETS)
def test_fused_relu(target, case, dtype, gen):
    device, backend = target
    x = make_input(case.input_shape(interpreted(target)), dtype, device, gen)
    check_against_torch(x, case, backend, relu=True)


@pytest.mark.parametrize("target", TARGETS)
def test_unbatched_input(target, gen):
    device, backend = target
    case = CASES[0]
    x = make_input(case.input_shape(interpreted(target)), torch.float32, device, gen)[0]
    y, s = zfaccel.max_pool2d_switches(x, **case.kwargs(), backend=backend)
    y_ref, idx_ref = torch_pool(x, case)
    assert_same(y, y_ref, "y")
    assert_same(zfaccel.switches_to_indices(s, x.shape, **case.unpool_kwargs()), idx_ref, "switches")


@pytest.mark.parametrize("target", TARGETS)
def test_nan_windows(target):
    """Several NaNs in one window: torch takes the last; a NaN beats +inf; all -inf takes the first tap."""
    device, backend = target
    nan, inf = float("nan"), float("inf")
    x = torch.tensor(
        [[[nan, 1.0, nan, 0.0], [inf, 2.0, -inf, -inf], [0.0, nan, -inf, -inf]]], dtype=torch.float32
    ).unsqueeze(0)
    x = x.to(device)
    y, s = zfaccel.max_pool2d_switches(x, (3, 2), (3, 2), backend=backend)
    y_ref, idx_ref = F.max_pool2d(x, (3, 2), (3, 2), return_indices=True)
    assert_same(y, y_ref, "y")
    # Window 0 holds NaN at (0, 0) and (2, 1) and +inf at (1, 0): the last NaN, offset 2 * 2 + 1, wins.
    # Window 1 holds one NaN at its (0, 0), then only 0 and -inf: offset 0.
    assert s.flatten().tolist() == [5, 0]
    assert_same(zfaccel.switches_to_indices(s, x.shape[-2:], (3, 2), (3, 2)), idx_ref, "switches")


@pytest.mark.parametrize("target", TARGETS)
def test_all_minus_inf_takes_first_in_bounds_tap(target):
    device, backend = target
    x = torch.full((1, 1, 4, 4), float("-inf"), device=device)
    y, s = zfaccel.max_pool2d_switches(x, 3, 2, 1, backend=backend)
    # Windows start at -1: their first in-bounds tap is (1, 1) in the top-left, (1, 0) and (0, 1) on the edges.
    assert s.flatten().tolist() == [4, 3, 1, 0]
    assert bool((y == float("-inf")).all())


@st.composite
def pool_configs(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ceil_mode = draw(st.booleans())
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 24))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 24))
    case = PoolCase(
        "hypothesis",
        (draw(st.integers(1, 2)), draw(st.integers(1, 5)), h, w),
        (kh, kw),
        (sh, sw),
        (ph, pw),
        (dh, dw),
        ceil_mode,
    )
    return case, draw(st.sampled_from(DTYPES)), draw(st.sampled_from(LAYOUTS)), draw(st.integers(0, 2**31))


def _windows_valid(case: PoolCase) -> bool:
    try:
        zfaccel.geometry.PoolGeometry.for_pool(case.shape[2:], *case.kwargs().values())
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=pool_configs())
def test_property_random_configurations(target, config):
    """Random kernels, strides, paddings, dilations, ceil modes, sizes, dtypes and layouts."""
    case, dtype, layout, seed = config
    assume(_windows_valid(case))  # the rejected ones are tested in test_bad_input.py
    if interpreted(target) and case.shape[0] * case.shape[2] > 24:
        case = PoolCase(case.name, (1, *case.shape[1:]), *list(case.kwargs().values()))
    x = make_input(case.shape, dtype, target[0], torch.Generator().manual_seed(seed), layout)
    check_against_torch(x, case, target[1])
