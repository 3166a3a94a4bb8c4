"""Backend choice: auto's order, the ZFACCEL_BACKEND override, and clear errors, never silent fallbacks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import zfaccel
from zfaccel import backends, native

HAS_NATIVE = native.extension() is not None


@pytest.mark.skipif(not HAS_NATIVE, reason=f"zfaccel._native not built: {native.import_error()}")
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


def test_unknown_device_type_goes_to_torch():
    assert backends.resolve("auto", torch.device("meta")) == "torch"
    with pytest.raises(zfaccel.BackendUnavailableError, match="meta"):
        backends.resolve("native", torch.device("meta"))


def _python(code: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_loads_no_triton_and_probes_nothing():
    """Importing zfaccel imports no Triton and touches no GPU; neither does a CPU op.

    (Calling any torch.library op imports torch._dynamo, which imports Triton
    itself when it is installed: that is torch's doing, after zfaccel's import.)
    """
    code = (
        "import sys, torch, zfaccel\n"
        "print('triton' in sys.modules)\n"
        "zfaccel.max_pool2d_switches(torch.randn(1, 2, 6, 6), 2)\n"
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
