"""Launcher of the compiled crop paste (kernels/paste_rows.cpp): the deconvnet's pixel crops into its output."""

from __future__ import annotations

import torch

from zfaccel.native import _DTYPE_CODES, extension


def paste_rows(out: torch.Tensor, rows: torch.Tensor, signal: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """out (N, C, H, W) contiguous float32/float64 CPU: ``out[rows[t]]`` becomes crop t of ``signal``
    (T, C, h, w) at ``offset[t]`` (int64 (T, 2), its cell (0, 0) in the map), clipped to the map, and
    zero elsewhere; the other rows are left as they are. Returns ``out``."""
    if not out.is_contiguous() or signal.dtype != out.dtype or signal.shape[1] != out.shape[1]:
        raise ValueError(f"paste_rows: out must be contiguous and match the crops' dtype and channels, got out "
                         f"{tuple(out.shape)} {out.dtype} and crops {tuple(signal.shape)} {signal.dtype}")  # fmt: skip
    signal = signal.contiguous()
    offset, rows = offset.to(torch.int64).contiguous(), rows.to(torch.int64).contiguous()
    extension().paste_rows_cpu(
        signal.data_ptr(), offset.data_ptr(), rows.data_ptr(), out.data_ptr(), (*signal.shape, *out.shape[:1],
        *out.shape[2:]), _DTYPE_CODES[out.dtype], torch.get_num_threads(),
    )  # fmt: skip
    return out
