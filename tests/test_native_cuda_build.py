"""The CUDA half of zfaccel._native as built: machine code for every architecture the build names,
every kernel in it, and no spills or local memory (read with cuobjdump --dump-resource-usage;
the build itself fails on them: CMakeLists.txt makes ptxas's spill and local-memory warnings errors).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from zfaccel import native

ext = native.extension()
pytestmark = pytest.mark.skipif(ext is None, reason=f"zfaccel._native not built: {native.import_error()}")

KERNELS = ("max_pool2d_switches_kernel", "max_unpool2d_switches_kernel", "occlusion_batch_kernel")
USAGE = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")


def test_build_info():
    info = ext.build_info()
    assert info["cuda"] is ext.has_cuda
    assert info["openmp"] >= 200805 and info["openmp_max_threads"] >= 1
    assert info["build_type"] and info["cxx_compiler"]
    if ext.has_cuda:
        assert info["cuda_architectures"] and info["cuda_compiler"]
    else:
        assert info["cuda_architectures"] == [] and info["cuda_compiler"] is None


def cuobjdump() -> str | None:
    """The toolkit's cuobjdump (PATH, CUDA_HOME, beside nvcc), else the one Triton's wheel ships."""
    found = shutil.which("cuobjdump")
    homes = [os.environ.get(v) for v in ("CUDA_HOME", "CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    for folder in [os.path.join(h, "bin") for h in homes if h] + ([os.path.dirname(nvcc)] if nvcc else []):
        if not found and os.access(os.path.join(folder, "cuobjdump"), os.X_OK):
            found = os.path.join(folder, "cuobjdump")
    if not found:
        try:
            from triton import knobs

            found = knobs.nvidia.cuobjdump.path
        except Exception:  # no Triton, or one without knobs: no cuobjdump here
            return None
    return found if found and os.access(found, os.X_OK) else None


def resource_usage(tool: str) -> dict[str, dict[str, tuple[int, ...]]]:
    """{"sm_80": {kernel symbol: (registers, stack, shared, local)}, ...} of the built module."""
    out = subprocess.run([tool, "--dump-resource-usage", ext.__file__], capture_output=True, text=True, check=True)
    usage: dict[str, dict[str, tuple[int, ...]]] = {}
    arch = function = None
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("arch = "):
            arch = line.removeprefix("arch = ")
            usage.setdefault(arch, {})
        elif line.startswith("Function "):
            function = line.removeprefix("Function ").rstrip(":")
        elif (m := USAGE.search(line)) and arch and function:
            usage[arch][function] = tuple(map(int, m.groups()))
    return usage


def test_cuda_kernels_no_spills_no_local_memory():
    if not ext.has_cuda:
        pytest.skip("zfaccel._native was built without CUDA kernels (no nvcc at build time)")
    tool = cuobjdump()
    if tool is None:
        pytest.skip("no cuobjdump (CUDA toolkit or Triton's wheel) to read the module's resource usage")
    usage = resource_usage(tool)
    real = {f"sm_{a.split('-')[0]}" for a in ext.build_info()["cuda_architectures"] if not a.endswith("-virtual")}
    assert real and real <= usage.keys(), (real, sorted(usage))
    for arch in real:
        for kernel in KERNELS:
            assert any(kernel in name for name in usage[arch]), f"{kernel} missing for {arch}"
        for name, (registers, stack, _, local) in usage[arch].items():
            assert local == 0 and stack == 0, f"{arch} {name}: {registers} registers, stack {stack}, local {local}"
