"""Backend choice: "auto", "triton", "native" or "torch", through one lookup, :func:`dispatch`.

- ``torch``: the pure-PyTorch reference (:mod:`zfaccel.reference`); any device.
- ``native``: the compiled extension ``zfaccel._native`` (:mod:`zfaccel.native`); CPU,
  and CUDA when it was built with nvcc.
- ``triton``: Triton kernels (:mod:`zfaccel.triton_kernels`) on CUDA tensors; on CPU
  tensors only under ``TRITON_INTERPRET=1`` (the tests).
- ``auto``: the first backend of :data:`BACKEND_TABLE` that auto may pick for the
  tensors' device and that runs the op there: CUDA tensors go to triton, then native,
  then torch; CPU tensors to native, then torch. The environment variable
  ``ZFACCEL_BACKEND`` replaces "auto" (an explicit ``backend=`` argument wins over it).

Each backend package declares what it implements in its ``__init__``: ``IMPLEMENTS``
(op name -> the device types it has a kernel for; :data:`ANY` for every device),
optionally ``DTYPES`` (op name -> the dtypes its kernel takes, where it does not take
them all), ``LABEL`` (its name in messages) and ``unavailable(device)`` (why it cannot
run on that device here, or None). The launcher of op ``op`` is the function ``op`` of
its module ``<package>.<op>``. Adding an op is a row in each implementing package's
``IMPLEMENTS``; adding a backend is a row of :data:`BACKEND_TABLE`.

An explicitly requested backend that cannot run raises
:class:`BackendUnavailableError` saying why; it never falls back silently.
Nothing here imports Triton or touches a GPU at import time; a package's table
is read without importing its kernels.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType

import torch

ANY = "any"  # an IMPLEMENTS entry: every device type
ENV_VAR = "ZFACCEL_BACKEND"


@dataclass(frozen=True)
class Backend:
    package: str  # the package declaring IMPLEMENTS, LABEL, unavailable() (and DTYPES)
    auto: tuple[str, ...]  # the device types "auto" may pick it for


# In auto's order of preference.
BACKEND_TABLE = {
    "triton": Backend("zfaccel.triton_kernels", auto=("cuda",)),  # on CPU it is the (slow) interpreter
    "native": Backend("zfaccel.native", auto=("cpu", "cuda")),
    "torch": Backend("zfaccel.reference", auto=(ANY,)),
}
BACKENDS = ("auto", *BACKEND_TABLE)


class BackendUnavailableError(RuntimeError):
    """A backend was asked for by name but cannot run these tensors here."""


def check_name(backend: object, name: str = "backend") -> str:
    """Validate a backend name (the argument's value, not whether it can run)."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")
    return backend


def triton_interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def package(backend: str) -> ModuleType:
    """The package of a concrete backend: its tables, never its kernels (importing it imports no Triton)."""
    return importlib.import_module(BACKEND_TABLE[backend].package)


def _covers(devices: tuple[str, ...], device: torch.device) -> bool:
    return ANY in devices or device.type in devices


def _dtype_names(dtypes) -> str:
    return " or ".join(str(d).removeprefix("torch.") for d in dtypes)


def implementers(op: str, device: torch.device) -> list[str]:
    """The backends whose table lists ``op`` on ``device``'s type (whether or not they can run here)."""
    return [b for b in BACKEND_TABLE if _covers(package(b).IMPLEMENTS.get(op, ()), device)]


def why_unavailable(
    backend: str, device: torch.device, op: str | None = None, dtype: torch.dtype | None = None
) -> str | None:
    """None when ``backend`` can run ``op`` (any op when None) on ``device`` (and ``dtype``) here,
    else the reason. Everything that says whether a backend runs derives from this."""
    if backend not in BACKEND_TABLE:
        raise ValueError(f"unknown backend {backend!r}")
    pkg = package(backend)
    if op is None:
        if not any(_covers(devices, device) for devices in pkg.IMPLEMENTS.values()):
            return f"{pkg.LABEL} has no kernels for {device.type} tensors"
    elif op not in pkg.IMPLEMENTS:
        return f"{pkg.LABEL} does not implement {op}"
    elif not _covers(pkg.IMPLEMENTS[op], device):
        others = [repr(b) for b in implementers(op, device) if b != "torch"]
        hint = f" (backend {' and '.join(others)} has one)" if others else ""
        return f"{pkg.LABEL} has no {device.type} kernel for {op}{hint}"
    if device.type == "cuda" and not torch.cuda.is_available():
        return "needs a CUDA GPU (none on this machine)"
    reason = pkg.unavailable(device)
    if reason is None and op is not None and dtype is not None:
        dtypes = getattr(pkg, "DTYPES", {}).get(op)
        if dtypes is not None and dtype not in dtypes:
            reason = f"{pkg.LABEL}'s {op} takes {_dtype_names(dtypes)}, not {str(dtype).removeprefix('torch.')}"
    return reason


def resolve(
    backend: str,
    device: torch.device,
    op: str | None = None,
    dtype: torch.dtype | None = None,
    *,
    unfit: Mapping[str, str] | None = None,
) -> str:
    """The concrete backend that runs ``op`` on ``device`` for the requested ``backend``.

    ``unfit``: backends these particular inputs rule out (name -> why), beyond the tables.
    """
    check_name(backend)
    unfit = unfit or {}
    if backend == "auto":
        backend = check_name(os.environ.get(ENV_VAR, "auto") or "auto", f"the environment variable {ENV_VAR}")
    if backend == "auto":
        reasons = {}
        for name, spec in BACKEND_TABLE.items():
            if _covers(spec.auto, device):
                reasons[name] = unfit.get(name) or why_unavailable(name, device, op, dtype)
                if reasons[name] is None:
                    return name
        tried = "; ".join(f"{name}: {reason}" for name, reason in reasons.items())
        raise BackendUnavailableError(f"no backend can run {op or 'zfaccel'} on {device.type} tensors ({tried})")
    reason = unfit.get(backend) or why_unavailable(backend, device, op, dtype)
    if reason is not None:
        what = f" for {op}" if op else ""
        raise BackendUnavailableError(f"backend={backend!r} cannot run {device.type} tensors{what}: {reason}")
    return backend


def dispatch(
    op: str,
    backend: str,
    device: torch.device,
    dtype: torch.dtype | None = None,
    *,
    unfit: Mapping[str, str] | None = None,
) -> Callable:
    """The launcher that runs ``op`` on ``device`` (``dtype``) for the requested ``backend``
    ("auto" resolved, ``ZFACCEL_BACKEND`` applied): the only way zfaccel picks an implementation.

    Raises BackendUnavailableError (with the reason) when a named backend cannot run it here.
    """
    name = resolve(backend, device, op, dtype, unfit=unfit)
    return getattr(importlib.import_module(f"{BACKEND_TABLE[name].package}.{op}"), op)


def available_backends(device: str | torch.device = "cpu") -> list[str]:
    """The backends that can run tensors on ``device`` here: auto's choices first, in its order of
    preference, then the others (Triton's interpreter on CPU)."""
    device = torch.device(device)
    names = [b for b in BACKEND_TABLE if why_unavailable(b, device) is None]
    return [b for b in names if _covers(BACKEND_TABLE[b].auto, device)] + [
        b for b in names if not _covers(BACKEND_TABLE[b].auto, device)
    ]
