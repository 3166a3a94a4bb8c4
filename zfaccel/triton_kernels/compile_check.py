"""Compile every Triton kernel of zfaccel for real GPUs, on a machine with no GPU.

    python -m zfaccel.triton_kernels.compile_check [--arch 80 90 ...] [--json FILE] [--jobs N] [--rows]

Each kernel is compiled, through ``triton.compile`` to PTX and cubin for ``GPUTarget("cuda", arch, 32)``
(ptxas ships in the Triton wheel), with every configuration it ships (its ``triton.autotune``
configs, or the tile and warps its launcher picks) and every dtype and constexpr combination its
launcher produces for the benchmark cases on a GPU (zfaccel.bench: the ZFNet and VGG pooling
layers, the occlusion batches, the top-9 mining of ZFNet's conv layers). The arguments are those
the launchers pass, built on "meta" tensors, and specialised as Triton's JIT specialises them (an
integer 1 becomes a constant, a multiple of 16 and a fresh tensor's pointer are marked divisible
by 16), so the code compiled is the code a GPU would run. The same compilation repeated (two
benchmark cases with one specialisation) is compiled once.

Registers and spills come from ptxas -v on each kernel's PTX (the figures a GPU's driver would
report as n_regs and n_spills), shared memory from the compiled kernel's metadata. Prints a
summary (``--rows``: every compilation), writes the records as JSON with ``--json``, and exits 1
when a compilation fails or spills.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import importlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import warnings

import torch

ARCHS = (80, 90)
# Triton's JIT: an int is i32 when it fits, an int equal to 1 a constant, a multiple of 16 (and a
# tensor's address: torch allocates at 256-byte boundaries) carries tt.divisibility = 16.
_POINTER_TYPES = {
    torch.float32: "fp32",
    torch.float64: "fp64",
    torch.float16: "fp16",
    torch.bfloat16: "bf16",
    torch.uint8: "u8",
    torch.int64: "i64",
    torch.int32: "i32",
}


@dataclasses.dataclass(frozen=True)
class Job:
    """One compilation: a kernel, its specialised signature, constexprs and launch options, one arch."""

    module: str  # the kernel's module and function
    function: str
    arch: int
    signature: tuple[tuple[str, str], ...]  # arg name -> "*fp32", "i32", "constexpr", in order
    constexprs: tuple[tuple[str, object], ...]  # arg name -> value
    aligned: tuple[str, ...]  # args with tt.divisibility = 16
    options: tuple[tuple[str, int], ...]  # num_warps, num_stages
    config: str
    dtype: str


@dataclasses.dataclass(frozen=True)
class Launch:
    """What a launcher passes for one benchmark case, and the configurations it may run with."""

    module: str
    function: str
    case: str
    dtype: torch.dtype
    args: tuple  # positional runtime arguments ("meta" tensors and ints)
    constexprs: dict
    configs: list[tuple[dict, dict]]  # (tile constexprs, options) pairs


def _module(name: str):
    return importlib.import_module(f"zfaccel.triton_kernels.{name}")


def _autotune_configs(module, tuned: str) -> list[tuple[dict, dict]]:
    configs = getattr(module, tuned).configs
    return [(dict(c.kwargs), {"num_warps": c.num_warps, "num_stages": c.num_stages}) for c in configs]


def _meta(shape: tuple[int, ...], dtype: torch.dtype, channels_last: bool = False) -> torch.Tensor:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty(shape, dtype=dtype, device="meta", memory_format=fmt)


def _pool_launches() -> list[Launch]:
    from zfaccel.bench.cases import pool_cases
    from zfaccel.geometry import PoolGeometry

    pool, unpool = _module("max_pool2d_switches"), _module("max_unpool2d_switches")
    pool_configs = _autotune_configs(pool, "_tuned")
    unpool_configs = _autotune_configs(unpool, "_tuned")
    launches = []
    for case in pool_cases(torch.device("cuda"), quick=False):
        name = f"{case.name} {case.layout}"
        x = _meta(case.shape, case.dtype, case.layout == "channels_last")
        k, s, p, d, ceil = case.pool_args()
        g = PoolGeometry.for_pool(tuple(x.shape[-2:]), k, s, p, d, ceil)
        y, switches = pool.outputs(x, g)
        args, constexprs = pool.arguments(x, y, switches, g, relu=False)  # as bench.max_pool2d_switches
        launches.append(Launch(pool.__name__, "_max_pool2d_switches_kernel", name, case.dtype, args, constexprs,
                               pool_configs))  # fmt: skip
        gu = PoolGeometry.for_unpool(tuple(x.shape[-2:]), g.output_size, k, s, p, d)
        args, constexprs = unpool.arguments(y, switches, torch.empty_like(x), gu, relu=True)  # as its benchmark
        launches.append(Launch(unpool.__name__, "_max_unpool2d_switches_kernel", name, case.dtype, args, constexprs,
                               unpool_configs))  # fmt: skip
    return launches


def _occlusion_launches() -> list[Launch]:
    from zfaccel.bench import occlusion_batch as bench

    mod = _module("occlusion_batch")
    launches = []
    for case in bench.cases(torch.device("cuda"), quick=False):
        images = _meta((1, 3, bench.SIZE, bench.SIZE), case.dtype)
        baseline = _meta((3, 1, 1), case.dtype).expand_as(images)  # a grey occluder, as zfaccel.occlusion_batch
        out = _meta(case.out_shape(), case.dtype)
        positions, origins = _meta((case.batch, 3), torch.int64), _meta((case.batch, 2), torch.int64)
        args = mod.arguments(images, baseline, positions, (bench.WINDOW, bench.WINDOW), origins, out)
        tile = mod.tile(*out.shape[1:], interpreter=False)
        launches.append(Launch(mod.__name__, "_occlusion_batch_kernel", f"{case.name} x{case.batch}", case.dtype,
                               args, {}, [(tile, {"num_warps": mod.NUM_WARPS})]))  # fmt: skip
    return launches


# The maps top_activations mines in its benchmark: ZFNet's conv layers at 224 px, batches of 16.
ZFNET_MAPS = {"conv1": (96, 110, 110), "conv2": (256, 26, 26), "conv3": (384, 13, 13), "conv5": (256, 13, 13)}


def _argmax_launches() -> list[Launch]:
    mod = _module("spatial_argmax")
    launches = []
    for layer, (c, h, w) in ZFNET_MAPS.items():
        x = _meta((16, c, h, w), torch.float32)
        values, indices = _meta((16, c), torch.float32), _meta((16, c), torch.int64)
        args, constexprs = mod.arguments(x, values, indices, interpreter=False)
        launches.append(Launch(mod.__name__, "_spatial_argmax_kernel", f"zfnet {layer}", x.dtype, args, constexprs,
                               [({}, {"num_warps": mod.NUM_WARPS})]))  # fmt: skip
    return launches


def launches() -> list[Launch]:
    """Every kernel's launches for the benchmark cases."""
    return _pool_launches() + _occlusion_launches() + _argmax_launches()


