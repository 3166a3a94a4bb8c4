"""Launchers for the compiled extension ``zfaccel._native`` (C++/OpenMP, CUDA when built with nvcc).

The extension takes raw pointers and sizes; these launchers make the tensors
NCHW- or channels-last-contiguous, allocate outputs in the same layout, and
pass the current torch thread count (CPU) or the current CUDA stream. Same
function names and signatures as :mod:`zfaccel.reference`; ``IMPLEMENTS`` says
which ops have a kernel on which devices (see :mod:`zfaccel.backends`).
"""

from __future__ import annotations

import contextlib
import math
from types import ModuleType

import torch

from zfaccel.checks import channels_last
from zfaccel.native import buffers

LABEL = "zfaccel._native"
# op -> device types with a kernel ("cuda" only when the extension was built with nvcc: see unavailable).
IMPLEMENTS = {
    "max_pool2d_switches": ("cpu", "cuda"),
    "max_unpool2d_switches": ("cpu", "cuda"),
    "occlusion_batch": ("cpu", "cuda"),
    "spatial_argmax": ("cpu",),
    "conv_transpose_crops": ("cpu",),
    "unpool_crops": ("cpu",),
    "unpool_conv_transpose_crops": ("cpu",),
}
# ops whose kernels take only some dtypes (the others take float32, float64, float16 and bfloat16).
DTYPES = {
    op: (torch.float32, torch.float64) for op in ("conv_transpose_crops", "unpool_crops", "unpool_conv_transpose_crops")
}

_DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}
_state: dict[str, object] = {}


def extension() -> ModuleType | None:
    """The compiled module, or None when it is missing (import_error() says why)."""
    if "module" not in _state:
        try:
            from zfaccel import _native

            _state["module"] = _native
        except ImportError as err:
            _state["module"] = None
            _state["error"] = f"{type(err).__name__}: {err}"
    return _state["module"]  # type: ignore[return-value]


def import_error() -> str:
    extension()
    return str(_state.get("error", "no error"))


def unavailable(device: torch.device) -> str | None:
    """Why the extension cannot run kernels on ``device`` here, or None."""
    ext = extension()
    if ext is None:
        return f"the compiled extension zfaccel._native is not importable ({import_error()})"
    if device.type == "cuda" and not ext.has_cuda:
        return "zfaccel._native was built without CUDA kernels (nvcc was not found when it was built)"
    return None


# Fresh CPU outputs at least this large get 2 MiB pages (see advise_huge_pages
# in kernels/bindings.cpp) and are faulted in before the kernel, each thread its
# own contiguous share (touch_pages): below it page faults cost little.
HUGE_PAGE_MIN_BYTES = 8 << 20
# Within buffers.reusing(cache), contiguous CPU outputs at least this large come from the cache: a
# fresh 1 MiB costs 256 page faults (about 0.25 ms here), more than a small kernel call.
CACHE_MIN_BYTES = 1 << 20


def _prepare(out: torch.Tensor) -> torch.Tensor:
    """``out`` (CPU) with huge pages asked for and faulted in, when it is large."""
    nbytes = out.numel() * out.element_size()
    if out.device.type == "cpu" and nbytes >= HUGE_PAGE_MIN_BYTES:
        ext = extension()
        if ext is not None:
            ext.advise_huge_pages(out.data_ptr(), nbytes)
            ext.touch_pages(out.data_ptr(), nbytes, torch.get_num_threads())
    return out


def empty(size: tuple[int, ...], like: torch.Tensor, dtype: torch.dtype, fmt: torch.memory_format) -> torch.Tensor:
    """An uninitialised output on ``like``'s device; large CPU ones get huge pages, faulted in by
    all threads in contiguous shares before the kernel writes them. Within ``buffers.reusing(cache)``
    large contiguous CPU ones come from that cache: memory already faulted in (buffers.py)."""
    cache = buffers.current()
    if cache is not None and like.device.type == "cpu" and fmt == torch.contiguous_format:
        nbytes = math.prod(size) * dtype.itemsize
        if nbytes >= CACHE_MIN_BYTES:
            buf = cache.take(nbytes)
            if buf is not None:
                return buf.view(dtype).view(size)
    return _prepare(torch.empty(size, dtype=dtype, device=like.device, memory_format=fmt))


def launch(op: str, tensors: tuple[torch.Tensor, ...], shape: tuple[int, ...], relu: bool) -> None:
    """Run ``op`` ("max_pool2d_switches" or "max_unpool2d_switches") on same-layout contiguous tensors.

    tensors: (input, input-or-output, output) in the kernel's argument order;
    the first one fixes dtype, device and layout.
    """
    ext = extension()
    if ext is None:
        raise RuntimeError(f"zfaccel._native is not available: {import_error()}")
    first = tensors[0]
    args = (*(t.data_ptr() for t in tensors), shape, _DTYPE_CODES[first.dtype], int(channels_last(first)), relu)
    if first.device.type == "cpu":
        getattr(ext, op + "_cpu")(*args, torch.get_num_threads())
    else:
        with torch.cuda.device(first.device) if first.device.type == "cuda" else contextlib.nullcontext():
            getattr(ext, op + "_cuda")(*args, torch.cuda.current_stream(first.device).cuda_stream)


from zfaccel.native.max_pool2d_switches import max_pool2d_switches  # noqa: E402
from zfaccel.native.max_unpool2d_switches import max_unpool2d_switches  # noqa: E402

__all__ = [
    "DTYPES",
    "IMPLEMENTS",
    "LABEL",
    "empty",
    "extension",
    "import_error",
    "launch",
    "max_pool2d_switches",
    "max_unpool2d_switches",
    "unavailable",
]
