"""Benchmark of DeconvNet projections against Captum's NeuronDeconvolution, one target per call.

The anchor is what a Captum user writes for the paper's figures: one
``attribute`` call (a forward and a deconvnet-rule backward) per activation.
Ours projects every (image, channel) target of a call together, one forward
per image, each on its receptive field only. Each row times ours and Captum in
interleaved rounds and keeps the fastest of each. Also measured: the same
projections on whole maps (``crop=False``), per layer, to show what cropping buys.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from zfaccel.analysis import DeconvNet
from zfaccel.bench.anchors import installed, missing_note
from zfaccel.bench.results import RateRow
from zfaccel.bench.timing import measure, measure_interleaved
from zfaccel.models import zfnet


def _model(device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return zfnet().eval().to(device)


def _rate(fn, count: int, device: torch.device, reps: int) -> float:
    """count / median seconds of fn() over reps runs, after one warm-up."""
    return count / (measure(fn, device, warmup=1, reps=reps).median_ms / 1e3)


def captum_run(model: nn.Module, images: torch.Tensor, layer: int, targets: list[tuple]):
    """Captum's NeuronDeconvolution, one attribute() call per (image, channel, row, col) target: the call."""
    from captum.attr import NeuronDeconvolution

    plain = copy.deepcopy(model)
    for m in plain.modules():  # Captum's ReLU hooks refuse in-place ReLUs
        if isinstance(m, nn.ReLU):
            m.inplace = False
    nd = NeuronDeconvolution(plain, plain.features[layer])

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for b, c, r, col in targets:
                nd.attribute(images[b : b + 1], neuron_selector=(c, r, col))

    return run


def captum_rate(model: nn.Module, images: torch.Tensor, layer: int, targets: list[tuple], device, reps: int) -> float:
    """Captum's projections/s: :func:`captum_run`'s median over ``reps`` runs after one warm-up."""
    return _rate(captum_run(model, images, layer, targets), len(targets), device, reps)


def _targets(dn: DeconvNet, images: torch.Tensor, layer: int, channels: list[int]) -> list[tuple]:
    """(image, channel, row, col) of each map's strongest activation, the targets of a top-9 figure."""
    act = dn.trace(images, layer, record=False)[0].output
    flat = act[:, channels].flatten(2).argmax(2)
    w = act.shape[3]
    n = len(images)
    return [(b, c, int(flat[b, j]) // w, int(flat[b, j]) % w) for b in range(n) for j, c in enumerate(channels)]


def _captum_row(model, images, name: str, channels: list[int], device, n_captum: int, whole: bool) -> RateRow:
    """Ours (batched, cropped; with ``whole`` also on whole maps) against Captum on a sample of the
    same maxima (``n_captum`` targets), one row: the fastest of 3 interleaved rounds of each, so that
    a slow spell of the machine falls on both."""
    dn = DeconvNet(model)
    layer = dn.plain.resolve(name)
    count = len(images) * len(channels)
    fns = {"batched + cropped": lambda: dn.project(images, layer, channels)}
    if whole:
        full = DeconvNet(model, crop=False)
        fns["batched, whole maps"] = lambda: full.project(images, layer, channels)
    targets = _targets(dn, images, layer, channels)[:n_captum]
    anchor = "Captum NeuronDeconvolution, 1 target per call"
    captum = installed("captum")
    if captum:
        fns["captum"] = captum_run(model, images, layer, targets)
    ms = measure_interleaved(fns, device, warmup=1, rounds=3)
    reference = len(targets) / (ms.pop("captum") / 1e3) if captum else None
    return RateRow(
        "deconvnet", f"zfnet {name} max, {len(images)} images x {len(channels)} channels, 224 px", "projections/s",
        anchor if captum else f"{anchor}: {missing_note('captum')}", reference,
        {k: count / (v / 1e3) for k, v in ms.items()},
    )  # fmt: skip


def rows(device: torch.device, quick: bool, roofline_gbs: float, warmup: int, reps: int) -> Iterator[RateRow]:
    model = _model(device)
    # All 256 conv5 maps of each image, as top-9 figures project them; Captum on a sample of the targets.
    n_images, n_channels, n_captum = (1, 32, 4) if quick else (2, 256, 12)
    images = torch.randn(n_images, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    yield _captum_row(model, images, "conv5", list(range(n_channels)), device, n_captum, whole=True)
    if quick:
        return
    # The smaller calls a user makes: 4 images x 16 maps and 1 image x 64 at conv5, 4 x 16 at conv2.
    four = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(2)).to(device)
    for name, imgs, chans in (("conv5", four, 16), ("conv5", images[:1], 64), ("conv2", four, 16)):
        yield _captum_row(model, imgs, name, list(range(chans)), device, 16, whole=False)
    # Projections/s against the number of targets per call (conv5, one image, its first N maps).
    dn = DeconvNet(model)
    whole = DeconvNet(model, crop=False)
    layer = dn.plain.resolve("conv5")
    channels = list(range(n_channels))
    by_batch = {f"{n} per call": _rate(lambda n=n: dn.project(images[:1], layer, list(range(n))), n, device, 3)
                for n in (1, 4, 16, 64, 256)}  # fmt: skip
    yield RateRow("deconvnet batch size", "zfnet conv5 max, 1 image", "projections/s", "1 target per call",
                  by_batch["1 per call"], by_batch)  # fmt: skip
    for name in ("conv1", "conv2", "conv3", "conv4"):  # what cropping buys, layer by layer
        index = dn.plain.resolve(name)
        chans = channels[: dn.plain.channels(index)]  # conv1 has 96 maps
        count = n_images * len(chans)
        cropped = _rate(lambda i=index, c=chans: dn.project(images, i, c), count, device, 1)
        full = _rate(lambda i=index, c=chans: whole.project(images, i, c), count, device, 1)
        yield RateRow("deconvnet crop gain", f"zfnet {name} max, {count} projections", "projections/s",
                      "ours on whole maps (crop=False)", full, {"cropped": cropped})  # fmt: skip
