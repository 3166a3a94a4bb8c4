"""The deconvnet's crop ops: the fused C++ kernels and the Triton path against the composite PyTorch path."""

from __future__ import annotations

import pytest
import torch
from support import skip_reason, target_params

import zfaccel
from zfaccel import native
from zfaccel.ops.crops import conv_transpose_crops, unpool_conv_transpose_crops, unpool_crops

NATIVE_REASON = skip_reason("cpu", "native", "unpool_crops")
needs_native = pytest.mark.skipif(NATIVE_REASON is not None, reason=f"cpu/native: {NATIVE_REASON}")


def sparse(shape, gen, dtype, density=0.3):
    """Mostly zeros, as a deconvnet's signal is (unpooled, then rectified)."""
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    return torch.where(torch.rand(shape, generator=gen) < density, x, 0.0).to(dtype)


CONV_CASES = [
    # (cin, cout, kernel, stride, dilation, groups, crop h, w, map size) - ZFNet conv2/conv1, dilation, groups
    (8, 6, (5, 5), (2, 2), (1, 1), 1, 4, 4, (13, 13)),
    (6, 3, (7, 7), (2, 2), (1, 1), 1, 9, 9, (31, 30)),
    (4, 5, (3, 2), (1, 2), (2, 1), 1, 5, 3, (12, 9)),
    (6, 4, (3, 3), (1, 1), (1, 2), 2, 4, 5, (9, 11)),
    (4, 4, (1, 1), (1, 1), (1, 1), 4, 3, 3, (5, 5)),
    # Runs of kw * cout floats summed in registers: 60 (4 vectors, the last 12 lanes), 350 (3 chunks of
    # up to 8 vectors), 21 from an odd channel count (conv1^T's shape)
    (40, 20, (3, 3), (1, 1), (1, 1), 1, 5, 6, (9, 11)),
    (20, 70, (5, 5), (2, 2), (1, 1), 1, 4, 4, (13, 13)),
    (33, 3, (7, 7), (2, 2), (1, 1), 1, 9, 9, (31, 30)),
    # Weights past 192 KB and 30 non-zeros per position: summed in blocks of channels (3 blocks of 34,
    # 33 and 33 channels in float32, 5 in float64)
    (100, 128, (3, 3), (1, 1), (1, 1), 1, 4, 4, (9, 9)),
]


