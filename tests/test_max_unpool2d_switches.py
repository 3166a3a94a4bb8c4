"""max_unpool2d_switches: the exact transpose of max-pooling, on every backend.

x_hat is checked against a float64 reference (the pure-PyTorch unpool run in
float64) within a per-dtype tolerance, against autograd's gradient of
F.max_pool2d, and for bit-identical repeat runs.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pool_cases import CASE_IDS, CASES, PoolCase, crossed
from support import DTYPES, LAYOUTS, TOLERANCES, assert_same, interpreted, make_input, target_params

import zfaccel

TARGETS = target_params("max_unpool2d_switches")


def pooled(case: PoolCase, dtype, device, gen, layout="contiguous", interp=False):
    """x and its pooled (y, switches) from the reference backend."""
    x = make_input(case.input_shape(interp), dtype, device, gen, layout)
    y, s = zfaccel.max_pool2d_switches(x, **case.kwargs(), backend="torch")
    return x, y, s


def reference_unpool(y: torch.Tensor, s: torch.Tensor, size, case: PoolCase, relu=False) -> torch.Tensor:
    """The pure-PyTorch unpool in float64."""
    return zfaccel.max_unpool2d_switches(y.double(), s, size, **case.unpool_kwargs(), relu=relu, backend="torch")


@pytest.mark.parametrize("target, case, dtype, layout", crossed(TARGETS, DTYPES, LAYOUTS))
def test_matches_float64_reference(target, case, dtype, layout, gen):
    device, backend = target
    x, y, s = pooled(case, dtype, device, gen, layout, interpreted(target))
    x_hat = zfaccel.max_unpool2d_switches(y, s, x.shape[-2:], **case.unpool_kwargs(), backend=backend)
    assert x_hat.shape == x.shape and x_hat.dtype == dtype and x_hat.device == x.device
    expected = reference_unpool(y, s, x.shape[-2:], case)
    torch.testing.assert_close(x_hat.double(), expected, equal_nan=True, **TOLERANCES[dtype])
    if y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous():
        assert x_hat.is_contiguous(memory_format=torch.channels_last)


# The signed y puts +inf and -inf in overlapping windows, whose sum is NaN (as torch's is): on CPU
# the Triton interpreter adds them with numpy, which warns about it. numpy's warning, not ours.
@pytest.mark.filterwarnings(r"ignore:invalid value encountered in add:RuntimeWarning:triton\.runtime\.interpreter")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("target", TARGETS)
def test_fused_relu(target, case, dtype, gen):
    """relu=True is ReLU of the sum (not of each term); y is signed here, as a deconvnet's is."""
    device, backend = target
    x, y, s = pooled(case, dtype, device, gen, interp=interpreted(target))
    y = y * torch.where(torch.rand(y.shape, generator=gen) < 0.5, -1.0, 1.0).to(device=device, dtype=dtype)
    x_hat = zfaccel.max_unpool2d_switches(y, s, x.shape[-2:], **case.unpool_kwargs(), relu=True, backend=backend)
    expected = torch.relu(reference_unpool(y, s, x.shape[-2:], case))
    torch.testing.assert_close(x_hat.double(), expected, equal_nan=True, **TOLERANCES[dtype])


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("target", TARGETS)
def test_equals_max_pool_gradient(target, case, gen):
    """Unpooling y is autograd's gradient of F.max_pool2d for grad_output = y (float64, finite inputs)."""
    device, backend = target
    shape = case.input_shape(interpreted(target))
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    y = F.max_pool2d(x, case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode)
    (grad,) = torch.autograd.grad(y, x, grad_outputs=y.detach())
    _, s = zfaccel.max_pool2d_switches(x.detach(), **case.kwargs(), backend=backend)
    x_hat = zfaccel.max_unpool2d_switches(y.detach(), s, shape[-2:], **case.unpool_kwargs(), backend=backend)
    torch.testing.assert_close(x_hat, grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("target", TARGETS)
def test_overlapping_windows_sum(target):
    """A maximum shared by overlapping windows receives the sum (max_unpool2d would keep one value)."""
    device, backend = target
    x = torch.zeros(1, 1, 5, 5, device=device)
    x[0, 0, 2, 2] = 1.0  # the maximum of all four 3x3 stride-2 windows
    y, s = zfaccel.max_pool2d_switches(x, 3, 2, backend=backend)
    assert s.flatten().tolist() == [8, 6, 2, 0]
    y = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], device=device)
    x_hat = zfaccel.max_unpool2d_switches(y, s, (5, 5), 3, 2, backend=backend)
    expected = torch.zeros(1, 1, 5, 5, device=device)
    expected[0, 0, 2, 2] = 10.0
    assert_same(x_hat, expected, "x_hat")