def _specialise(value: object) -> tuple[str, bool]:
    """(type, divisible by 16) of a runtime argument, as Triton's JIT specialises it."""
    if isinstance(value, torch.Tensor):
        return "*" + _POINTER_TYPES[value.dtype], True
    if isinstance(value, bool):
        return "u1", False
    if isinstance(value, int):
        if value == 1:
            return "constexpr", False
        return ("i32" if -(2**31) <= value < 2**31 else "i64"), value % 16 == 0
    raise TypeError(f"unexpected kernel argument {value!r}")


def _config_name(tile: dict, options: dict) -> str:
    return " ".join([*(f"{k}={v}" for k, v in tile.items()), *(f"{k}={v}" for k, v in options.items())])


def jobs(archs: tuple[int, ...]) -> tuple[list[Job], dict[Job, list[str]]]:
    """The distinct compilations and, for each, the benchmark cases that produce it."""
    cases: dict[Job, list[str]] = {}
    for launch in launches():
        fn = getattr(importlib.import_module(launch.module), launch.function)
        names = list(fn.arg_names)
        signature, constexprs, aligned = {}, {}, []
        for name, value in zip(names, launch.args, strict=False):
            kind, divisible = _specialise(value)
            signature[name] = kind
            if kind == "constexpr":
                constexprs[name] = value
            if divisible:
                aligned.append(name)
        for tile, options in launch.configs:
            fixed = {**launch.constexprs, **tile}
            for name in names[len(launch.args) :]:
                signature[name] = "constexpr"
                constexprs[name] = fixed[name]
            for arch in archs:
                job = Job(
                    launch.module, launch.function, arch, tuple(signature.items()), tuple(constexprs.items()),
                    tuple(aligned), tuple(options.items()), _config_name(tile, options),
                    str(launch.dtype).removeprefix("torch."),
                )  # fmt: skip
                cases.setdefault(job, []).append(launch.case)
    return list(cases), cases


def _ptxas_usage(ptx: str, arch: int) -> tuple[int, int]:
    """(registers, spill bytes stored + loaded) from ptxas -v, the ptxas Triton itself runs."""
    from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.ptx")
        with open(path, "w") as f:
            f.write(ptx)
        cmd = [get_ptxas(arch).path, "-v", f"--gpu-name={sm_arch_from_capability(arch)}", path, "-o", path + ".o"]
        log = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    registers = re.search(r"Used (\d+) registers", log)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    if registers is None or spills is None:
        raise RuntimeError(f"unexpected ptxas -v output:\n{log}")
    return int(registers.group(1)), int(spills.group(1)) + int(spills.group(2))


def _source(fn, signature: dict, constexprs: dict, aligned: tuple[str, ...]):
    """triton.compile's source. Triton 3.6 to 3.9 take the signature keyed by argument name and
    the constexprs and attributes keyed by (index,) paths (3.6 also takes names for constexprs,
    converting them to paths; paths serve both)."""
    from triton.compiler import ASTSource

    names = list(fn.arg_names)
    paths = {(names.index(k),): v for k, v in constexprs.items()}
    attrs = {(names.index(k),): [["tt.divisibility", 16]] for k in aligned}
    return ASTSource(fn, signature, paths, attrs)


