"""Feature evolution during training (paper Fig. 4).

After every epoch, for a few fixed channels of each layer, the strongest
activation over a probe set is projected to pixels with that epoch's weights.
The pictures (contrast-normalised, uint8) go to an .npz file rewritten after
each epoch, so an interrupted training keeps every epoch it finished, and
``render_evolution`` draws the figure: one row per feature map, one column per
epoch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from zfaccel.analysis.mosaic import GAP, grid, normalize_projection, resize, stretch
from zfaccel.analysis.topk import top_activations
from zfaccel.atomic import replace_atomically
from zfaccel.checks import check_int
from zfaccel.models.plain import split_model

if TYPE_CHECKING:  # matplotlib loads only to draw: training records pictures without it
    from matplotlib.figure import Figure


class FeatureEvolution:
    """A training callback ``(model, epoch) -> dict`` recording Fig. 4's pictures in ``path`` (.npz).

    Args:
        probe: a Dataset of (image, ...) items normalised for the model (a few hundred images).
        path: the .npz to write after each epoch.
        layers: layer names to follow (default: every convolution).
        channels: feature maps followed per layer, picked once with ``seed`` (the paper shows 6).
    """

    def __init__(
        self,
        probe,
        path: str | os.PathLike,
        layers: tuple[str, ...] | None = None,
        channels: int = 4,
        seed: int = 0,
    ) -> None:
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        self.probe, self.path, self.layers, self.count, self.seed = probe, Path(path), layers, channels, seed
        self.pictures: dict[str, list[np.ndarray]] = {}
        self.values: dict[str, list[list[float]]] = {}
        self.chosen: dict[str, list[int]] = {}
        self.epochs: list[int] = []

    def _choose(self, model: nn.Module) -> None:
        plain = split_model(model)
        layers = self.layers or tuple(n for n in plain.names if n.startswith("conv"))
        gen = torch.Generator().manual_seed(self.seed)
        for name in layers:
            count = plain.channels(plain.resolve(name))
            pick = torch.randperm(count, generator=gen)[: self.count].sort().values
            self.chosen[name] = pick.tolist()

    def __call__(self, model: nn.Module, epoch: int) -> dict:
        if not self.chosen:
            self._choose(model)
        summary = {}
        for name, channels in self.chosen.items():
            top = top_activations(model, self.probe, name, k=1, channels=channels, show_progress=False)
            proj = normalize_projection(top.projections[:, 0])  # (channels, 3, h, w) in [0, 1]
            self.pictures.setdefault(name, []).append((proj * 255).round().byte().numpy())
            self.values.setdefault(name, []).append(top.values[:, 0].tolist())
            summary[name] = [round(v, 4) for v in top.values[:, 0].tolist()]
        self.epochs.append(epoch)
        self._write()
        return {"top_activation": summary}

    def restore(self, last_epoch: int) -> list[int]:
        """Read back the epochs up to ``last_epoch`` from ``path`` (a resumed training), dropping any
        later one (recorded before an interruption lost its checkpoint). Returns the epochs kept."""
        if not self.path.is_file():
            return []
        with np.load(self.path) as data:
            epochs = data["epochs"].tolist()
            keep = [i for i, e in enumerate(epochs) if e <= last_epoch]
            names = sorted({k.split("/")[0] for k in data.files if "/" in k})
            self.chosen = {n: data[f"{n}/channels"].tolist() for n in names}
            self.pictures = {n: list(data[f"{n}/pictures"][keep]) for n in names}
            self.values = {n: data[f"{n}/values"][keep].tolist() for n in names}
        self.epochs = [epochs[i] for i in keep]
        return self.epochs

    def _write(self) -> None:
        arrays = {"epochs": np.array(self.epochs)}
        for name in self.chosen:
            arrays[f"{name}/pictures"] = np.stack(self.pictures[name])  # (epochs, channels, 3, h, w) uint8
            arrays[f"{name}/values"] = np.array(self.values[name], dtype=np.float32)
            arrays[f"{name}/channels"] = np.array(self.chosen[name])
        replace_atomically(self.path, lambda tmp: np.savez_compressed(tmp, **arrays))


def render_evolution(record: str | os.PathLike, path: str | os.PathLike | None = None, *, tile: int = 48) -> Figure:
    """Fig. 4 from a FeatureEvolution .npz: a row per followed feature map, a column per epoch, each
    picture stretched to its own range and ``tile`` pixels square. Returns the Figure (matplotlib);
    writes it as a PNG to ``path`` when given."""
    from zfaccel.analysis.plotting import FONT, PAD, Label, line_px, mosaic_figure, save, text_px

    check_int(tile, "tile")
    with np.load(record) as data:
        epochs = data["epochs"].tolist()
        layers = sorted({k.split("/")[0] for k in data.files if "/" in k}, key=lambda n: (len(n), n))
        rows = []
        for name in layers:
            pictures = torch.from_numpy(data[f"{name}/pictures"]).float() / 255  # (E, C, 3, h, w)
            for c, channel in enumerate(data[f"{name}/channels"].tolist()):
                rows.append((f"{name} map {channel}", resize(stretch(pictures[:, c]), tile)))
    if not rows or not epochs:
        raise ValueError(f"{str(record)!r} holds no recorded epoch")
    strips = [grid(tiles, len(epochs)) for _, tiles in rows]
    label_w = max(text_px(label, FONT) for label, _ in rows) + 2 * PAD
    band = line_px(FONT) + PAD
    canvas = np.full((band + len(strips) * (tile + 2 * GAP) + PAD, label_w + strips[0].shape[1] + PAD, 3), 255,
                     np.uint8)  # fmt: skip
    labels = [Label(PAD, band - PAD, "epoch:", va="bottom")]
    labels += [Label(label_w + e * (tile + GAP) + tile / 2, band - PAD, str(epoch), ha="center", va="bottom")
               for e, epoch in enumerate(epochs)]  # fmt: skip
    for i, ((label, _), strip) in enumerate(zip(rows, strips, strict=True)):
        y = band + i * (tile + 2 * GAP)
        canvas[y : y + tile, label_w : label_w + strip.shape[1]] = strip
        labels.append(Label(PAD, y + tile / 2, label, va="center"))
    title = ("Feature evolution during training (Fig. 4): each map's strongest activation over the probe set, "
             "projected with the weights after each epoch")  # fmt: skip
    fig, _ = mosaic_figure(canvas, labels, title)
    return save(fig, path)
