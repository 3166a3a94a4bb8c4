"""Occlusion engines: the logits and feature totals of a model with an occluder at given positions.

An engine is built by :func:`make_engine`, then ``prepare(images, baseline)``
runs the clean images once, and ``evaluate(positions, window)`` answers for any
batch of occluder positions. Two engines compute the same numbers:

- :class:`FullEngine`: full re-inference of every occluded image, built on the
  fly by ``zfaccel.occlusion_batch`` batch by batch (never N copies plus masks);
- ``IncrementalEngine`` (incremental.py): exact incremental inference
  (Krypton, Nakandala et al., SIGMOD 2019), recomputing at each layer only the
  region the occluder can change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from zfaccel.analysis.occlusion.memory import budget, check_batch_size, check_max_memory, halving
from zfaccel.analysis.occlusion.stages import Stage, build_stages
from zfaccel.backends import check_name
from zfaccel.models.plain import PlainCNN
from zfaccel.ops import occlusion_batch

Progress = Callable[[int], None] | None


@contextlib.contextmanager
def inference(model: nn.Module) -> Iterator[None]:
    """No autograd and every module in eval mode (BatchNorm's running statistics, no dropout);
    the modules' training flags are restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, flag in flags:
            m.training = flag


class OcclusionEngine:
    """Logits and per-channel feature totals of a model with an occluder, for batches of positions.

    After :meth:`prepare`: ``clean_logits`` (B, K) float32, ``clean_features`` (B, C) float32 (the
    spatial sums of each map of the feature layer) and ``clean_peaks`` (B, C) float32 (each map's
    largest activation), for the unoccluded images.
    """

    incremental = False

    def __init__(
        self,
        model: nn.Module,
        feature_layer: str | int,
        batch_size: int | None,
        max_memory: int | None,
        backend: str = "auto",
    ) -> None:
        self.model = model
        self.backend = check_name(backend)  # of occlusion_batch and the fused ReLU + switch pooling
        self.feature_layer = feature_layer
        self.batch_size = check_batch_size(batch_size)
        self.max_memory = check_max_memory(max_memory)
        self.images: torch.Tensor | None = None
        self.baseline: torch.Tensor | None = None
        self.clean_logits = self.clean_features = self.clean_peaks = None
        self.last_batch_size = 0  # the batch size the last evaluate() ended with

    # ---------------------------------------------------------------- interface
    def prepare(self, images: torch.Tensor, baseline: torch.Tensor) -> None:
        """Run the clean images (B, 3, H, W) once and keep what evaluate() needs; ``baseline``
        (B, 3, H, W) is what the occluder shows (both the model's dtype and device)."""
        if baseline.shape != images.shape:
            raise ValueError(f"baseline must have the images' shape {tuple(images.shape)}, got {tuple(baseline.shape)}")
        self.images, self.baseline = images, baseline.to(images.dtype)
        with inference(self.model):
            logits, maps = self._clean(images)
        self.clean_logits = logits.float()
        self.clean_features = maps.float().sum((2, 3))
        self.clean_peaks = maps.float().amax((2, 3))

    def evaluate(
        self, positions: torch.Tensor, window: tuple[int, int], *, progress: Progress = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Occluder positions (P, 3) int64 rows (image, row, col), the occluder's (height, width)
        top-left at (row, col) -> logits (P, K) float32 and feature totals (P, C_feat) float32
        (per-channel spatial sums of the feature layer), in the order of ``positions``.

        ``progress(n)`` is called after each batch with the number of positions it held.
        """
        if self.images is None:
            raise RuntimeError("call prepare(images, baseline) before evaluate()")
        positions = positions.to(self.images.device, torch.int64)
        order = self._order(positions, window)
        ordered = positions[order]
        batch = self._batch_size(ordered, window)

        def run(i: int, j: int) -> tuple[torch.Tensor, torch.Tensor]:
            logits, feats = self._evaluate_batch(ordered[i:j], window)
            if progress is not None:
                progress(j - i)
            return logits.float(), feats.float()

        with inference(self.model):
            chunks, self.last_batch_size = halving(run, 0, len(ordered), batch)
        k, c = self.clean_logits.shape[1], self.clean_features.shape[1]
        logits = torch.empty(len(positions), k, device=positions.device)
        feats = torch.empty(len(positions), c, device=positions.device)
        if chunks:
            logits[order] = torch.cat([ch[0] for ch in chunks])
            feats[order] = torch.cat([ch[1] for ch in chunks])
        return logits, feats

    # ---------------------------------------------------------------- to implement
    def _clean(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, K), feature maps (B, C, h, w)) of the clean images."""
        raise NotImplementedError

    def _evaluate_batch(self, positions: torch.Tensor, window: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _order(self, positions: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
        """The order positions run in (engines group alike positions); default: as given."""
        return torch.arange(len(positions), device=positions.device)

    def _bytes_per_position(self, positions: torch.Tensor, window: tuple[int, int]) -> int:
        raise NotImplementedError

    def _default_batch(self) -> int:
        raise NotImplementedError

    def _batch_size(self, positions: torch.Tensor, window: tuple[int, int]) -> int:
        if self.batch_size is not None:
            cap = self.batch_size
        else:
            cap = self._default_batch()
        per = max(1, self._bytes_per_position(positions, window))
        fit = budget(self.images.device, self.max_memory) // per
        return int(max(1, min(cap, fit, max(1, len(positions)))))


class FullEngine(OcclusionEngine):
    """Full re-inference: each occluded image built by ``zfaccel.occlusion_batch`` and run whole.

    Plain CNNs (see :func:`zfaccel.models.split_model`) run stage by stage with zfaccel's fused
    ReLU + switch pooling, reading the feature layer on the way; any other model runs its own
    ``forward`` with a hook on the module named ``feature_layer`` (a ``named_modules()`` name).
    """

    def __init__(
        self,
        model: nn.Module,
        feature_layer: str | int = "conv5",
        *,
        batch_size: int | None = None,
        max_memory: int | None = None,
        plain: PlainCNN | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(model, feature_layer, batch_size, max_memory, backend)
        self.plain: PlainCNN | None = plain
        if plain is not None:
            self.tap = plain.resolve(feature_layer, "feature_layer")
            plain.channels(self.tap)  # ValueError for a layer before any convolution
            self.stages: list[Stage] = build_stages(plain.features, len(plain.features) - 1, self.tap, self.backend)
        else:
            names = dict(model.named_modules())
            if not isinstance(feature_layer, str) or feature_layer not in names or feature_layer == "":
                known = ", ".join(list(names)[1:8])
                raise ValueError(
                    f"unknown feature_layer {feature_layer!r}: {type(model).__name__} is not a plain CNN, "
                    f"so feature_layer must name one of its modules ({known}, ...)"
                )
            self.hooked = names[feature_layer]
        self._map_bytes = 0

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 3, H, W) -> (logits (N, K), feature maps (N, C, h, w))."""
        if self.plain is None:
            seen = []
            handle = self.hooked.register_forward_hook(lambda m, i, o: seen.append(o))
            try:
                logits = self.model(x)
            finally:
                handle.remove()
            return logits, seen[-1]
        feat = None
        for stage in self.stages:
            x = stage.full(x)
            if stage.stop == self.tap:
                feat = x
        return self.plain.head(x), feat

    def _clean(self, images):
        logits, maps = self._forward(images)
        # Per-position working set: the input plus the two largest consecutive maps, measured here.
        self._map_bytes = 3 * images[0].numel() * images.element_size() + 3 * maps[0].numel() * maps.element_size()
        if self.plain is not None:
            x, sizes = images[:1], []
            for stage in self.stages:
                x = stage.full(x)
                sizes.append(x.numel() * x.element_size())
            pairs = [a + b for a, b in zip(sizes, sizes[1:], strict=False)] or sizes
            self._map_bytes += max(pairs)
        return logits, maps

    def _evaluate_batch(self, positions, window):
        x = occlusion_batch(self.images, self.baseline, positions, window, backend=self.backend)
        logits, maps = self._forward(x)
        return logits, maps.sum((2, 3))

    def _bytes_per_position(self, positions, window):
        return self._map_bytes * 2  # oneDNN's scratch and the allocator's slack

    def _default_batch(self) -> int:
        # 32 as in the anchor (docs/performance.md); larger batches gain nothing on 2 cores.
        return 32 if self.images.device.type == "cpu" else 256


# END
