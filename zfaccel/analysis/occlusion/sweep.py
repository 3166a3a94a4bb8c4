"""Occlusion sensitivity (Zeiler & Fergus 2014, section 4.2, Fig. 7): a grey square slides over
the image; at each position, the probability of the true class, the most probable label and the
total activation of the feature map strongest on the unoccluded image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from zfaccel.analysis.occlusion.approximate import Approximation, drill_down
from zfaccel.analysis.occlusion.captum import Inputs, occlusion_attribute
from zfaccel.analysis.occlusion.factory import make_engine
from zfaccel.analysis.occlusion.grid import default_geometry, grid, positions_of
from zfaccel.analysis.occlusion.macs import MacCounter
from zfaccel.analysis.occlusion.result import OcclusionResult
from zfaccel.backends import check_name
from zfaccel.checks import check_classes, check_images


def baseline_images(baseline: object, images: torch.Tensor) -> torch.Tensor:
    """The occluder's content as (B, C, H, W) in images' dtype: None (0, the data's mean grey in the
    normalised input space), a float, a per-channel colour (C,), or a (C, H, W) / (B, C, H, W) image."""
    if baseline is None:
        baseline = 0.0
    if isinstance(baseline, bool):
        raise TypeError("baseline must be a float, a per-channel colour or an image, got a bool")
    if isinstance(baseline, int | float):
        return torch.full_like(images, float(baseline))
    if isinstance(baseline, Sequence) and not isinstance(baseline, str):
        baseline = torch.tensor([float(v) for v in baseline])
    if not isinstance(baseline, torch.Tensor):
        raise TypeError(f"baseline must be a float, a per-channel colour or an image, got {type(baseline).__name__}")
    b = baseline.to(images.device, images.dtype)
    c = images.shape[1]
    if b.dim() == 0:
        b = b.view(1, 1, 1, 1)
    elif b.dim() == 1 and b.numel() == c:
        b = b.view(1, c, 1, 1)
    elif b.dim() == 3:
        b = b.unsqueeze(0)
    try:
        return b.expand_as(images).contiguous()
    except RuntimeError:
        raise ValueError(
            f"baseline of shape {tuple(baseline.shape)} is neither a float, a colour of {c} values nor an "
            f"image of shape {tuple(images.shape[1:])} or {tuple(images.shape)}"
        ) from None


def check_target(target: object, clean_label: torch.Tensor, classes: int, name: str = "target") -> torch.Tensor:
    """One class per image as (B,) int64 (None: the clean predictions); ValueError/TypeError naming ``name``."""
    b = clean_label.shape[0]
    if target is None or (isinstance(target, str) and target == "predicted"):
        return clean_label.clone()
    if isinstance(target, bool):
        raise TypeError(f"{name} must be an int, a list of ints or an int tensor, got a bool")
    if isinstance(target, int):
        target = [target] * b
    if not isinstance(target, torch.Tensor | Sequence) or isinstance(target, str | bytes):
        raise TypeError(f"{name} must be an int, a list of ints or an int tensor, got {target!r}")
    return check_classes(target, b, name, classes)


class Occlusion:
    """Occlusion sensitivity maps of a CNN (paper Fig. 7), by exact incremental inference.

    Args:
        model: a plain CNN (ZFNet, torchvision-style AlexNet / VGG, the demo model, an
            nn.Sequential of a features Sequential and a head) for the fast incremental path;
            any other model runs by full re-inference, with a warning. Weights are read, never
            changed; the model runs in eval mode.
        backend: the kernels' backend ("auto", "triton", "native", "torch"): occluded inputs and
            crops (``zfaccel.occlusion_batch``) and the fused ReLU + switch pooling.

    Example:
        >>> occ = zfaccel.Occlusion(zfaccel.models.zfnet())
        >>> res = occ.sweep(torch.randn(1, 3, 224, 224), window=32, stride=8)   # 25 x 25 positions
        >>> res.prob.shape
        torch.Size([1, 25, 25])
    """

    # The grid is evaluated in chunks of this many positions: bounds the (P, K) logits held at once.
    CHUNK = 4096

    def __init__(self, model: nn.Module, *, backend: str = "auto") -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.backend = check_name(backend)

    def sweep(
        self,
        images: torch.Tensor,
        target: int | Sequence[int] | torch.Tensor | str | None = None,
        window: int | tuple[int, int] | None = None,
        stride: int | tuple[int, int] | None = None,
        baseline: float | Sequence[float] | torch.Tensor | None = None,
        feature_layer: str | int = "conv5",
        batch_size: int | None = None,
        max_memory: int | None = None,
        incremental: bool = True,
        show_progress: bool = False,
        *,
        labels: Sequence[int] | torch.Tensor | None = None,
        approximate: Approximation | None = None,
    ) -> OcclusionResult:
        """Slide the occluder over each image and record the paper's three maps.

        Args:
            images: (B, 3, H, W) float, the model's (normalised) inputs, on the model's device and dtype.
            target: one class per image (list or int tensor), "predicted" (each image's unoccluded
                prediction) or "label" (the true ``labels``); default: "label" when ``labels`` are
                given, else "predicted".
            window: the occluder's (height, width) in pixels, or one int; at most the image's size.
                Default: the power of two nearest a fifth of the shorter side (32 at 224 px, the
                paper's; 16 at 64 px).
            stride: the step between occluder positions (rows, cols), or one int; default a quarter
                of the window (8 at 224 px).
            baseline: what the occluder shows: a float, a per-channel colour (3,), or an image
                (3, H, W) / (B, 3, H, W); default 0, the data's mean grey in normalised inputs.
            feature_layer: the layer whose strongest map is totalled (a name like "conv5" or an index
                into model.features).
            batch_size: positions per batch (default: what ``max_memory`` allows, capped for speed).
            max_memory: bytes a batch may take (default: a quarter of the free memory).
            incremental: False runs full re-inference of every occluded image (same numbers, slower).
            show_progress: a tqdm bar over positions.
            labels: the images' true classes (B,), when known: the default target, kept on the
                result so that its figures say "true: circle, predicted: diamond" where they differ.
            approximate: compute less than the exact maps (``zfaccel.Approximation``: the projective-field
                threshold tau and adaptive drill-down; ``Approximation.default()`` kept mean SSIM >= 0.9
                in the benchmark); the result's ``macs`` says what it spent against the exact and full
                counts. Default: exact.

        Returns:
            :class:`OcclusionResult` with (B, nH, nW) maps, positions at corners 0, s, 2s, ... while
            the window lies wholly inside the image, row-major. The feature map is the one with the
            largest activation on the unoccluded image.
        """
        if not isinstance(show_progress, bool):
            raise TypeError(f"show_progress must be a bool, got {show_progress!r}")
        if approximate is not None and not isinstance(approximate, Approximation):
            raise TypeError(f"approximate must be a zfaccel.Approximation or None, got {type(approximate).__name__}")
        approx = approximate or Approximation()
        engine = make_engine(self.model, feature_layer, incremental=incremental, batch_size=batch_size,
                             max_memory=max_memory, backend=self.backend, tau=approx.tau)  # fmt: skip
        first = next((m for m in self.model.modules() if isinstance(m, nn.Conv2d)), None)
        images = check_images(images, first.in_channels if first is not None else None)
        window_hw, stride_hw = default_geometry(tuple(images.shape[-2:]), window, stride)
        param = next(self.model.parameters(), None)
        if param is not None and (images.dtype != param.dtype or images.device != param.device):
            raise TypeError(f"images must have the model's dtype and device ({param.dtype} on {param.device}), "
                            f"got {images.dtype} on {images.device}")  # fmt: skip
        size = tuple(images.shape[-2:])
        if window_hw[0] > size[0] or window_hw[1] > size[1]:
            raise ValueError(f"window {window_hw} is larger than the images ({size[0]} x {size[1]})")
        base = baseline_images(baseline, images)
        engine.prepare(images, base)
        b = images.shape[0]
        clean_label = engine.clean_logits.argmax(1).cpu()
        classes = engine.clean_logits.shape[1]
        true_label = None if labels is None else check_target(labels, clean_label, classes, "labels")
        wants_label = isinstance(target, str) and target == "label"
        if wants_label and true_label is None:
            raise ValueError("target 'label' needs the true labels: pass labels=")
        if target is None or wants_label:
            target = true_label  # None when unknown: the prediction
        tgt = check_target(target, clean_label, classes)
        channel = engine.clean_peaks.argmax(1).cpu()
        n = grid(size, window_hw, stride_hw)
        clean_probs = torch.softmax(engine.clean_logits.cpu(), 1)
        ar = torch.arange(b)
        with tqdm(desc="occlusion", unit="pos", disable=not show_progress) as bar:

            def evaluate(positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
                bar.total = (bar.total or 0) + len(positions)
                return self._evaluate(engine, positions, window_hw, tgt, channel, bar.update)

            if approx.drill_down is None:
                evaluated = [positions_of(b, n, stride_hw, images.device)]
                prob, label, feature = (t.view(b, *n) for t in evaluate(evaluated[0]))
            else:
                prob, label, feature, evaluated = drill_down(evaluate, b, size, window_hw, stride_hw, approx,
                                                             clean_probs[ar, tgt], images.device)  # fmt: skip
        macs = None if approx.exact else _mac_report(self.model, size, window_hw, stride_hw, approx, evaluated, b)
        clean_feats = engine.clean_features.cpu()
        return OcclusionResult(
            images=images.detach().float().cpu(),
            prob=prob,
            label=label,
            feature=feature,
            feature_channel=channel,
            target=tgt,
            clean_prob=clean_probs[ar, tgt],
            clean_label=clean_label,
            clean_feature=clean_feats[ar, channel],
            window=window_hw,
            stride=stride_hw,
            feature_layer=feature_layer,
            true_label=true_label,
            clean_label_prob=clean_probs[ar, clean_label],
            approximation=None if approx.exact else approx,
            macs=macs,
        )

    def _evaluate(self, engine, positions: torch.Tensor, window, target, channel, progress):
        """(P, 3) positions -> the target's probability, the most probable class and the feature map's
        total, each (P,) on the CPU, in chunks of CHUNK positions (bounds the (P, K) logits held)."""
        img_of = positions[:, 0].cpu()
        prob = torch.empty(len(positions))
        label = torch.empty(len(positions), dtype=torch.int64)
        feature = torch.empty(len(positions))
        for i in range(0, len(positions), self.CHUNK):
            j = min(len(positions), i + self.CHUNK)
            logits, feats = engine.evaluate(positions[i:j], window, progress=progress)
            logits, feats, img = logits.cpu(), feats.cpu(), img_of[i:j]
            prob[i:j] = torch.softmax(logits, 1).gather(1, target[img, None])[:, 0]
            label[i:j] = logits.argmax(1)
            feature[i:j] = feats.gather(1, channel[img, None])[:, 0]
        return prob, label, feature

    def attribute(
        self,
        inputs: Inputs,
        sliding_window_shapes: tuple[int, ...] | tuple[tuple[int, ...], ...],
        strides: None | int | tuple = None,
        baselines: None | int | float | torch.Tensor | tuple = None,
        target: None | int | tuple | torch.Tensor | list = None,
        additional_forward_args: Any = None,
        perturbations_per_eval: int = 1,
        show_progress: bool = False,
    ) -> Inputs:
        """``captum.attr.Occlusion(model).attribute(...)``: the same call and numbers, by the incremental
        engine where it applies (see :func:`zfaccel.analysis.occlusion.captum.occlusion_attribute`)."""
        return occlusion_attribute(self.model, inputs, sliding_window_shapes, strides, baselines, target,
                                   additional_forward_args, perturbations_per_eval, show_progress)  # fmt: skip


def _mac_report(model: nn.Module, size, window, stride, approx: Approximation, evaluated, batch: int):
    """MACs an approximate sweep spent, against exact incremental and full re-inference of its grid
    (None where the model is not a plain CNN)."""
    try:
        counter = MacCounter(model, size)
    except (TypeError, ValueError):
        return None
    n = grid(size, window, stride)
    every = positions_of(1, n, stride, torch.device("cpu"))
    spent = sum(float(counter.positions(p[:, 1], p[:, 2], window, approx.tau).sum()) for p in evaluated)
    exact = float(counter.positions(every[:, 1], every[:, 2], window).sum()) * batch
    return {"spent": spent, "exact": exact, "full": counter.full * len(every) * batch}