@needs_native
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", CONV_CASES, ids=[str(c[:7]) for c in CONV_CASES])
def test_conv_transpose_crops_native_equals_composite(case, dtype, relu, gen):
    cin, cout, k, s, d, groups, h, w, map_size = case
    x = sparse((5, cin, h, w), gen, dtype)
    weight = torch.randn((cin, cout // groups, *k), generator=gen, dtype=torch.float64).to(dtype)
    # Offsets around the map's edges: crops hanging over every border, and one inside.
    offset = torch.tensor([[-3, -2], [0, 0], [map_size[0] - 4, map_size[1] - 2], [-1, map_size[1] - 5], [2, 1]])
    ours = conv_transpose_crops(x, weight, s, d, groups, offset, map_size, relu=relu, backend="native")
    ref = conv_transpose_crops(x, weight, s, d, groups, offset, map_size, relu=relu, backend="torch")
    assert (
        ours.shape
        == ref.shape
        == (5, cout, (h - 1) * s[0] + (k[0] - 1) * d[0] + 1, (w - 1) * s[1] + (k[1] - 1) * d[1] + 1)
    )
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(ours, ref, rtol=tol, atol=tol)


@needs_native
def test_conv_transpose_crops_native_propagates_nonfinite_inputs(gen):
    """NaN and inf inputs are non-zero: they reach every output cell a dense transposed convolution
    sends them to, on the register-summed path (groups 1) as on the generic one."""
    for groups in (1, 2):
        x = sparse((3, 6, 5, 5), gen, torch.float32)
        x[0, 1, 2, 2], x[1, 4, 0, 3], x[2, 0, 4, 4] = float("nan"), float("inf"), float("-inf")
        weight = torch.randn((6, 8 // groups, 3, 3), generator=gen)
        offset = torch.tensor([[0, 0], [-1, 2], [3, -2]])
        args = (x, weight, (2, 2), (1, 1), groups, offset, (12, 12))
        ours = conv_transpose_crops(*args, relu=False, backend="native")
        ref = conv_transpose_crops(*args, relu=False, backend="torch")
        assert ours.isnan().any() and ours.isinf().any()
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5, equal_nan=True)


@needs_native
def test_conv_transpose_crops_keeps_dense_path_for_nonfinite_weights(gen):
    """0 * inf is nan in a dense convolution; the zero-skipping kernel would give 0, so it steps aside."""
    x = torch.zeros(2, 3, 4, 4)
    x[0, 0, 1, 1] = 1.0
    weight = torch.randn(3, 2, 3, 3, generator=gen)
    weight[1, 0, 0, 0] = float("inf")
    offset = torch.zeros(2, 2, dtype=torch.long)
    ours = conv_transpose_crops(x, weight, (1, 1), (1, 1), 1, offset, (6, 6))
    ref = conv_transpose_crops(x, weight, (1, 1), (1, 1), 1, offset, (6, 6), backend="torch")
    torch.testing.assert_close(ours, ref, equal_nan=True)
    with pytest.raises(zfaccel.BackendUnavailableError, match="inf or nan"):
        conv_transpose_crops(x, weight, (1, 1), (1, 1), 1, offset, (6, 6), backend="native")


UNPOOL_CASES = [
    # (map size, kernel, stride, padding, dilation, ceil_mode, crop h, w)
    ((27, 27), (3, 3), (2, 2), (0, 0), (1, 1), True, 4, 4),   # ZFNet's pools
    ((17, 16), (3, 3), (2, 2), (1, 1), (1, 1), False, 5, 3),  # padded
    ((16, 16), (2, 2), (2, 2), (0, 0), (1, 1), False, 3, 3),  # VGG
    ((21, 19), (3, 2), (2, 3), (1, 1), (2, 1), True, 4, 5),   # dilated, non-square
]  # fmt: skip


@needs_native
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", UNPOOL_CASES, ids=[str(c[:2]) for c in UNPOOL_CASES])
def test_unpool_crops_native_equals_composite(case, dtype, relu, gen):
    map_size, k, s, p, d, ceil_mode, h, w = case
    images = torch.randn(3, 4, *map_size, generator=gen, dtype=dtype)
    pooled, switches = zfaccel.max_pool2d_switches(images, k, s, p, d, ceil_mode)
    ph, pw = pooled.shape[-2:]
    x = torch.randn(5, 4, h, w, generator=gen, dtype=torch.float64).to(dtype)
    image_index = torch.tensor([0, 2, 1, 2, 0])
    offset = torch.tensor([[-2, -1], [0, 0], [ph - h + 1, pw - w + 2], [ph - 2, -3], [1, 1]])
    ours = unpool_crops(x, switches, image_index, offset, k, s, p, d, map_size, relu=relu, backend="native")
    ref = unpool_crops(x, switches, image_index, offset, k, s, p, d, map_size, relu=relu, backend="torch")
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(ours, ref, rtol=tol, atol=tol)


FUSED_CONVS = [
    # (c_out, kernel, stride, dilation, groups, padding): ZFNet's conv1 and conv2 (the register-summed
    # path, kw * c_out = 21 and 480 floats), and the dense path (dilation, groups)
    (3, (7, 7), (2, 2), (1, 1), 1, (1, 1)),
    (24, (5, 5), (2, 2), (1, 1), 1, (0, 0)),
    (4, (3, 3), (1, 1), (1, 2), 1, (1, 1)),
    (6, (3, 3), (1, 1), (1, 1), 2, (0, 1)),
]


def fused_inputs(pool_case, conv_case, dtype, gen, special=False):
    """Pooled crops of 5 targets over 3 images (some partly outside the pooled map), the switches, and
    the filter's arguments; ``special`` puts NaN, inf and -0.0 among the pooled values."""
    map_size, k, s, p, d, ceil_mode, h, w = pool_case
    cout, ck, cs, cd, groups, cp = conv_case
    images = torch.randn(3, 4, *map_size, generator=gen, dtype=dtype)
    images[1, :, 2:6, 2:6] = 0.5  # ties: the first maximum's switch
    pooled, switches = zfaccel.max_pool2d_switches(images, k, s, p, d, ceil_mode)
    ph, pw = pooled.shape[-2:]
    x = sparse((5, 4, h, w), gen, dtype, density=0.6)
    if special:
        x[1, 1, 1, 1], x[4, 3, 0, 2], x[1, 0, 2, 0] = float("nan"), float("inf"), -0.0  # cells in the map
    image_index = torch.tensor([0, 2, 1, 2, 0])
    offset = torch.tensor([[-2, -1], [0, 0], [ph - h + 1, pw - w + 2], [ph - 2, -3], [1, 1]])
    weight = torch.randn(4, cout // groups, *ck, generator=gen, dtype=torch.float64).to(dtype)
    unpooled = offset * torch.tensor(s) - torch.tensor(p)
    conv_offset = unpooled * torch.tensor(cs) - torch.tensor(cp)
    conv_map = tuple((map_size[i] - 1) * cs[i] + (ck[i] - 1) * cd[i] + 1 - 2 * cp[i] for i in range(2))
    pool_args = (x, switches, image_index, offset, k, s, p, d, map_size)
    return pool_args, (weight, conv_offset, cs, cd, groups, conv_map)


def two_steps(pool_args, conv_args, unpool_relu, relu, backend):
    weight, conv_offset, cs, cd, groups, conv_map = conv_args
    unpooled = unpool_crops(*pool_args, relu=unpool_relu, backend=backend)
    return conv_transpose_crops(unpooled, weight, cs, cd, groups, conv_offset, conv_map, relu=relu, backend=backend)


@needs_native
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("conv_case", FUSED_CONVS, ids=[str(c[:3]) for c in FUSED_CONVS])
@pytest.mark.parametrize("pool_case", UNPOOL_CASES, ids=[str(c[:2]) for c in UNPOOL_CASES])
def test_unpool_conv_transpose_crops_native_equals_two_steps(pool_case, conv_case, dtype, relu, gen):
    """The fused kernel gives the two native steps' bits (same sums, same order), and the torch
    path's numbers; with and without the unpooling's ReLU."""
    pool_args, conv_args = fused_inputs(pool_case, conv_case, dtype, gen)
    for unpool_relu in (True, False):
        fused = unpool_conv_transpose_crops(*pool_args, *conv_args, unpool_relu=unpool_relu, relu=relu,
                                            backend="native")  # fmt: skip
        assert fused.abs().sum() > 0
        torch.testing.assert_close(fused, two_steps(pool_args, conv_args, unpool_relu, relu, "native"), rtol=0, atol=0)
        ref = two_steps(pool_args, conv_args, unpool_relu, relu, "torch")
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        torch.testing.assert_close(fused, ref, rtol=tol, atol=tol * float(ref.abs().max()))
        composite = unpool_conv_transpose_crops(*pool_args, *conv_args, unpool_relu=unpool_relu, relu=relu,
                                                backend="torch")  # fmt: skip
        torch.testing.assert_close(composite, ref, rtol=0, atol=0)


@needs_native
@pytest.mark.parametrize("conv_case", FUSED_CONVS[:1] + FUSED_CONVS[2:3], ids=["runs", "dense"])
def test_unpool_conv_transpose_crops_propagates_nonfinite_inputs(conv_case, gen):
    pool_args, conv_args = fused_inputs(UNPOOL_CASES[0], conv_case, torch.float32, gen, special=True)
    fused = unpool_conv_transpose_crops(*pool_args, *conv_args, unpool_relu=True, backend="native")
    ref = two_steps(pool_args, conv_args, True, False, "torch")
    assert fused.isnan().any() and fused.isinf().any()
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5, equal_nan=True)


def test_unpool_conv_transpose_crops_gradients_are_the_two_steps(gen):
    """Autograd through the fused op (its backward recomputes the unpooled crops) equals autograd
    through the two ops, for the crops and the weight."""
    pool_args, conv_args = fused_inputs(UNPOOL_CASES[1], FUSED_CONVS[0], torch.float64, gen)
    x = pool_args[0].clone().requires_grad_(True)
    weight = conv_args[0].clone().requires_grad_(True)
    fused = unpool_conv_transpose_crops(x, *pool_args[1:], weight, *conv_args[1:], unpool_relu=True, relu=True)
    grad = torch.randn(fused.shape, generator=gen, dtype=torch.float64)
    gx, gw = torch.autograd.grad(fused, (x, weight), grad)
    x2, w2 = pool_args[0].clone().requires_grad_(True), conv_args[0].clone().requires_grad_(True)
    steps = two_steps((x2, *pool_args[1:]), (w2, *conv_args[1:]), True, True, "auto")
    torch.testing.assert_close(fused, steps)
    rx, rw = torch.autograd.grad(steps, (x2, w2), grad)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gw, rw)


def test_unpool_conv_transpose_crops_steps_aside_for_nonfinite_weights(gen):
    pool_args, conv_args = fused_inputs(UNPOOL_CASES[0], FUSED_CONVS[0], torch.float32, gen)
    weight = conv_args[0].clone()
    weight[1, 0, 0, 0] = float("inf")
    conv_args = (weight, *conv_args[1:])
    ours = unpool_conv_transpose_crops(*pool_args, *conv_args, unpool_relu=True)
    torch.testing.assert_close(ours, two_steps(pool_args, conv_args, True, False, "torch"), equal_nan=True)
    if NATIVE_REASON is None:
        with pytest.raises(zfaccel.BackendUnavailableError, match="inf or nan"):
            unpool_conv_transpose_crops(*pool_args, *conv_args, unpool_relu=True, backend="native")


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_paste_rows_writes_each_crop_and_zeros_around_it(dtype, gen):
    """Crops hanging over every border, one wholly outside the map, NaN and inf, a non-contiguous
    crop batch, rows out of order; the rows not named keep what they held."""
    from zfaccel.native.paste_rows import paste_rows
    from zfaccel.reference.crops import paste_into

    signal = torch.randn(7, 3, 9, 6, generator=gen, dtype=torch.float64).to(dtype)
    signal[0, 1, 2, 3], signal[2, 0, 4, 4] = float("nan"), float("inf")
    signal = signal.transpose(2, 3).contiguous().transpose(2, 3)  # same values, strided
    offset = torch.tensor([[-3, -2], [0, 0], [15, 14], [-1, 16], [4, 3], [30, 2], [2, -6]])
    rows = torch.tensor([5, 0, 2, 6, 1, 3, 7])
    out = torch.full((9, 3, 19, 20), 7.0, dtype=dtype)
    ref = out.clone()
    ref[rows] = 0
    paste_into(ref, rows.tolist(), signal, offset)
    paste_rows(out, rows, signal, offset)
    torch.testing.assert_close(out, ref, rtol=0, atol=0, equal_nan=True)
    assert (out[4] == 7).all() and (out[8] == 7).all() and (out[3] == 0).all()  # row 3: the crop outside
    with pytest.raises(ValueError, match="out must be contiguous and match"):
        paste_rows(out.to(torch.float16), rows, signal, offset)
    with pytest.raises(ValueError, match="rows out of range"):
        paste_rows(out, rows + 3, signal, offset)


def _bad_crop_calls():
    """(call, error, message) for each crop op given one bad argument; everything else valid."""
    x, off = torch.zeros(2, 4, 3, 3), torch.zeros(2, 2, dtype=torch.long)
    w, sw, idx = torch.zeros(4, 3, 3, 3), torch.zeros(3, 4, 5, 5, dtype=torch.uint8), torch.tensor([0, 2])
    pool = {"x": x, "switches": sw, "image_index": idx, "offset": off, "kernel_size": 3, "stride": 2, "padding": 0,
            "dilation": 1, "map_size": (11, 11)}  # fmt: skip
    filt = {"weight": w, "groups": 1}
    fused = {**pool, **filt, "conv_offset": off, "conv_stride": 1, "conv_dilation": 1, "conv_map_size": (13, 13)}

    def conv(**k):
        return conv_transpose_crops(**{"x": x, "offset": off, "stride": 1, "dilation": 1, "map_size": (9, 9),
                                       **filt, **k})  # fmt: skip

    def unpool(**k):
        return unpool_crops(**{**pool, **k})

    def both(**k):
        return unpool_conv_transpose_crops(**{**fused, **k})

    return [
        (lambda: conv(x=x.long()), TypeError, "x must be a float"),
        (lambda: conv(offset=off.int()), ValueError, "offset must be an int64"),
        (lambda: conv(weight=torch.zeros(2, 3, 3, 3)), ValueError, r"weight must be \(4, C_out"),
        (lambda: conv(weight=w.double()), ValueError, "weight must match x's dtype"),
        (lambda: conv(groups=3), ValueError, "groups must be a positive int dividing"),
        (lambda: conv(stride=(1, 2, 3)), TypeError, "stride must be an int or a pair"),
        (lambda: unpool(switches=sw.float()), ValueError, "switches must be a uint8"),
        (lambda: unpool(switches=sw[:, :2]), ValueError, "switches must have the crops' 4 channels"),
        (lambda: unpool(image_index=torch.tensor([0, 3])), ValueError, r"image_index must lie in \[0, 3\)"),
        (lambda: unpool(image_index=torch.tensor([0])), ValueError, "image_index must be an int64 \\(2,\\)"),
        (lambda: unpool(padding="1"), TypeError, "padding must be an int or a pair"),
        (lambda: both(conv_offset=off[:1]), ValueError, "conv_offset must be an int64"),
        (lambda: both(weight=torch.zeros(3, 3, 3, 3)), ValueError, "weight must be"),
        (lambda: both(image_index=torch.tensor([-1, 0])), ValueError, "image_index must lie in"),
        (lambda: both(conv_dilation=0.5), TypeError, "conv_dilation must be an int or a pair"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_crop_calls())))
def test_crop_ops_name_the_bad_argument(case):
    """Every backend gets checked arguments: a weight with other channels than the crops read past its
    end in the native kernel before these checks."""
    call, error, match = _bad_crop_calls()[case]
    with pytest.raises(error, match=match):
        call()


@needs_native
def test_native_crop_entry_points_check_arguments():
    ext = native.extension()
    x = torch.zeros(1, 2, 3, 3)
    with pytest.raises(ValueError, match="kernel, stride and dilation must be positive"):
        ext.conv_transpose_crops_cpu(x.data_ptr(), x.data_ptr(), x.data_ptr(), x.data_ptr(),
                                     (1, 2, 3, 3, 0, 3, 1, 1, 1, 1, 5, 5), 1, 1, False, 0, 1)  # fmt: skip
    with pytest.raises(ValueError, match="groups must divide"):
        ext.conv_transpose_crops_cpu(x.data_ptr(), x.data_ptr(), x.data_ptr(), x.data_ptr(),
                                     (1, 2, 3, 3, 3, 3, 1, 1, 1, 1, 5, 5), 1, 3, False, 0, 1)  # fmt: skip
    idx = torch.tensor([5])
    with pytest.raises(ValueError, match="image_index out of range"):
        ext.unpool_crops_cpu(x.data_ptr(), x.data_ptr(), idx.data_ptr(), idx.data_ptr(), x.data_ptr(),
                             (1, 2, 3, 3, 3, 3, 2, 2, 1, 1, 7, 7), 3, 3, 2, 0, 0, False, 0, 1)  # fmt: skip
    with pytest.raises(ValueError, match="float32 or float64"):
        ext.unpool_crops_cpu(x.data_ptr(), x.data_ptr(), idx.data_ptr(), idx.data_ptr(), x.data_ptr(),
                             (1, 2, 3, 3, 3, 3, 2, 2, 1, 1, 7, 7), 3, 3, 6, 0, 0, False, 2, 1)  # fmt: skip
    pool, conv = (1, 2, 3, 3, 3, 3, 2, 2, 1, 1, 7, 7), (1, 2, 7, 7, 3, 3, 1, 1, 1, 1, 9, 9)
    ptrs = (x.data_ptr(), x.data_ptr(), idx.data_ptr(), idx.data_ptr(), x.data_ptr(), idx.data_ptr(), x.data_ptr())
    with pytest.raises(ValueError, match="must be the unpooled crops"):
        ext.unpool_conv_transpose_crops_cpu(
            *ptrs, pool, 3, 3, 6, 0, 0, True, (1, 2, 6, 7, *conv[4:]), 2, 1, False, 0, 1
        )
    with pytest.raises(ValueError, match="image_index out of range"):
        ext.unpool_conv_transpose_crops_cpu(*ptrs, pool, 3, 3, 2, 0, 0, True, conv, 2, 1, False, 0, 1)
    with pytest.raises(ValueError, match="groups must divide"):
        ext.unpool_conv_transpose_crops_cpu(*ptrs, pool, 3, 3, 6, 0, 0, True, conv, 2, 3, False, 0, 1)


@needs_native
def test_native_backend_refuses_what_it_cannot_run():
    x = torch.zeros(1, 2, 3, 3, dtype=torch.bfloat16)
    with pytest.raises(zfaccel.BackendUnavailableError, match="float32 or float64"):
        conv_transpose_crops(x, torch.zeros(2, 2, 3, 3, dtype=torch.bfloat16), (1, 1), (1, 1), 1,
                             torch.zeros(1, 2, dtype=torch.long), (5, 5), backend="native")  # fmt: skip


@pytest.mark.parametrize("target", target_params("unpool_crops"))
def test_every_backend_equals_the_reference(target, gen):
    """Both crop ops on every backend (Triton: its switch-unpool kernel; torch's transposed
    convolution) against the torch backend, on the ZFNet-like crops of the cases above."""
    device, backend = target
    map_size, k, s, p, d, ceil_mode, h, w = UNPOOL_CASES[1]
    images = torch.randn(2, 3, *map_size, generator=gen).to(device)
    pooled, switches = zfaccel.max_pool2d_switches(images, k, s, p, d, ceil_mode, backend="torch")
    x = torch.randn(3, 3, h, w, generator=gen).to(device)
    image_index = torch.tensor([1, 0, 1], device=device)
    offset = torch.tensor([[-2, -1], [0, 0], [3, 4]], device=device)
    args = (x, switches, image_index, offset, k, s, p, d, map_size)
    ours = unpool_crops(*args, relu=True, backend=backend)
    torch.testing.assert_close(ours, unpool_crops(*args, relu=True, backend="torch"), rtol=1e-6, atol=1e-6)
    weight = torch.randn(3, 4, 3, 3, generator=gen).to(device)
    args = (ours, weight, (2, 2), (1, 1), 1, offset * 2 - 1, (40, 37))
    torch.testing.assert_close(conv_transpose_crops(*args, relu=True, backend=backend),
                               conv_transpose_crops(*args, relu=True, backend="torch"))  # fmt: skip


@needs_native
def test_unpool_crops_switches_naming_padding_land_nowhere(gen):
    """Switches that name a padding row or column, or lie outside the window, add nothing (as the
    composite does), on the border cells the native kernel checks and the inner ones it does not."""
    map_size, k, s, p, d = (17, 16), 3, 2, 1, 1
    images = torch.randn(2, 3, *map_size, generator=gen)
    _, switches = zfaccel.max_pool2d_switches(images, k, s, p, d)
    switches = switches.clone()
    switches[:, :, 0, :] = torch.randint(0, 3, switches[:, :, 0, :].shape, generator=gen).to(torch.uint8)  # row -1
    switches[:, :, -1, :] = torch.randint(6, 9, switches[:, :, -1, :].shape, generator=gen).to(torch.uint8)  # row 17
    switches[:, :, :, 0] = torch.tensor([0, 3, 6], dtype=torch.uint8)[torch.randint(0, 3, (1,), generator=gen)]
    switches[:, :, 3:5, 3:5] = 200  # outside the window
    ph, pw = switches.shape[-2:]
    x = torch.randn(4, 3, ph, pw, generator=gen)
    image_index, offset = torch.tensor([0, 1, 1, 0]), torch.tensor([[0, 0], [-1, 2], [2, -1], [1, 1]])
    ours = unpool_crops(x, switches, image_index, offset, k, s, p, d, map_size, backend="native")
    ref = unpool_crops(x, switches, image_index, offset, k, s, p, d, map_size, backend="torch")
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
