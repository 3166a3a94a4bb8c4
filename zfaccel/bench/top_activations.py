"""Benchmark of top_activations: mining throughput per layer and what it costs beyond the forward pass.

The anchor is the forward pass alone up to the layer, on the same batches: the
mining (one fused max/argmax per map and a (channels, k) merge per batch) must
cost little beyond it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch
from torch.utils.data import TensorDataset

from zfaccel.analysis import DeconvNet
from zfaccel.analysis.topk import top_activations
from zfaccel.bench.deconvnet import _model
from zfaccel.bench.results import RateRow
from zfaccel.bench.timing import measure_interleaved


def rows(device: torch.device, quick: bool, roofline_gbs: float, warmup: int, reps: int) -> Iterator[RateRow]:
    model = _model(device)
    n, batch = (16, 8) if quick else (64, 16)
    images = torch.randn(n, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    data = TensorDataset(images)
    dn = DeconvNet(model)
    layers = ("conv5",) if quick else ("conv1", "conv2", "conv3", "conv4", "conv5")
    for name in layers:
        index = dn.plain.resolve(name)

        def forward_only(i=index):
            for lo in range(0, n, batch):
                dn.trace(images[lo : lo + batch].to(device), i, record=False)

        def mine(i=index):
            return top_activations(model, data, i, k=9, batch_size=batch, project=False, show_progress=False)

        # Interleaved rounds, minimum of each: on this VM a single pair of runs swings by +-15%.
        ms = measure_interleaved({"forward": forward_only, "mining": mine}, device, warmup=1, rounds=2 if quick else 4)
        t_forward, t_mine = ms["forward"] / 1e3, ms["mining"] / 1e3
        notes = {"beyond forward": f"{100 * max(0.0, 1 - t_forward / t_mine):.0f}%"}
        if not quick:  # projecting 9 x 256 conv5 activations takes a while on 2 cores
            t0 = time.perf_counter()
            top_activations(model, data, index, k=9, batch_size=batch, show_progress=False)
            notes["with projections"] = f"{n / (time.perf_counter() - t0):.3g} images/s"
        yield RateRow(
            "top_activations", f"zfnet {name}, {n} images, k=9, {dn.plain.channels(index)} maps", "images/s",
            "forward pass alone", n / t_forward, {"mining": n / t_mine}, notes,
        )  # fmt: skip