@pytest.mark.parametrize("target", TARGETS)
def test_deterministic(target, gen):
    """Identical bits on repeated runs: no atomics, fixed summation order."""
    device, backend = target
    case = CASES[0]
    x, y, s = pooled(case, torch.float32, device, gen, interp=interpreted(target))
    y = torch.randn(y.shape, generator=gen).to(device) * 1e3  # many magnitudes: order-sensitive sums
    runs = [
        zfaccel.max_unpool2d_switches(y, s, x.shape[-2:], **case.unpool_kwargs(), backend=backend) for _ in range(3)
    ]
    for other in runs[1:]:
        assert torch.equal(runs[0].view(torch.int32), other.view(torch.int32))


@pytest.mark.parametrize("target", TARGETS)
def test_unbatched_and_full_output_size(target, gen):
    device, backend = target
    case = CASES[1]
    x, y, s = pooled(case, torch.float32, device, gen, interp=interpreted(target))
    full = zfaccel.max_unpool2d_switches(y, s, x.shape, **case.unpool_kwargs(), backend=backend)
    single = zfaccel.max_unpool2d_switches(y[0], s[0], x.shape[-2:], **case.unpool_kwargs(), backend=backend)
    assert single.shape == x.shape[1:]
    assert_same(single, full[0], "unbatched x_hat")


@pytest.mark.parametrize("target", TARGETS)
def test_mismatched_layouts(target, gen):
    """y channels-last with NCHW switches (and the reverse) still pairs each value with its switch."""
    device, backend = target
    case = CASES[2]
    x, y, s = pooled(case, torch.float32, device, gen, interp=interpreted(target))
    expected = reference_unpool(y, s, x.shape[-2:], case)
    for yy, ss in ((y.to(memory_format=torch.channels_last), s), (y, s.to(memory_format=torch.channels_last))):
        x_hat = zfaccel.max_unpool2d_switches(yy, ss, x.shape[-2:], **case.unpool_kwargs(), backend=backend)
        torch.testing.assert_close(x_hat.double(), expected, equal_nan=True, **TOLERANCES[torch.float32])


@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("target", TARGETS)
def test_bfloat16_rounds_to_nearest_even(target, layout, relu, gen):
    """bfloat16 sums round to nearest, ties to even, as torch rounds float32 to bfloat16, bit for bit.

    The values are multiples of 2**-10 below 2**-1, so every sum of overlapping windows is exact in
    float32 (in any order) and needs up to 12 significant bits: many land half-way between two
    bfloat16 values. Both layouts and a row of 75 (whole vectors and a tail); NaN, infinities (whose
    sums give NaN) and -0.0 in the windows."""
    device, backend = target
    if interpreted(target):
        pytest.skip(
            "Triton's interpreter casts float32 to bfloat16 by truncation (seen with Triton 3.6: "
            "1 + 2**-8 + 2**-12 gives 1.0); compiled Triton rounds to nearest even"
        )
    shape = (2, 5, 9, 75)
    x = make_input(shape, torch.float32, device, gen)
    _, s = zfaccel.max_pool2d_switches(x, 3, 2, ceil_mode=True, backend="torch")
    k = torch.randint(-256, 257, s.shape, generator=gen).to(device)
    y = (k * 2.0**-10).to(torch.bfloat16)  # exact: |k| <= 256 needs 9 significant bits at most
    y[0, :3, 0, 0] = torch.tensor([float("nan"), float("inf"), -float("inf")])  # inf + -inf in a sum is NaN too
    y[0, :3, 1, 1] = torch.tensor([-0.0, float("inf"), -float("inf")])
    if layout == "channels_last":
        y, s = y.to(memory_format=torch.channels_last), s.to(memory_format=torch.channels_last)
    x_hat = zfaccel.max_unpool2d_switches(y, s, shape[-2:], 3, 2, relu=relu, backend=backend)
    expected = zfaccel.max_unpool2d_switches(y.float(), s, shape[-2:], 3, 2, relu=relu, backend="torch")
    assert_same(x_hat, expected.to(torch.bfloat16), "x_hat")
