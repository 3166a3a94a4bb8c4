"""The deconvnet's two steps on batched crops: transposed convolution and switch unpooling.

Crops are explained in zfaccel/analysis/regions.py. Each op has a composite path
(PyTorch's transposed convolution, zfaccel's switch unpool on the requested
backend, then masking) that runs anywhere and is the tests' oracle, and a fused
C++ kernel for float32/float64 CPU tensors that skips zero inputs (the
deconvnet's signal is mostly zeros) and reads switches in place.

Backends: "auto" uses the C++ kernel where it applies and the composite path
elsewhere (on GPUs cuDNN's transposed convolution and the Triton unpool serve);
"native" insists on the C++ kernel; "torch" and "triton" use the composite path,
whose unpool then runs on that backend.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zfaccel import native
from zfaccel.backends import BackendUnavailableError, check_name
from zfaccel.native import crops as native_crops
from zfaccel.ops.max_unpool2d_switches import max_unpool2d_switches
from zfaccel.reference.crops import gather_crops, inside, mask_outside

Pair = tuple[int, int]


def _native_reason(x: torch.Tensor) -> str | None:
    if native.extension() is None:
        return f"zfaccel._native is not importable ({native.import_error()})"
    if x.device.type != "cpu":
        return f"the crop kernels run CPU tensors, not {x.device.type}"
    if x.dtype not in (torch.float32, torch.float64):
        return f"the crop kernels take float32 or float64, not {x.dtype}"
    return None


def _use_native(x: torch.Tensor, backend: str, op: str, extra_reason: str | None = None) -> bool:
    check_name(backend)
    reason = _native_reason(x) or extra_reason
    if backend == "native" and reason:
        raise BackendUnavailableError(f"backend='native' cannot run {op}: {reason}")
    return backend in ("auto", "native") and reason is None


def conv_transpose_crops(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: Pair,
    dilation: Pair,
    groups: int,
    offset: torch.Tensor,
    map_size: Pair,
    *,
    relu: bool = False,
    weights_finite: bool | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Transposed convolution (no padding, no bias) of crops, masked to the output map, then ReLU if ``relu``.

    Args:
        x: (T, C, h, w) float crops.
        weight: (C, C_out / groups, kh, kw): the weight of the Conv2d being inverted.
        stride, dilation, groups: that Conv2d's.
        offset: int64 (T, 2): the output crop's cell (0, 0) in the output map (the input
            offset times the stride, minus the padding).
        map_size: (H, W) of the output map (the Conv2d's input).
        weights_finite: whether ``weight`` is all finite, if the caller knows (checked otherwise).

    Returns:
        (T, C_out, (h - 1) * sh + (kh - 1) * dh + 1, ...) x.dtype, zero outside the map.
    """
    if weights_finite is None:
        weights_finite = bool(torch.isfinite(weight).all())
    # Skipping zeros drops 0 * inf = nan: keep the dense path for non-finite weights.
    finite = None if weights_finite else "the weights hold inf or nan"
    if _use_native(x, backend, "conv_transpose_crops", finite):
        return native_crops.conv_transpose_crops(x, weight, stride, dilation, groups, offset, map_size, relu)
    y = mask_outside(F.conv_transpose2d(x, weight, None, stride, 0, 0, groups, dilation), offset, map_size)
    return torch.relu(y) if relu else y


def unpool_crops(
    x: torch.Tensor,
    switches: torch.Tensor,
    image_index: torch.Tensor,
    offset: torch.Tensor,
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    map_size: Pair,
    *,
    relu: bool = False,
    backend: str = "auto",
) -> torch.Tensor:
    """Switch unpooling (+ ReLU) of pooled crops, reading each target's image's switches in place.

    Args:
        x: (T, C, h, w) float pooled crops; ``offset`` int64 (T, 2) is their cell (0, 0) in the
            pooled map.
        switches: uint8 (N, C, OH, OW), the pooling's switches; ``image_index`` int64 (T,) picks
            each target's image.
        kernel_size, stride, padding, dilation: the pooling's.
        map_size: (H, W) of the unpooled map (the pooling's input).

    Returns:
        (T, C, (h - 1) * sh + (kh - 1) * dh + 1, ...) x.dtype whose cell (0, 0) is
        ``offset * stride - padding`` of the unpooled map; zero outside it.
    """
    out_offset = offset * torch.tensor(stride, device=offset.device) - torch.tensor(padding, device=offset.device)
    if _use_native(x, backend, "unpool_crops"):
        return native_crops.unpool_crops(
            x, switches, image_index, offset, kernel_size, stride, padding, dilation, map_size, relu
        )
    h, w = x.shape[-2:]
    x = torch.where(inside(offset, (h, w), switches.shape[-2:]), x, torch.zeros((), dtype=x.dtype, device=x.device))
    out_size = tuple((x.shape[2 + i] - 1) * stride[i] + (kernel_size[i] - 1) * dilation[i] + 1 for i in range(2))
    y = max_unpool2d_switches(
        x, gather_crops(switches, image_index, offset, (h, w)), out_size, kernel_size, stride, 0, dilation,
        relu=relu, backend=backend if backend != "native" else "auto", validate=False,
    )  # fmt: skip
    return mask_outside(y, out_offset, map_size)
