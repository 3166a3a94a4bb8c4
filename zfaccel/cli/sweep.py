"""``zfaccel sweep``: occlusion maps (paper Fig. 7) of every image of a dataset, into a resumable zarr store.

Rerunning the same command resumes where it stopped; under torchrun
(``torchrun --nproc-per-node N -m zfaccel sweep ...``) every process takes its share
of the chunks of the same store.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

from zfaccel.cli.common import (
    add_approximation_arguments,
    add_geometry_arguments,
    add_model_argument,
    approximation,
    baseline_colour,
    geometry,
    layer_argument,
    load_model,
    parse_target,
)


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="occlusion maps of a whole dataset into a resumable zarr store (Fig. 7)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("data", type=Path, metavar="DATA",
                   help="a folder of images (searched recursively; one subfolder per class gives labels) or a "
                        "text file with one image path per line")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, metavar="STORE", help="the zarr store to write (or resume)")
    add_model_argument(p)
    add_geometry_arguments(p)
    add_approximation_arguments(p)
    p.add_argument("--target", default="predicted",
                   help="whose probability is mapped: predicted (each image's prediction; default), label (its "
                        "class subfolder), or a class number or name")  # fmt: skip
    p.add_argument("--chunk", type=int, default=64, help="images per chunk of the store (default 64)")
    p.add_argument("--batch-size", type=int, help="occluder positions per batch (default: sized from free memory)")
    p.add_argument("--workers", type=int, default=0, help="processes decoding images (default 0: this one)")
    p.add_argument("--overwrite", action="store_true", help="start afresh, replacing what STORE holds")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image (default: record it)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the work and its estimated time (from a short calibration); write nothing")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _device(args: argparse.Namespace) -> str:
    """The device this process runs on: under torchrun with CUDA, the GPU LOCAL_RANK names."""
    if args.device.startswith("cuda") and "LOCAL_RANK" in os.environ and args.device == "cuda":
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return args.device


def _start_distributed(device: str) -> bool:
    """Join torchrun's process group (nccl for GPUs, gloo for CPUs) when started by it."""
    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return True


def run(args: argparse.Namespace) -> int:
    import torch

    from zfaccel.analysis.occlusion.dataset_sweep import estimate, sweep_dataset
    from zfaccel.models import class_names
    from zfaccel.models.preprocessing import preprocessing_for

    for name, low in (("chunk", 1), ("workers", 0)):
        if getattr(args, name) < low:
            raise ValueError(f"--{name} must be at least {low}, got {getattr(args, name)}")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.data.exists():
        raise FileNotFoundError(f"DATA {str(args.data)!r} does not exist")
    device = _device(args)
    model = load_model(args.model, device, args.weights)
    window, stride = geometry(args)
    settings = dict(
        window=window,
        stride=stride,
        baseline=_baseline(args.baseline, model),
        target=parse_target(args.target, class_names(model), ("predicted", "label")),
        feature_layer=layer_argument(args.feature_layer),
        chunk=args.chunk,
        preprocessing=preprocessing_for(model),
        approximate=approximation(args),
    )
    if args.dry_run:
        print(_describe(estimate(model, args.data, args.out, batch_size=args.batch_size, backend=args.backend,
                                 **settings), args))  # fmt: skip
        return 0
    distributed = _start_distributed(device)
    rank = torch.distributed.get_rank() if distributed else 0
    start = time.perf_counter()
    try:
        store = sweep_dataset(model, args.data, args.out, batch_size=args.batch_size, workers=args.workers,
                              strict=args.strict, overwrite=args.overwrite, backend=args.backend,
                              show_progress=not args.quiet, **settings)  # fmt: skip
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    if rank == 0:
        _report(store, time.perf_counter() - start)
    return 0


def _baseline(spec: str, model) -> list[float] | None:
    """--baseline in the model's normalised units: None for 'mean', else the colour as 3 floats."""
    from zfaccel.models.preprocessing import preprocessing_for

    colour = baseline_colour(spec, preprocessing_for(model))
    return None if colour is None else [round(float(v), 6) for v in colour]


def _describe(e, args: argparse.Namespace) -> str:
    n_h, n_w = e.grid
    macs = "n/a (not a plain CNN)"
    if e.macs_incremental is not None:
        kind = "exact incremental" if args.tau == 1 else f"incremental at tau {args.tau:g}"
        macs = (f"{e.macs_incremental / 1e6:.1f} M {kind}, {e.macs_full / 1e6:.1f} M full re-inference "
                f"({e.macs_full / e.macs_incremental:.2f}x less)")  # fmt: skip
    todo = f"{e.pending} of them still to do in {args.out}" if e.pending != e.images else "none done yet"
    return "\n".join([
        f"zfaccel sweep --dry-run: {e.images} images ({todo}), {n_h} x {n_w} = {e.positions_per_image} occluder "
        f"positions each",
        f"MACs per position: {macs}",
        f"calibration on this device: {e.positions_per_second:.0f} positions/s, so about "
        f"{datetime.timedelta(seconds=round(e.seconds))} for {e.pending} images (decoding and writing add a little)",
        "nothing was written",
    ])  # fmt: skip


def _report(store, seconds: float) -> None:
    from zfaccel.analysis.occlusion.store import DONE, FAILED, PENDING

    counts = store.counts()
    print(f"zfaccel sweep: {counts[DONE]} images done, {counts[FAILED]} failed, {counts[PENDING]} pending in "
          f"{store.location} ({seconds:.0f} s this run)")  # fmt: skip
    failures = store.failures()
    for f in failures[:5]:
        print(f"  failed: {f.path}: {f.error}", file=sys.stderr)
    if len(failures) > 5:
        print(f"  ... and {len(failures) - 5} more (zfaccel.open_sweep(STORE).failures())", file=sys.stderr)
    print(f"zfaccel sweep-report {store.location} --out DIR draws what it found")