def compile_one(job: Job) -> dict:
    """Compile one job; its record (ok False with the error when it fails)."""
    import triton
    from triton.backends.compiler import GPUTarget

    # Triton 3.9 warns once per process that its FP-fusion default will change; the launchers
    # keep the default (fusion on), and so does this check.
    warnings.filterwarnings("ignore", message="TRITON_DEFAULT_FP_FUSION")
    record = {"kernel": job.function, "arch": job.arch, "config": job.config, "dtype": job.dtype, "ok": False,
              "error": None, "registers": None, "spills": None, "shared_bytes": None}  # fmt: skip
    try:
        fn = getattr(importlib.import_module(job.module), job.function)
        src = _source(fn, dict(job.signature), dict(job.constexprs), job.aligned)
        compiled = triton.compile(src, target=GPUTarget("cuda", job.arch, 32), options=dict(job.options))
        record["registers"], record["spills"] = _ptxas_usage(compiled.asm["ptx"], job.arch)
        record["shared_bytes"] = int(compiled.metadata.shared)
        record["ok"] = True
    except Exception as err:  # a record per failure, not a traceback that stops the check
        record["error"] = f"{type(err).__name__}: {err}".strip()[:4000]
    return record


def run(archs: tuple[int, ...] = ARCHS, workers: int | None = None) -> list[dict]:
    """Every record, compiled in ``workers`` processes (default: one per CPU core). Needs the
    kernels compiled, not interpreted: TRITON_INTERPRET unset when zfaccel's kernels were imported."""
    todo, cases = jobs(tuple(archs))
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    if workers == 1:
        records = [compile_one(job) for job in todo]
    else:
        # spawn: fresh processes, no copy of this one's threads (torch's, Triton's).
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            records = list(ex.map(compile_one, todo, chunksize=4))
    for job, record in zip(todo, records, strict=True):
        record["cases"] = cases[job]
    return records


def failures(records: list[dict]) -> list[dict]:
    """The records that failed to compile or spill."""
    return [r for r in records if not r["ok"] or r["spills"]]


def summary(records: list[dict]) -> list[str]:
    """One line per kernel, arch and dtype: compilations, failures, registers and spills."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["kernel"], r["arch"], r["dtype"]), []).append(r)
    rows = [("kernel", "arch", "dtype", "compiled", "failed", "registers", "spills", "shared bytes")]
    for (kernel, arch, dtype), group in groups.items():
        ok = [r for r in group if r["ok"]]
        regs = sorted(r["registers"] for r in ok)
        span = f"{regs[0]}-{regs[-1]}" if regs and regs[0] != regs[-1] else (str(regs[0]) if regs else "-")
        rows.append((kernel, f"sm_{arch}", dtype, str(len(group)), str(len(group) - len(ok)), span,
                     str(max((r["spills"] for r in ok), default=0)),
                     str(max((r["shared_bytes"] for r in ok), default=0))))  # fmt: skip
    return _table(rows)


def _table(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _detail(records: list[dict]) -> list[str]:
    rows = [("kernel", "arch", "dtype", "config", "ok", "registers", "spills", "shared", "cases")]
    for r in records:
        rows.append((r["kernel"], f"sm_{r['arch']}", r["dtype"], r["config"], "yes" if r["ok"] else "NO",
                     r["registers"], r["spills"], r["shared_bytes"], ", ".join(r["cases"])))  # fmt: skip
    return _table(rows)


def interpreting() -> bool:
    """Whether zfaccel's kernels were (or would be) built for the interpreter, which compiles nothing."""
    from zfaccel.triton_kernels.tiles import interpreting as env_says

    return env_says()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zfaccel.triton_kernels.compile_check",
        description="Compile every Triton kernel of zfaccel for real GPUs (no GPU needed): each shipped "
        "configuration, each dtype and constexpr combination of the benchmark cases. Exits 1 on a "
        "compile error or a register spill.",
    )
    parser.add_argument("--arch", type=int, nargs="+", default=list(ARCHS), help="compute capabilities (80 90)")
    parser.add_argument("--json", metavar="FILE", help="write the records here as JSON")
    parser.add_argument("--jobs", type=int, default=None, help="compiling processes (default: one per core)")
    parser.add_argument("--rows", action="store_true", help="print every compilation, not only the summary")
    args = parser.parse_args(argv)
    if interpreting():
        # @triton.jit made interpreter functions when this process imported the kernels: compile
        # in a fresh process without TRITON_INTERPRET.
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        argv = sys.argv[1:] if argv is None else argv
        return subprocess.run([sys.executable, "-m", __spec__.name, *argv], env=env).returncode
    records = run(tuple(args.arch), args.jobs)
    print("\n".join(_detail(records) if args.rows else summary(records)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    bad = failures(records)
    for r in bad:
        what = r["error"] if not r["ok"] else f"{r['spills']} bytes of spills"
        print(f"FAILED {r['kernel']} sm_{r['arch']} {r['dtype']} [{r['config']}]: {what}", file=sys.stderr)
    print(f"{len(records)} compilations, {len(bad)} failed or spilled")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
