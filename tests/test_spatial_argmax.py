"""spatial_argmax against torch.max on every backend, dtype and layout: values and indices exactly."""

from __future__ import annotations

import pytest
import torch
from support import DTYPES, LAYOUTS, assert_same, interpreted, make_input, target_params

import zfaccel

TARGETS = target_params("spatial_argmax")
SHAPES = {
    # name: (shape, interpreter shape)
    "zfnet_conv1": ((2, 96, 110, 110), (1, 3, 40, 37)),
    "zfnet_conv5": ((4, 256, 13, 13), (2, 4, 13, 13)),
    "one_pixel": ((3, 5, 1, 1), (3, 5, 1, 1)),
    "odd": ((2, 7, 33, 17), (1, 3, 33, 17)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("target", TARGETS)
def test_matches_torch_max(target, name, dtype, layout, gen):
    """make_input mixes plain values, ties (small integers) and NaN/+inf/-inf planes."""
    device, backend = target
    if interpreted(target) and dtype not in (torch.float32, torch.bfloat16) and layout != "contiguous":
        pytest.skip("interpreter: other dtypes run in the contiguous layout only (addressing is dtype-independent)")
    shape = SHAPES[name][1] if interpreted(target) else SHAPES[name][0]
    x = make_input(shape, dtype, device, gen, layout)
    values, indices = zfaccel.spatial_argmax(x, backend=backend)
    ref_values, ref_indices = x.flatten(2).max(dim=2)
    assert_same(values, ref_values, "values")
    assert_same(indices, ref_indices, "indices")


@pytest.mark.parametrize("target", TARGETS)
def test_rules(target):
    device, backend = target
    nan, inf = float("nan"), float("inf")
    x = torch.tensor(
        [[[1.0, nan], [3.0, nan]], [[2.0, 5.0], [5.0, 1.0]], [[-inf, -inf], [-inf, -inf]], [[inf, nan], [inf, 0.0]]],
        device=device,
    ).unsqueeze(0)
    values, indices = zfaccel.spatial_argmax(x, backend=backend)
    assert indices.tolist() == [[1, 1, 0, 1]]  # first NaN; first of tied maxima; -inf map: 0; NaN beats inf
    assert values[0, 1] == 5 and values[0, 2] == -inf and bool(values[0, 0].isnan())


@pytest.mark.parametrize("target", TARGETS)
def test_unbatched(target, gen):
    device, backend = target
    x = torch.randn(6, 9, 8, generator=gen).to(device)
    values, indices = zfaccel.spatial_argmax(x, backend=backend)
    assert values.shape == indices.shape == (6,)
    assert_same(indices, x.flatten(1).argmax(1), "indices")


def test_bad_input():
    with pytest.raises(TypeError, match="x must have dtype"):
        zfaccel.spatial_argmax(torch.ones(1, 2, 3, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="x must not be empty"):
        zfaccel.spatial_argmax(torch.ones(0, 2, 3, 3))
    with pytest.raises(ValueError, match="backend"):
        zfaccel.spatial_argmax(torch.ones(1, 2, 3, 3), backend="gpu")
    if torch.cuda.is_available():
        with pytest.raises(zfaccel.BackendUnavailableError, match="no CUDA kernel"):
            zfaccel.spatial_argmax(torch.ones(1, 2, 3, 3, device="cuda"), backend="native")
