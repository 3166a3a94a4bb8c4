"""Benchmark of occlusion sweeps (paper Fig. 7) against Captum's Occlusion.

ZFNet with random weights, one 224 px image, the whole occluder grid. The anchor
is ``captum.attr.Occlusion.attribute`` at its best ``perturbations_per_eval``
(it builds every perturbed input as a full copy plus mask); ours are
``Occlusion.sweep`` with full re-inference and with exact incremental inference.
Each row also gives the MAC ceiling of incremental inference (full MACs / exact
incremental MACs per position, docs/performance.md) and the share of it achieved
(measured speedup over our full re-inference / ceiling).

On a GPU the case is a batch of 64 images in bfloat16, channels_last.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import torch
from torch import nn

from zfaccel.analysis import Occlusion
from zfaccel.analysis.occlusion.factory import make_engine
from zfaccel.analysis.occlusion.grid import grid, positions_of
from zfaccel.analysis.occlusion.macs import count_macs
from zfaccel.bench.anchors import installed, missing_note
from zfaccel.bench.results import RateRow
from zfaccel.bench.timing import measure
from zfaccel.models import zfnet

# (window, stride): the three cases; --quick times window 32 at stride 32 (49 positions,
# not 625; a position costs about what it costs at stride 8; Captum allows no stride above the
# window) so that it takes seconds, Captum included.
CASES = [(16, 4), (32, 8), (64, 16)]
QUICK_CASES = [(32, 32)]


def _model(device: torch.device, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    model = zfnet().eval().to(device, dtype)
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


def _seconds(fn, device: torch.device, reps: int) -> float:
    """Median seconds of fn() over reps runs (the caller warms up)."""
    return measure(fn, device, warmup=0, reps=reps).median_ms / 1e3


def captum_runner(model, images, window: int, stride: int, ppe: int):
    """A call of Captum's Occlusion over the whole grid, targets the clean predictions."""
    from captum.attr import Occlusion as CaptumOcclusion

    occ = CaptumOcclusion(model)
    with torch.no_grad():
        target = model(images).argmax(1)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            occ.attribute(images, sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
                          baselines=0.0, target=target, perturbations_per_eval=ppe)  # fmt: skip

    return run


def captum_rate(model, images, window: int, stride: int, per_eval: list[int], device, reps: int) -> tuple[float, int]:
    """Captum Occlusion's positions/s at its best perturbations_per_eval, and that setting."""
    n = grid(tuple(images.shape[-2:]), (window, window), (stride, stride))
    count = images.shape[0] * n[0] * n[1]
    return max((count / _seconds(captum_runner(model, images, window, stride, ppe), device, reps), ppe)
               for ppe in per_eval)  # fmt: skip


def incremental_macs(model, images, window: int, stride: int) -> float:
    """MACs per position the incremental engine actually does (its batches' crops, not the exact regions)."""
    engine = make_engine(model, "conv5")
    engine.prepare(images, torch.zeros_like(images))
    n = grid(tuple(images.shape[-2:]), (window, window), (stride, stride))
    engine.evaluate(positions_of(images.shape[0], n, (stride, stride), images.device), (window, window))
    return engine.macs_done / engine.positions_done


def rows(device: torch.device, quick: bool, roofline_gbs: float, warmup: int, reps: int) -> Iterator[RateRow]:
    gpu = device.type == "cuda"
    dtype = torch.bfloat16 if gpu else torch.float32
    model = _model(device, dtype)
    n_images = 64 if gpu else 1
    images = torch.randn(n_images, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    if gpu:
        images = images.contiguous(memory_format=torch.channels_last)
    occ = Occlusion(model)
    # Medians of 3 interleaved rounds: single runs on a shared 2-core machine swing 5x (38 to 204 pos/s
    # for the same incremental sweep, load 3.4). A 625-position CPU sweep takes 3-60 s.
    reps = 3
    per_eval = ([256] if gpu else [49]) if quick else ([64, 256, 1024] if gpu else [8, 32, 64])
    for window, stride in QUICK_CASES if quick else CASES:
        n = grid((224, 224), (window, window), (stride, stride))
        count = n_images * n[0] * n[1]
        runs = {
            "incremental": lambda w=window, s=stride: occ.sweep(images, window=w, stride=s),
            "full re-inference": lambda w=window, s=stride: occ.sweep(images, window=w, stride=s, incremental=False),
        }
        runs["incremental"]()  # warm-up: allocator, oneDNN primitives, compiled kernels
        # Captum's best setting first (one run each), then all three in interleaved rounds, so that
        # load from other processes on a shared machine falls on each alike.
        captum = installed("captum")
        best_ppe = (
            captum_rate(model, images, window, stride, per_eval, device, 1)[1]
            if captum and len(per_eval) > 1
            else per_eval[0]
        )
        if captum:
            runs["captum"] = captum_runner(model, images, window, stride, best_ppe)
        times = {name: [] for name in runs}
        for _ in range(reps):
            for name, fn in runs.items():
                times[name].append(_seconds(fn, device, 1))
        rate = {name: count / sorted(t)[len(t) // 2] for name, t in times.items()}
        anchor = rate.pop("captum", None)
        macs = count_macs(model, (224, 224), (window, window), (stride, stride))
        done = incremental_macs(model, images[:1], window, stride)
        speedup = rate["incremental"] / rate["full re-inference"]
        layout = ", bf16 channels_last" if gpu else ", fp32"
        yield RateRow(
            "occlusion",
            f"zfnet {n_images} x 224 px{layout}, window {window} stride {stride} ({count} positions)",
            "positions/s",
            f"Captum Occlusion, perturbations_per_eval={best_ppe} (best of {per_eval})"
            if captum
            else f"Captum Occlusion: {missing_note('captum')}",
            anchor,
            rate,
            {
                "incremental vs full": f"{speedup:.2f}x",
                "MAC ceiling": f"{macs.ceiling:.2f}x ({macs.full / 1e9:.3f} / {macs.incremental / 1e9:.3f} GMAC)",
                "of ceiling": f"{100 * speedup / macs.ceiling:.0f}%",
                "GMAC/position done": f"{done / 1e9:.3f}",
                "load": _load(),
            },
        )


def _load() -> str:
    """The 1-minute load average (other processes share the cores), or "" where unknown."""
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return ""
