"""Backend choice: "auto", "triton", "native" or "torch".

- ``torch``: the pure-PyTorch reference (:mod:`zfaccel.reference`); any device.
- ``native``: the compiled extension ``zfaccel._native``; CPU always, CUDA when it
  was built with nvcc.
- ``triton``: Triton kernels on CUDA tensors; on CPU tensors only under
  ``TRITON_INTERPRET=1`` (the tests).
- ``auto``: a CUDA tensor goes to triton, then native, then torch; a CPU tensor
  to native, then torch. The environment variable ``ZFACCEL_BACKEND`` replaces
  "auto" (an explicit ``backend=`` argument wins over it).

An explicitly requested backend that cannot run raises
:class:`BackendUnavailableError` saying why; it never falls back silently.
Nothing here imports Triton or touches a GPU at import time.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

import torch

BACKENDS = ("auto", "triton", "native", "torch")
ENV_VAR = "ZFACCEL_BACKEND"


class BackendUnavailableError(RuntimeError):
    """A backend was asked for by name but cannot run these tensors here."""


def check_name(backend: object, name: str = "backend") -> str:
    """Validate a backend name (the argument's value, not whether it can run)."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")
    return backend


def triton_interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _native_module() -> ModuleType | None:
    from zfaccel import native

    return native.extension()


# Ops whose compiled kernel exists for CPU tensors only; GPUs run their Triton kernel.
NATIVE_CPU_ONLY = frozenset({"spatial_argmax"})


def why_unavailable(backend: str, device: torch.device, op: str | None = None) -> str | None:
    """None when ``backend`` can run ``op``'s tensors on ``device`` (any op when None), else the reason."""
    if backend == "torch":
        return None
    if backend == "native":
        ext = _native_module()
        if ext is None:
            from zfaccel import native

            return f"the compiled extension zfaccel._native is not importable ({native.import_error()})"
        if device.type == "cpu":
            return None
        if device.type == "cuda":
            if not ext.has_cuda:
                return "zfaccel._native was built without CUDA kernels (nvcc was not found when it was built)"
            if op in NATIVE_CPU_ONLY:
                return f"zfaccel._native has no CUDA kernel for {op} (its Triton kernel serves GPUs)"
            return None
        return f"zfaccel._native has no kernels for {device.type} tensors"
    if backend == "triton":
        if importlib.util.find_spec("triton") is None:
            return "Triton is not installed"
        if device.type == "cuda":
            return None
        if device.type == "cpu":
            if triton_interpreting():
                return None
            return "Triton runs CPU tensors only under TRITON_INTERPRET=1 (set before zfaccel's kernels load)"
        return f"Triton has no kernels for {device.type} tensors"
    raise ValueError(f"unknown backend {backend!r}")


def _auto_order(device: torch.device) -> tuple[str, ...]:
    if device.type == "cuda":
        return ("triton", "native", "torch")
    if device.type == "cpu":
        return ("native", "torch")
    return ("torch",)


def resolve(backend: str, device: torch.device, op: str | None = None) -> str:
    """The concrete backend that runs ``op``'s tensors on ``device`` for the requested ``backend``."""
    check_name(backend)
    if backend == "auto":
        backend = check_name(os.environ.get(ENV_VAR, "auto") or "auto", f"the environment variable {ENV_VAR}")
    if backend == "auto":
        for candidate in _auto_order(device):
            if why_unavailable(candidate, device, op) is None:
                return candidate
        return "torch"
    reason = why_unavailable(backend, device, op)
    if reason is not None:
        raise BackendUnavailableError(f"backend={backend!r} cannot run {device.type} tensors: {reason}")
    return backend


def available_backends(device: str | torch.device = "cpu") -> list[str]:
    """The backends that can run tensors on ``device`` here, in auto's order of preference."""
    device = torch.device(device)
    names = [b for b in _auto_order(device) if why_unavailable(b, device) is None]
    return names + [b for b in ("triton", "native") if b not in names and why_unavailable(b, device) is None]


_MODULES = {"torch": "zfaccel.reference", "native": "zfaccel.native", "triton": "zfaccel.triton_kernels"}


def implementation(backend: str) -> ModuleType:
    """The module holding ``backend``'s op functions (same names and signatures in each)."""
    return importlib.import_module(_MODULES[backend])
