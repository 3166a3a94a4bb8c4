"""Benchmark of dataset sweeps: ``zfaccel sweep``'s work end to end against the same sweep in memory.

The anchor is ``Occlusion.sweep`` on the same images already decoded, preprocessed and in
memory, in one call: what the dataset sweep adds (listing, decoding PNG files, the zarr
store, bookkeeping, resumability) is the difference. Cases: the bundled model on its
shapes data (64 px, window 16 stride 4) and ZFNet with random weights on 224 px images
(window 32 stride 8). Also measured, each in a fresh process: the peak resident memory
of a dataset sweep of 200 and of 2,000 images, which must not grow with the dataset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zfaccel.analysis.occlusion import Occlusion, sweep_dataset
from zfaccel.bench.results import RateRow
from zfaccel.bench.timing import measure
from zfaccel.demo.export import write_image_folder
from zfaccel.models import load_images, pretrained_small, zfnet

ROUNDS = 3  # full mode's interleaved rounds of ours and the anchor; medians (a shared 2-core machine swings 2x)
MEMORY_SIZES = (200, 2000)


def _noise_folder(folder: Path, count: int, size: int = 256) -> Path:
    """``count`` random RGB PNGs of ``size`` px (the model's preprocessing resizes and crops them)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    return folder


def _interleaved(runs: dict, count: int, device: torch.device, rounds: int) -> dict[str, float]:
    """images/s of each run: the median of ``rounds`` interleaved rounds (A B A B ...)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            times[name].append(measure(fn, device, warmup=0, reps=1).median_ms / 1e3)
    return {name: count / sorted(t)[len(t) // 2] for name, t in times.items()}


def _case(model, folder: Path, window: int, stride: int, device: torch.device, workdir: Path,
          quick: bool) -> dict[str, float]:  # fmt: skip
    files = sorted(p for p in folder.rglob("*.png"))
    images = load_images(files, model).to(device)
    occ = Occlusion(model)
    store = workdir / "bench.zarr"
    runs = {
        "in memory": lambda: occ.sweep(images, window=window, stride=stride),
        "zfaccel sweep": lambda: sweep_dataset(model, folder, store, window=window, stride=stride, overwrite=True),
    }
    if not quick:  # decoding in a worker process: on 2 cores it competes with the model's threads
        runs["zfaccel sweep, 1 worker"] = lambda: sweep_dataset(model, folder, store, window=window, stride=stride,
                                                                overwrite=True, workers=1)  # fmt: skip
    runs["in memory"]()  # warm-up: allocator, oneDNN primitives
    return _interleaved(runs, len(files), device, 1 if quick else ROUNDS)


_RSS_SCRIPT = """
import json, resource, sys
import zfaccel
store = zfaccel.sweep_dataset(zfaccel.models.pretrained_small(), sys.argv[1], sys.argv[2], window=16, stride=4)
print(json.dumps({"done": store.counts()[1], "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_rss_mb(folder: Path, store: Path) -> float:
    """The peak resident memory (MB) of a fresh process sweeping ``folder`` into ``store``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    command = [sys.executable, "-c", _RSS_SCRIPT, str(folder), str(store)]
    # In the store's folder: "-c" puts the current folder first on sys.path, which in a checkout would
    # import its zfaccel rather than the installed one.
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env, cwd=store.parent)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["max_rss_mb"])


def rows(device: torch.device, quick: bool, roofline_gbs: float, warmup: int, reps: int) -> Iterator[RateRow]:
    with tempfile.TemporaryDirectory(prefix="zfaccel-bench-sweep-") as tmp:
        work = Path(tmp)
        n = 40 if quick else 200
        small = pretrained_small().to(device)
        data = write_image_folder(work / f"shapes{n}", n)
        rate = _case(small, data, 16, 4, device, work, quick)
        anchor = rate.pop("in memory")
        notes = {"overhead": f"{100 * (anchor / rate['zfaccel sweep'] - 1):.1f}%"}
        if not quick and device.type == "cpu":
            sizes = {}
            for count in MEMORY_SIZES:
                folder = data if count == n else write_image_folder(work / f"shapes{count}", count)
                sizes[count] = peak_rss_mb(folder, work / f"rss{count}.zarr")
            a, b = MEMORY_SIZES
            notes["peak RSS"] = (
                f"{sizes[a]:.0f} MB ({a} images), {sizes[b]:.0f} MB ({b}): +{sizes[b] - sizes[a]:.0f} MB"
            )
        yield RateRow("sweep", f"bundled model, {n} PNG images 64 px, window 16 stride 4 (169 positions)", "images/s",
                      "Occlusion.sweep on the same images in memory", anchor, rate, notes)  # fmt: skip

        torch.manual_seed(0)
        big = zfnet().eval().to(device)
        count = 2 if quick else (64 if device.type == "cuda" else 8)
        folder = _noise_folder(work / "noise", count)
        rate = _case(big, folder, 32, 8, device, work, quick)
        anchor = rate.pop("in memory")
        yield RateRow("sweep", f"zfnet (random weights), {count} PNG images 256 -> 224 px, window 32 stride 8 "
                      "(625 positions)", "images/s", "Occlusion.sweep on the same images in memory", anchor, rate,
                      {"overhead": f"{100 * (anchor / rate['zfaccel sweep'] - 1):.1f}%"})  # fmt: skip
