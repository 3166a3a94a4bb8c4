"""python -m zfaccel.triton_kernels.compile_check: every Triton kernel compiles for sm_80 and sm_90 with
every configuration it ships, and none spills.

The check compiles (no GPU needed) in a process of its own without TRITON_INTERPRET, which the
conftest sets here: 572 compilations, about 3.5 minutes on 2 cores with an empty Triton cache (4.5
under Triton 3.9), under a minute with a warm one.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.triton
pytest.importorskip("triton", reason="Triton is not installed")

from zfaccel.triton_kernels import compile_check  # noqa: E402

KERNELS = {
    "_max_pool2d_switches_kernel",
    "_max_unpool2d_switches_kernel",
    "_occlusion_batch_kernel",
    "_spatial_argmax_kernel",
}
ARCHS = (80, 90)


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> tuple[subprocess.CompletedProcess, list[dict]]:
    out = tmp_path_factory.mktemp("compile_check") / "records.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    cmd = [sys.executable, "-m", "zfaccel.triton_kernels.compile_check", "--arch", *map(str, ARCHS), "--json", out]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    assert out.exists(), f"no JSON written (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc, json.loads(out.read_text())


def test_every_kernel_compiles_without_spills(checked):
    proc, records = checked
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert {(r["kernel"], r["arch"]) for r in records} == {(k, a) for k in KERNELS for a in ARCHS}
    bad = [r for r in records if not r["ok"] or r["spills"] != 0]
    assert not bad, bad[:5]
    keys = {"kernel", "arch", "config", "dtype", "ok", "error", "registers", "spills", "shared_bytes"}
    assert all(keys <= r.keys() and r["registers"] > 0 for r in records)
    assert "registers" in proc.stdout and f"{len(records)} compilations, 0 failed or spilled" in proc.stdout


def test_every_autotune_config_is_compiled(checked):
    """Each autotuned kernel, in each dtype of the benchmark cases, with each config it ships."""
    _, records = checked
    for name in ("max_pool2d_switches", "max_unpool2d_switches"):
        module = importlib.import_module(f"zfaccel.triton_kernels.{name}")  # the package exports the launchers
        kernel = module._tuned.fn.__name__
        shipped = {compile_check._config_name(c.kwargs, {"num_warps": c.num_warps, "num_stages": c.num_stages})
                   for c in module._tuned.configs}  # fmt: skip
        for arch in ARCHS:
            for dtype in ("float32", "bfloat16"):
                compiled = {
                    r["config"] for r in records if (r["kernel"], r["arch"], r["dtype"]) == (kernel, arch, dtype)
                }
                assert compiled == shipped, (kernel, arch, dtype)


def test_arguments_specialised_as_the_jit_does():
    """compile_check's reading of Triton's JIT rules (1 a constant, multiples of 16 divisible, i64
    past i32) against the JIT's own specialisation, where this Triton exposes it."""
    try:
        from triton._C.libtriton import native_specialize_impl
        from triton.backends.compiler import BaseBackend
    except ImportError:
        pytest.skip("this Triton has no native_specialize_impl")
    import torch

    for value in (
        1,
        7,
        32,
        -16,
        2**31 - 1,
        2**31,
        2**40,
        3 * 2**33 + 5,
        torch.empty(4),
        torch.empty(2, dtype=torch.uint8),
    ):
        kind, divisible = compile_check._specialise(value)
        jit_kind, jit_attr = native_specialize_impl(BaseBackend, value, False, True, True)
        assert kind == jit_kind, value
        if kind != "constexpr":
            assert divisible == ("D" in (jit_attr or "")), value


def test_failures_are_errors_and_spills():
    ok = {"ok": True, "spills": 0, "error": None}
    records = [ok, {"ok": True, "spills": 8, "error": None}, {"ok": False, "spills": None, "error": "boom"}]
    assert compile_check.failures(records) == records[1:]
