"""Backend choice: auto's order, the ZFACCEL_BACKEND override, and clear errors, never silent fallbacks."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from types import SimpleNamespace

import pytest
import torch

import zfaccel
from zfaccel import backends, native

CPU = torch.device("cpu")
NATIVE_REASON = backends.why_unavailable("native", CPU)
HAS_NATIVE = NATIVE_REASON is None
OPS = sorted({op for b in backends.BACKEND_TABLE for op in backends.package(b).IMPLEMENTS})


@pytest.mark.skipif(not HAS_NATIVE, reason=f"cpu/native: {NATIVE_REASON}")
def test_auto_prefers_native_on_cpu(monkeypatch):
    monkeypatch.delenv("ZFACCEL_BACKEND", raising=False)
    assert backends.resolve("auto", torch.device("cpu")) == "native"
    assert zfaccel.available_backends("cpu")[:2] == ["native", "torch"]


def test_environment_overrides_auto(monkeypatch):
    monkeypatch.setenv("ZFACCEL_BACKEND", "torch")
    assert backends.resolve("auto", torch.device("cpu")) == "torch"
    if HAS_NATIVE:
        assert backends.resolve("native", torch.device("cpu")) == "native"  # an explicit argument wins


def test_environment_value_checked(monkeypatch):
    monkeypatch.setenv("ZFACCEL_BACKEND", "fast")
    with pytest.raises(ValueError, match="ZFACCEL_BACKEND"):
        zfaccel.max_pool2d_switches(torch.randn(1, 1, 4, 4), 2)


def test_environment_backend_is_used(monkeypatch):
    """The override reaches the kernel call: a backend that cannot run raises instead of falling back."""
    monkeypatch.setenv("ZFACCEL_BACKEND", "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(zfaccel.BackendUnavailableError, match="TRITON_INTERPRET"):
        zfaccel.max_pool2d_switches(torch.randn(1, 1, 4, 4), 2)


def test_explicit_triton_on_cpu_without_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(zfaccel.BackendUnavailableError, match="backend='triton' cannot run cpu tensors"):
        zfaccel.max_pool2d_switches(torch.randn(1, 1, 4, 4), 2, backend="triton")


def test_explicit_native_without_extension(monkeypatch):
    monkeypatch.setitem(native._state, "module", None)
    monkeypatch.setitem(native._state, "error", "ImportError: planted")
    with pytest.raises(zfaccel.BackendUnavailableError, match="planted"):
        zfaccel.max_pool2d_switches(torch.randn(1, 1, 4, 4), 2, backend="native")
    assert backends.resolve("auto", torch.device("cpu")) == "torch"  # auto does fall back


@pytest.mark.parametrize("backend", list(backends.BACKEND_TABLE))
def test_tables_name_launchers(backend):
    """Every op a package's IMPLEMENTS lists has its launcher: the function ``op`` of ``<package>.<op>``
    (Triton's modules only located when Triton is missing)."""
    pkg = backends.BACKEND_TABLE[backend].package
    for op, devices in backends.package(backend).IMPLEMENTS.items():
        assert devices and all(isinstance(d, str) for d in devices), (backend, op, devices)
        assert importlib.util.find_spec(f"{pkg}.{op}") is not None, f"{pkg}.{op} is missing"
        if backend != "triton" or importlib.util.find_spec("triton") is not None:
            assert callable(getattr(importlib.import_module(f"{pkg}.{op}"), op))


@pytest.mark.parametrize("op", OPS)
def test_dispatch_is_the_lookup(op, monkeypatch):
    """torch implements every op anywhere, so auto always finds a backend; dispatch returns the table's launcher."""
    monkeypatch.delenv("ZFACCEL_BACKEND", raising=False)
    assert backends.package("torch").IMPLEMENTS[op] == (backends.ANY,)
    launcher = backends.dispatch(op, "torch", CPU)
    assert launcher is getattr(importlib.import_module(f"zfaccel.reference.{op}"), op)
    auto = backends.package(backends.resolve("auto", CPU, op)).__name__
    assert backends.dispatch(op, "auto", CPU) is getattr(importlib.import_module(f"{auto}.{op}"), op)
    assert backends.resolve("auto", torch.device("meta"), op) == "torch"


def test_reasons_come_from_the_tables():
    cuda = torch.device("cuda")
    reason = backends.why_unavailable("native", cuda, "spatial_argmax")
    assert reason == "zfaccel._native has no cuda kernel for spatial_argmax (backend 'triton' has one)"
    with pytest.raises(zfaccel.BackendUnavailableError, match="cannot run cuda tensors for spatial_argmax: zfaccel"):
        backends.dispatch("spatial_argmax", "native", cuda)
    assert "does not implement no_such_op" in backends.why_unavailable("native", CPU, "no_such_op")
    if HAS_NATIVE:
        reason = backends.why_unavailable("native", CPU, "unpool_crops", torch.bfloat16)
        assert reason == "zfaccel._native's unpool_crops takes float32 or float64, not bfloat16"
        assert backends.resolve("auto", CPU, "unpool_crops", torch.bfloat16) == "torch"
        assert backends.resolve("auto", CPU, "unpool_crops", torch.float32) == "native"
        assert backends.resolve("auto", CPU, "unpool_crops", unfit={"native": "these inputs"}) == "torch"
    if not torch.cuda.is_available():
        assert backends.why_unavailable("torch", cuda) == "needs a CUDA GPU (none on this machine)"
        assert zfaccel.available_backends("cuda") == []


def test_package_readiness(monkeypatch):
    """Each package says why it cannot run on a device: extension missing, built without CUDA, Triton missing."""
    monkeypatch.setitem(native._state, "module", SimpleNamespace(has_cuda=False))
    assert native.unavailable(CPU) is None
    assert "built without CUDA kernels" in native.unavailable(torch.device("cuda"))
    monkeypatch.setitem(sys.modules, "triton", None)  # what an import of it then finds: nothing
    assert backends.package("triton").unavailable(torch.device("cuda")) == "Triton is not installed"


def test_unknown_device_type_goes_to_torch():
    assert backends.resolve("auto", torch.device("meta")) == "torch"
    with pytest.raises(zfaccel.BackendUnavailableError, match="meta"):
        backends.resolve("native", torch.device("meta"))


def _python(code: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
        cwd=tempfile.gettempdir(),  # not the checkout: "-c" puts the current folder first on sys.path
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_loads_no_triton_and_probes_nothing():
    """Importing zfaccel imports no Triton and touches no GPU; neither do CPU ops.

    (Calling any torch.library op imports torch._dynamo, which imports Triton
    itself when it is installed: that is torch's doing, after zfaccel's import.)
    """
    code = (
        "import sys, torch, zfaccel\n"
        "print('triton' in sys.modules)\n"
        "x = torch.randn(1, 2, 6, 6)\n"
        "zfaccel.max_pool2d_switches(x, 2)\n"
        "zfaccel.spatial_argmax(x)\n"
        "zfaccel.occlusion_batch(x, x.new_zeros(()), torch.tensor([[0, 1, 1]]), 2)\n"
        "print('zfaccel.triton_kernels' in sys.modules, torch.cuda.is_initialized())"
    )
    assert _python(code, TRITON_INTERPRET="0").split() == ["False", "False", "False"]


def test_import_without_triton_installed():
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch, zfaccel\n"
        "y, s = zfaccel.max_pool2d_switches(torch.randn(1, 2, 6, 6), 2)\n"
        "print(zfaccel.available_backends('cpu'))\n"
        "try:\n"
        "    zfaccel.max_pool2d_switches(torch.randn(1, 2, 6, 6), 2, backend='triton')\n"
        "except zfaccel.BackendUnavailableError as e:\n"
        "    print(e)\n"
    )
    listed, error = _python(code, TRITON_INTERPRET="1").splitlines()
    assert "triton" not in listed
    assert "Triton is not installed" in error
