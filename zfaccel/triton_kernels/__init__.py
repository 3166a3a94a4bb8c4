"""Triton kernels, with launchers of the same names and signatures as :mod:`zfaccel.reference`,
one module per op (``zfaccel.triton_kernels.<op>``).

Importing this package reads its table only: Triton is imported by the op
modules, on first use of the "triton" backend. Set ``TRITON_INTERPRET=1``
before that to run the kernels on CPU tensors (the tests do).
"""

from __future__ import annotations

import importlib.util
import os

import torch

LABEL = "Triton"
# op -> device types; "cpu" means the interpreter (see unavailable).
IMPLEMENTS = {
    "max_pool2d_switches": ("cuda", "cpu"),
    "max_unpool2d_switches": ("cuda", "cpu"),
    "occlusion_batch": ("cuda", "cpu"),
    "spatial_argmax": ("cuda", "cpu"),
    "unpool_crops": ("cuda", "cpu"),  # the switch-unpool kernel on the crops' gathered switches
    "conv_transpose_crops": ("cuda", "cpu"),  # torch's transposed convolution (cuDNN): no Triton kernel
}


def unavailable(device: torch.device) -> str | None:
    """Why Triton cannot run kernels on ``device`` here, or None (Triton is not imported)."""
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed"
    if device.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        return "Triton runs CPU tensors only under TRITON_INTERPRET=1 (set before zfaccel's kernels load)"
    return None
