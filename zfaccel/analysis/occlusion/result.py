"""What an occlusion sweep returns (paper Fig. 7): one map per quantity over the occluder grid."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from zfaccel.atomic import replace_atomically

if TYPE_CHECKING:  # for the annotations only: matplotlib loads when a figure is drawn
    from matplotlib.figure import Figure


@dataclass(repr=False)
class OcclusionResult:
    """Maps over the occluder grid of B images; position (i, j) is the occluder whose top-left
    corner is at (i * stride[0], j * stride[1]).

    Attributes:
        images: (B, 3, H, W) float32, the model's (normalised) inputs, on the CPU.
        prob: (B, nH, nW) float32, the softmax probability of ``target`` with the occluder there (Fig. 7d).
        label: (B, nH, nW) int64, the most probable class with the occluder there (Fig. 7e).
        feature: (B, nH, nW) float32, the total activation of map ``feature_channel`` of
            ``feature_layer`` with the occluder there (Fig. 7b).
        feature_channel: (B,) int64, the map of ``feature_layer`` strongest on the unoccluded image.
        target: (B,) int64, the class whose probability ``prob`` holds.
        clean_prob: (B,) float32, the probability of ``target`` without occluder.
        clean_label: (B,) int64, the most probable class without occluder.
        clean_feature: (B,) float32, the total activation of ``feature_channel`` without occluder.
        window: the occluder's (height, width) in pixels.
        stride: the step between occluder positions (rows, columns).
        feature_layer: the layer ``feature`` comes from, as the DeconvNet names it.
        true_label: (B,) int64, the images' true classes when the sweep was told them, else None.
        clean_label_prob: (B,) float32, the probability of ``clean_label`` without occluder (None
            in results made before it was recorded).
        approximation: the ``zfaccel.Approximation`` the maps were computed with (None: exact).
        macs: for an approximation on a plain CNN, the multiply-accumulates it spent, and those of
            exact incremental inference and of full re-inference of the same grid
            (``{"spent", "exact", "full"}``); else None.
    """

    images: torch.Tensor
    prob: torch.Tensor
    label: torch.Tensor
    feature: torch.Tensor
    feature_channel: torch.Tensor
    target: torch.Tensor
    clean_prob: torch.Tensor
    clean_label: torch.Tensor
    clean_feature: torch.Tensor
    window: tuple[int, int]
    stride: tuple[int, int]
    feature_layer: str | int
    true_label: torch.Tensor | None = None
    clean_label_prob: torch.Tensor | None = None
    approximation: object | None = None
    macs: dict[str, float] | None = None

    def __repr__(self) -> str:
        b, n_h, n_w = self.prob.shape
        return (f"OcclusionResult(images={b}, grid={n_h}x{n_w}, window={self.window[0]}x{self.window[1]}, "
                f"stride={self.stride[0]}x{self.stride[1]}, feature_layer={self.feature_layer!r}, "
                f"target={_short(self.target)}, clean_prob={_short(self.clean_prob)})")  # fmt: skip

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(nH, nW): occluder positions down and across."""
        return int(self.prob.shape[1]), int(self.prob.shape[2])

    # Pictures (zfaccel.analysis.occlusion.figures, imported on first use: importing zfaccel loads no
    # matplotlib): keyword arguments class_names, preprocessing (undoes the normalisation; default min-max
    # per image), size (panel pixels); each returns a matplotlib Figure and writes a PNG when given a path.

    def render_feature(self, path: str | os.PathLike | None = None, index: int = 0, **kwargs) -> Figure:
        """Fig. 7b of image ``index``: the feature map's total activation over the image."""
        from zfaccel.analysis.occlusion import figures

        return figures.render_feature(self, path, index, **kwargs)

    def render_prob(self, path: str | os.PathLike | None = None, index: int = 0, **kwargs) -> Figure:
        """Fig. 7d of image ``index``: the target's probability over the image."""
        from zfaccel.analysis.occlusion import figures

        return figures.render_prob(self, path, index, **kwargs)

    def render_label(self, path: str | os.PathLike | None = None, index: int = 0, **kwargs) -> Figure:
        """Fig. 7e of image ``index``: the most probable class per position, with a legend."""
        from zfaccel.analysis.occlusion import figures

        return figures.render_label(self, path, index, **kwargs)

    def render_panel(self, path: str | os.PathLike | None = None, index: int = 0, **kwargs) -> Figure:
        """Fig. 7 of image ``index`` in one figure: the image, (b), (d), (e), and (c) when given ``model=``
        (and ``top=``, a TopActivations of the feature layer); see figures.render_panel."""
        from zfaccel.analysis.occlusion import figures

        return figures.render_panel(self, path, index, **kwargs)

    def save_npz(self, path: str | os.PathLike) -> Path:
        """Every array (numpy, same names) plus window, stride and feature_layer, in one .npz written to a
        temporary file first and renamed, so that an interrupted run leaves no half file."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"{str(path)!r} must end with .npz")
        names = ("images", "prob", "label", "feature", "feature_channel", "target", "clean_prob", "clean_label",
                 "clean_feature", "true_label", "clean_label_prob")  # fmt: skip
        arrays = {n: getattr(self, n).detach().cpu().numpy() for n in names if getattr(self, n) is not None}
        arrays.update(window=np.array(self.window), stride=np.array(self.stride),
                      feature_layer=np.array(str(self.feature_layer)))  # fmt: skip
        return replace_atomically(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def _short(values: torch.Tensor, shown: int = 4) -> str:
    """The first few values of a (B,) tensor, for a one-line repr: [3, 5, ...] or [0.912, 0.04]."""
    items = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in values[:shown].tolist()]
    return "[" + ", ".join(items) + (", ..." if len(values) > shown else "") + "]"
