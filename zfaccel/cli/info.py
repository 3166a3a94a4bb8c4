"""``zfaccel info``: what a bug report needs, in one screen.

The versions (zfaccel, Python, torch, Triton, CUDA), the compiled extension zfaccel._native (whether
it loads, its OpenMP threads, whether CUDA kernels were compiled in and for which architectures),
the backends each device can run, and on a GPU its name and architecture and whether every Triton
kernel compiles for it (python -m zfaccel.triton_kernels.compile_check for that architecture: a
minute or two the first time, seconds once Triton's cache holds the kernels).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile

# _OPENMP's value: the date of the specification the compiler implements.
OPENMP_VERSIONS = {200805: "3.0", 201107: "3.1", 201307: "4.0", 201511: "4.5", 201811: "5.0", 202011: "5.1",
                   202111: "5.2", 202411: "6.0"}  # fmt: skip


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="versions, native build, backends and GPU: what a bug report needs",
                       description=__doc__)  # fmt: skip
    p.set_defaults(run=run)


def triton_version() -> str | None:
    if importlib.util.find_spec("triton") is None:
        return None
    try:
        return importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        import triton

        return triton.__version__


def native_lines() -> list[str]:
    from zfaccel import native

    ext = native.extension()
    if ext is None:
        return [f"loads: no ({native.import_error()})"]
    lines = ["loads: yes"]
    if not hasattr(ext, "build_info"):  # a build older than build_info(): reinstall to see more
        return [*lines, f"CUDA kernels: {'yes' if ext.has_cuda else 'no'} (an older build: no build_info())"]
    info = ext.build_info()
    omp = OPENMP_VERSIONS.get(info["openmp"], str(info["openmp"]))
    lines.append(f"OpenMP: {omp}, max threads {info['openmp_max_threads']}")
    if info["cuda"]:
        archs = " ".join(info["cuda_architectures"])
        lines.append(f"CUDA kernels: yes, for {archs} ({info['cuda_compiler']})")
    else:
        lines.append("CUDA kernels: no (nvcc was not found when it was built)")
    native_cpu = ", -march=native" if info["march_native"] else ""
    lines.append(f"C++: {info['cxx_compiler']}, {info['build_type']}{native_cpu}")
    return lines


def compile_check_line(arch: int) -> str:
    """Whether every Triton kernel compiles for ``arch``, from compile_check in a fresh process
    (zfaccel's kernels may have been imported for the interpreter in this one)."""
    head = f"Triton kernels compile for sm_{arch}:"
    print(f"(compiling every Triton kernel for sm_{arch}: a minute or two the first time)", file=sys.stderr)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "records.json")
        cmd = [sys.executable, "-m", "zfaccel.triton_kernels.compile_check", "--arch", str(arch), "--json", out]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if not os.path.exists(out):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return f"{head} could not check ({tail[0]})"
        with open(out) as f:
            records = json.load(f)
    bad = [r for r in records if not r["ok"] or r["spills"]]
    regs = max((r["registers"] for r in records if r["ok"]), default=0)
    if not bad:
        return f"{head} yes ({len(records)} compilations, {regs} registers at most, no spill)"
    first = bad[0]
    why = first["error"].splitlines()[0] if first["error"] else f"{first['spills']} bytes of spills"
    return (f"{head} NO, {len(bad)} of {len(records)} fail or spill "
            f"(first: {first['kernel']} [{first['config']}] {first['dtype']}: {why})")  # fmt: skip


def gpu_lines() -> list[str]:
    import torch

    lines = []
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        lines.append(f"GPU {i}: {torch.cuda.get_device_name(i)}, sm_{major}{minor}")
    if torch.version.hip is not None:
        return [*lines, "Triton compile check: CUDA targets only (this is ROCm)"]
    if triton_version() is None:
        return [*lines, "Triton compile check: Triton is not installed"]
    major, minor = torch.cuda.get_device_capability()
    return [*lines, compile_check_line(major * 10 + minor)]


def report() -> list[str]:
    import torch

    from zfaccel import __version__, available_backends

    gpu = torch.cuda.is_available()
    triton = triton_version()
    cuda = f"torch built with CUDA {torch.version.cuda}" if torch.version.cuda else "torch built without CUDA"
    lines = [
        f"zfaccel {__version__}",
        f"Python  {platform.python_version()} ({platform.python_implementation()}, {platform.system()} "
        f"{platform.machine()})",
        f"torch   {torch.__version__}",
        f"Triton  {triton or 'not installed'}",
        f"CUDA    {cuda}; GPU visible: {'yes' if gpu else 'no'}",
        "",
        "native build (zfaccel._native)",
        *(f"  {line}" for line in native_lines()),
        "",
        "backends (in auto's order)",
        f"  cpu: {', '.join(available_backends('cpu'))}",
    ]
    if gpu:
        lines.append(f"  cuda: {', '.join(available_backends('cuda'))}")
        lines += ["", "GPU", *(f"  {line}" for line in gpu_lines())]
    return lines


def run(args: argparse.Namespace) -> int:
    print("\n".join(report()))
    return 0
