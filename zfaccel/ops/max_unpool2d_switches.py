"""zfaccel.max_unpool2d_switches: the exact transpose of max-pooling, through uint8 switches."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zfaccel import library, native
from zfaccel.backends import check_name
from zfaccel.checks import check_tensor, memory_format
from zfaccel.geometry import PoolGeometry
from zfaccel.ops.max_pool2d_switches import IntOrPair, check_flag
from zfaccel.reference import find_invalid_switch


def check_switches(switches: object, like: torch.Tensor, like_name: str) -> torch.Tensor:
    """uint8 switches of ``like``'s shape, on its device."""
    if not isinstance(switches, torch.Tensor):
        raise TypeError(f"switches must be a torch.Tensor, got {type(switches).__name__}")
    if switches.dtype != torch.uint8:
        raise TypeError(f"switches must be uint8 (as max_pool2d_switches returns them), got {switches.dtype}")
    if switches.shape != like.shape:
        raise ValueError(f"switches must have {like_name}'s shape {tuple(like.shape)}, got {tuple(switches.shape)}")
    if switches.device != like.device:
        raise ValueError(f"switches are on {switches.device} but {like_name} is on {like.device}")
    return switches


def _native_scan_clean(switches: torch.Tensor, g: PoolGeometry) -> bool:
    """True when the compiled scan (CPU, NCHW or channels-last switches) finds no invalid switch:
    one native pass instead of a dozen small torch ops (1 ms -> 0.2 ms on a ZFNet layer)."""
    ext = native.extension()
    if switches.dim() == 3:  # (C, OH, OW): read as N = 1, never as N = C planes of OH channels
        switches = switches.unsqueeze(0)
    layout = memory_format(switches)
    if ext is None or switches.device.type != "cpu" or not switches.is_contiguous(memory_format=layout):
        return False
    n, c = switches.shape[:2]
    bad = ext.count_invalid_switches_cpu(
        switches.data_ptr(), g.native_shape(n, c), int(layout == torch.channels_last), torch.get_num_threads()
    )
    return bad == 0


def validate_switch_values(switches: torch.Tensor, g: PoolGeometry) -> None:
    """ValueError naming the first switch outside its window or on a padding position.

    switches: uint8 (N, C, OH, OW) or (C, OH, OW). The torch scan locates and reports; on the
    CPU a compiled scan first settles the common case where all are valid.
    """
    if _native_scan_clean(switches, g):
        return
    found = find_invalid_switch(switches, g)
    if found is not None:
        index, value = found
        where = "outside its" if value >= g.window else "on the padding of its"
        raise ValueError(
            f"switches{list(index)} = {value} points {where} {g.kernel[0]}x{g.kernel[1]} window "
            f"(valid offsets 0..{g.window - 1} that land inside the {g.input_size} input)"
        )


def max_unpool2d_switches(
    y: torch.Tensor,
    switches: torch.Tensor,
    output_size: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    *,
    relu: bool = False,
    backend: str = "auto",
    validate: bool = True,
) -> torch.Tensor:
    """Place each pooled value back at its switch, summing where windows overlap.

    The exact transpose of the pooling: equal to the gradient of
    ``F.max_pool2d`` with respect to its input for ``grad_output = y`` (to float
    rounding), unlike ``F.max_unpool2d``, which overwrites on overlap.
    Deterministic on every backend: a gather, no atomics.

    Args:
        y: (N, C, OH, OW) or (C, OH, OW) float (float32/64, float16, bfloat16).
        switches: uint8, y's shape, as :func:`max_pool2d_switches` returns them.
        output_size: (H, W) of the pooled input (or a full (N, C, H, W) size);
            OH and OW must be what pooling it gives, with or without ceil_mode.
        kernel_size, stride, padding, dilation: those of the pooling.
        relu: apply ReLU to the sum (the deconvnet's unpool-then-rectify step).
        backend: "auto", "triton", "native" or "torch".
        validate: scan the switches for values outside their window or on the
            padding (a ValueError). The scan syncs with a GPU; pass False where
            the switches come straight from max_pool2d_switches. Skipped under
            torch.compile.

    Returns:
        x_hat: (N, C, H, W) (or (C, H, W)), y.dtype, in y's memory layout.
    """
    check_tensor(y, "y")
    check_switches(switches, y, "y")
    check_name(backend)
    check_flag(relu, "relu")
    g = PoolGeometry.for_unpool(output_size, tuple(y.shape[-2:]), kernel_size, stride, padding, dilation)
    batched = y.dim() == 4
    if not batched:
        y, switches = y.unsqueeze(0), switches.unsqueeze(0)
    if validate and not torch.compiler.is_compiling():
        validate_switch_values(switches, g)
    x_hat = library.max_unpool2d_switches(
        y, switches, list(g.input_size), list(g.kernel), list(g.stride), list(g.padding), list(g.dilation),
        relu, backend,
    )  # fmt: skip
    return x_hat if batched else x_hat[0]
