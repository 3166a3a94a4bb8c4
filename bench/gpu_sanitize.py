"""One small call of every op on each compiled backend, checked against the reference: the program
``bench/gpu_check.sh`` runs under ``compute-sanitizer --tool memcheck`` and ``--tool racecheck``.

    python bench/gpu_sanitize.py [--device cuda|cpu] [--backends native triton] [--require B ...] [--one-config]

Ops: max_pool2d_switches, max_unpool2d_switches, occlusion_batch, spatial_argmax, on small tensors
whose edges the kernels' tiles overhang (masks matter), in NCHW and channels-last, float32 and
float16. Each call is synchronised before the next, so an asynchronous error is charged to its op.
A backend that cannot run an op here is listed as skipped with the reason (the native backend has
no CUDA spatial_argmax); ``--require`` makes a backend that cannot run at all a failure.

Under compute-sanitizer set ``PYTORCH_NO_CUDA_MEMORY_CACHING=1`` (so that each tensor is its own
allocation and an overrun is seen) and leave ``TRITON_INTERPRET`` unset. ``--one-config`` trims
every autotuned Triton kernel to its first configuration: otherwise autotuning compiles and runs
some thirty variants of each, minutes under the sanitizer. With ``--device cpu`` the Triton
kernels run in Triton's interpreter (``TRITON_INTERPRET=1`` is set unless given).

Exit status: 0 every call ran and matched, 1 a call failed or differed, 2 a required backend
cannot run on the device.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
from collections.abc import Callable

import torch

OPS = ("max_pool2d_switches", "max_unpool2d_switches", "occlusion_batch", "spatial_argmax")


def distinct(shape: tuple[int, ...], dtype: torch.dtype, device: str, channels_last: bool = False) -> torch.Tensor:
    """Distinct values in [-0.5, 0.5) (no ties, so every backend must pick the same maximum)."""
    n = 1
    for s in shape:
        n *= s
    g = torch.Generator().manual_seed(n)
    x = (torch.randperm(n, generator=g).double() / n - 0.5).reshape(shape).to(device=device, dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def cases(device: str) -> list[tuple[str, str, Callable[[str], object]]]:
    """(op, description, call(backend) -> tensors) for every small case."""
    import zfaccel

    found = []
    pools = [
        # shape, dtype, channels_last, kernel, stride, padding, ceil_mode, relu
        ((2, 5, 9, 11), torch.float32, False, 3, 2, 1, True, False),
        ((2, 6, 10, 7), torch.float16, True, (3, 2), (2, 1), 0, False, True),
    ]
    for shape, dtype, cl, k, s, p, ceil, relu in pools:
        layout = "channels_last" if cl else "nchw"
        what = f"{shape} {str(dtype).removeprefix('torch.')} {layout} kernel {k} stride {s}"
        x = distinct(shape, dtype, device, cl)

        def pool(backend, x=x, k=k, s=s, p=p, ceil=ceil, relu=relu):
            return zfaccel.max_pool2d_switches(x, k, s, p, ceil_mode=ceil, relu=relu, backend=backend)

        def unpool(backend, x=x, k=k, s=s, p=p, ceil=ceil, relu=relu):
            y, sw = zfaccel.max_pool2d_switches(x, k, s, p, ceil_mode=ceil, backend="torch")
            return zfaccel.max_unpool2d_switches(y, sw, x.shape[-2:], k, s, p, relu=relu, backend=backend)

        found += [("max_pool2d_switches", what, pool), ("max_unpool2d_switches", what, unpool)]

    images = distinct((2, 3, 16, 16), torch.float32, device)
    baseline = torch.tensor([0.1, -0.2, 0.3], device=device).reshape(3, 1, 1)
    positions = torch.tensor([[0, 0, 0], [1, 5, 9], [0, 12, 12], [1, 14, 3]], device=device)
    origins = torch.tensor([[-2, -2], [3, 4], [10, 10], [0, 0]], device=device)

    def occlude(backend):
        whole = zfaccel.occlusion_batch(images, baseline, positions, (5, 4), backend=backend)
        crops = zfaccel.occlusion_batch(images, baseline, positions, (5, 4), origins, (7, 9), backend=backend)
        return whole, crops

    found.append(("occlusion_batch", "4 positions of (2, 3, 16, 16), whole and (7, 9) crops", occlude))

    maps = distinct((2, 4, 7, 9), torch.float32, device)
    maps[1, 2, 3, 4] = float("nan")

    def argmax(backend):
        return zfaccel.spatial_argmax(maps, backend=backend)

    found.append(("spatial_argmax", "(2, 4, 7, 9) float32, one NaN", argmax))
    return found


def flatten(result: object) -> list[torch.Tensor]:
    return [result] if isinstance(result, torch.Tensor) else [t for part in result for t in flatten(part)]


def mismatch(op: str, got: object, want: object) -> str | None:
    """None when ``got`` matches the reference's ``want`` (exact; the unpool's sums to rounding)."""
    for i, (a, b) in enumerate(zip(flatten(got), flatten(want), strict=True)):
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"output {i}: {tuple(a.shape)} {a.dtype} != {tuple(b.shape)} {b.dtype}"
        a, b = a.cpu(), b.cpu()
        if op == "max_unpool2d_switches":
            same = torch.isclose(a.double(), b.double(), rtol=1e-3, atol=1e-3, equal_nan=True)
        elif a.is_floating_point():
            same = (a == b) | (a.isnan() & b.isnan())
        else:
            same = a == b
        if not bool(same.all()):
            return f"output {i}: {int((~same).sum())} of {same.numel()} values differ from the reference"
    return None


def trim_autotuning() -> list[str]:
    """Every autotuned kernel of zfaccel.triton_kernels keeps its first configuration only."""
    import triton.runtime.autotuner as autotuner

    import zfaccel.triton_kernels as package

    trimmed = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, autotuner.Autotuner) and len(value.configs) > 1:
                value.configs = value.configs[:1]
                trimmed.append(f"{info.name}.{name}")
    return trimmed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--backends", nargs="+", choices=["native", "triton", "torch"], default=["native", "triton"])
    parser.add_argument("--require", nargs="*", choices=["native", "triton"], default=[],
                        help="backends that must be able to run on the device (else exit 2)")  # fmt: skip
    parser.add_argument("--one-config", action="store_true", help="trim autotuned Triton kernels to one config")
    args = parser.parse_args(argv)
    if args.device == "cpu":
        os.environ.setdefault("TRITON_INTERPRET", "1")
    elif not torch.cuda.is_available():
        print("--device cuda: torch sees no CUDA GPU", file=sys.stderr)
        return 2

    from zfaccel.backends import why_unavailable

    device = torch.device(args.device)
    missing = {b: why_unavailable(b, device) for b in args.require}
    missing = {b: why for b, why in missing.items() if why is not None}
    for backend, why in missing.items():
        print(f"REQUIRED {backend} cannot run {args.device} tensors: {why}")
    if args.one_config and "triton" in args.backends and why_unavailable("triton", device) is None:
        if args.device == "cuda":
            print("autotuning trimmed to one config:", ", ".join(trim_autotuning()) or "none found")

    counts = {"ok": 0, "skipped": 0, "FAILED": 0}
    for op, what, call in cases(args.device):
        want = call("torch")
        for backend in args.backends:
            reason = why_unavailable(backend, device, op)
            if reason is not None:
                status, detail = "skipped", reason
            else:
                try:
                    got = call(backend)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    detail = mismatch(op, got, want)
                    status = "FAILED" if detail else "ok"
                except Exception:
                    status, detail = "FAILED", traceback.format_exc().rstrip()
            counts[status] += 1
            print(f"{status:<8} {backend:<7} {op:<22} {what}" + (f": {detail}" if detail else ""), flush=True)
    print(f"{counts['ok']} calls ran and matched the reference, {counts['skipped']} skipped, "
          f"{counts['FAILED']} failed")  # fmt: skip
    if counts["FAILED"]:
        return 1
    return 2 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
