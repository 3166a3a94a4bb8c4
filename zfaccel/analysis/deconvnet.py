"""The deconvnet of Zeiler & Fergus (2014, section 2.1): activations projected back to pixels.

Forward once, recording the switches of every max-pool with zfaccel's kernels.
To examine an activation, zero every other activation of its layer, then at
each layer below: unpool with the switches (summing where windows overlap),
rectify, and filter with the transposed weights of the same convolution (no
bias), down to pixels. A BatchNorm2d right after a convolution is folded into
its filter (W * gamma / sqrt(running_var + eps) per output channel: the filter
the network applies, see zfaccel.models.folding), so its transpose is what goes
down; other normalisation layers and dropout pass the signal on unchanged.

All (image, channel) targets of a call go down together, in batches sized to a
memory budget, and each carries only its receptive field (see regions.py): a
conv5 projection on ZFNet computes on 139 x 139 pixels, not 224 x 224.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from zfaccel import native
from zfaccel.analysis.regions import Region
from zfaccel.backends import ENV_VAR, BackendUnavailableError, check_name, resolve
from zfaccel.checks import check_images, check_int
from zfaccel.geometry import to_pair
from zfaccel.models.folding import folded_weight
from zfaccel.models.plain import PlainCNN, split_model
from zfaccel.native.buffers import BufferCache, reusing
from zfaccel.native.paste_rows import paste_rows
from zfaccel.nn.local_response_norm import local_response_norm
from zfaccel.ops import max_pool2d_switches
from zfaccel.ops.crops import conv_transpose_crops, unpool_conv_transpose_crops, unpool_crops
from zfaccel.reference.crops import offset_below, paste_into

MODES = ("max", "map")
# Above this share of non-zero inputs, a filter step on the CPU runs torch's dense transposed
# convolution instead of the native one, which skips zeros but runs at about a quarter of the FMA peak
# (docs/performance.md) where oneDNN's dense one runs near it. 64 ZFNet conv5 targets on the 2-core
# Xeon VM: conv4^T (35 % non-zero) 11.1 -> 6.7 ms, conv3^T (30 %) 15.0 -> 11.8 ms; conv2^T and conv1^T
# (4 % after unpooling) stay native, 4-8x faster than dense.
DENSE_ABOVE = 0.25


@dataclass
class Trace:
    """What the forward pass keeps: per feature index, the input size (H, W) of convolutions
    and pools, and each pool's switches (uint8, its output's shape)."""

    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    switches: dict[int, torch.Tensor] = field(default_factory=dict)
    output: torch.Tensor | None = None  # the last recorded layer's output


@dataclass
class Crops:
    """Projections as crops: ``signal`` (T, 3, h, w) whose cell (0, 0) is pixel ``offset[t]``
    (int64 (T, 2), may be negative) of an image of ``image_size``; zero outside the image."""

    signal: torch.Tensor
    offset: torch.Tensor
    image_size: tuple[int, int]

    def paste(self) -> torch.Tensor:
        """Full-size projections (T, 3, H, W)."""
        return Region(self.signal, self.offset, *self.image_size).paste()


class DeconvNet:
    """Deconvnet projections for a plain CNN (ZFNet, AlexNet/VGG-style models, nn.Sequential CNNs).

    Args:
        model: a torchvision-style CNN with an nn.Sequential ``features`` of Conv2d, ReLU, MaxPool2d,
            LocalResponseNorm, BatchNorm2d and Dropout, or such an nn.Sequential (see
            :func:`zfaccel.models.split_model`). Its weights are read, never changed.
        backend: the kernels' backend ("auto", "triton", "native", "torch"): switch pooling and the crop ops.
            "auto" on the CPU filters crops more than a quarter non-zero with torch's dense transposed
            convolution (DENSE_ABOVE), the sparser ones with the native kernel.
        max_memory: bytes the projection batches may take (default 1 GiB).
        crop: compute each single-activation projection on its receptive field only (default);
            False computes it on whole maps (the same numbers, for comparison and benchmarks).
        fold_bn: filter with the BatchNorm-folded weights where a BatchNorm2d directly follows a
            convolution (default); False passes BatchNorm through unchanged, as zfaccel did before
            (each channel of the projection then misses its factor gamma / sigma).

    Example:
        >>> dn = zfaccel.DeconvNet(zfaccel.models.zfnet().eval())
        >>> proj = dn.project(torch.randn(2, 3, 224, 224), "conv5", [0, 7])   # (2, 2, 3, 224, 224)
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        backend: str = "auto",
        max_memory: int | None = None,
        crop: bool = True,
        fold_bn: bool = True,
    ) -> None:
        self.plain: PlainCNN = split_model(model)
        self.model = model
        self.backend = check_name(backend)
        if max_memory is not None and (not isinstance(max_memory, int) or max_memory < 1):
            raise ValueError(f"max_memory must be a positive number of bytes, got {max_memory!r}")
        self.max_memory = max_memory or (1 << 30)
        self.crop = crop
        if not isinstance(fold_bn, bool):
            raise TypeError(f"fold_bn must be a bool, got {fold_bn!r}")
        self.fold_bn = fold_bn
        # The crop kernels' large outputs, kept between projections: fresh ones cost their page faults
        # (zfaccel/native/buffers.py); release_buffers() gives them back.
        self._buffers = BufferCache(self.max_memory)
        self._filter_cache: dict[int, tuple[list, dict]] = {}

    def release_buffers(self) -> None:
        """Free the working memory kept between projections (at most ``max_memory`` bytes of the
        crop kernels' intermediate outputs, on the CPU); the next projection allocates it again."""
        self._buffers.clear()

    @property
    def layers(self) -> dict[str, int]:
        """Layer names -> indices into model.features."""
        return dict(self.plain.names)

    # ------------------------------------------------------------------ forward
    @torch.no_grad()
    def trace(self, images: torch.Tensor, layer: str | int, *, record: bool = True) -> tuple[Trace, int]:
        """Run the features up to ``layer`` on images (B, C, H, W), recording switches and sizes
        (``record=False``: only the output, as top-k mining needs).

        Returns the trace (its ``output`` is the layer's activations, (B, C_L, H_L, W_L)) and the
        layer's index. Every module runs in inference mode (BatchNorm's running statistics,
        no dropout), whatever the model's training flag.
        """
        stop = self.plain.resolve(layer)
        images = check_images(images, self._in_channels())
        x = images
        trace = Trace()
        for i, m in enumerate(self.plain.features[: stop + 1]):
            if isinstance(m, nn.Conv2d | nn.MaxPool2d):
                trace.sizes[i] = tuple(x.shape[-2:])
            if isinstance(m, nn.Conv2d):
                x = F.conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
            elif isinstance(m, nn.ReLU):
                # In place on the maps made here (a fresh output of (4, 96, 110, 110) float32 cost
                # 4.4 ms of page faults and writes, the ReLU in place 1-2 ms); never on the caller's images.
                x = F.relu(x, inplace=x is not images)
            elif isinstance(m, nn.MaxPool2d):
                x, switches = max_pool2d_switches(
                    x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, backend=self.backend
                )
                if record:
                    trace.switches[i] = switches
            elif isinstance(m, nn.BatchNorm2d):
                x = F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)
            elif type(m) is nn.LocalResponseNorm:  # torch's, bit for bit, faster (a subclass runs its own)
                x = local_response_norm(x, m.size, m.alpha, m.beta, m.k)
            elif isinstance(m, nn.LocalResponseNorm):
                x = m(x)
            # Dropout: the identity at inference.
        trace.output = x
        return trace, stop

    def _in_channels(self) -> int | None:
        conv = self._first_conv()
        return conv.in_channels if conv is not None else None

    def _first_conv(self) -> nn.Conv2d | None:
        return next((m for m in self.plain.features if isinstance(m, nn.Conv2d)), None)

    # ------------------------------------------------------------------ down
    def _filters(self, stop: int) -> dict[int, tuple[torch.Tensor, bool, bool]]:
        """Per convolution index up to ``stop``: the weight its transpose filters with (BatchNorm-folded
        when ``fold_bn`` and one follows), whether that weight is all finite (one sync each), and
        whether the unpooling above it runs in the same kernel (a ReLU then a MaxPool2d right above,
        and the backend that would run unpool_conv_transpose_crops is the native one)."""
        features = self.plain.features
        # Computed once per state of the weights: the finiteness checks read every weight (15 MB for
        # ZFNet, 5 ms a projection call). Any in-place change bumps a tensor's version; a new tensor is
        # another object.
        state = [(t, t._version) for m in features[: stop + 1] for t in (*m.parameters(False), *m.buffers(False))]
        state.append((os.environ.get(ENV_VAR), self.backend, self.fold_bn))
        cached = self._filter_cache.get(stop)
        if cached is not None and _same_state(cached[0], state):
            return cached[1]
        filters = {}
        for j, m in enumerate(features[: stop + 1]):
            if isinstance(m, nn.Conv2d):
                weight = folded_weight(features, j) if self.fold_bn else m.weight
                finite = bool(torch.isfinite(weight).all())
                below_pool = j + 2 <= stop and isinstance(features[j + 1], nn.ReLU)
                below_pool = below_pool and isinstance(features[j + 2], nn.MaxPool2d)
                unfit = None if finite else {"native": "non-finite weights"}
                fused = below_pool and self._runs_natively("unpool_conv_transpose_crops", weight, unfit)
                filters[j] = (weight, finite, fused)
        self._filter_cache[stop] = (state, filters)
        return filters

    def _runs_natively(self, op: str, like: torch.Tensor, unfit: dict[str, str] | None = None) -> bool:
        """Whether ``self.backend`` runs ``op`` on tensors like ``like`` with the native kernel (False
        where no backend can: e.g. backend="triton" and the fused op, whose two steps then run apart)."""
        try:
            return resolve(self.backend, like.device, op, like.dtype, unfit=unfit) == "native"
        except BackendUnavailableError:
            return False

    @torch.no_grad()
    def _down(
        self,
        region: Region,
        trace: Trace,
        stop: int,
        image_index: torch.Tensor,
        filters: dict[int, tuple[torch.Tensor, bool, bool]],
    ) -> Region:
        """Project ``region`` (at the output of features[stop]) down to pixels; ``filters`` is
        :meth:`_filters`. No autograd graph: the projections are pictures, on every backend
        (the native kernels never record one). Tensor work only: torch.compile traces it whole."""
        features = self.plain.features
        i = stop
        while i >= 0:
            m = features[i]
            if isinstance(m, nn.ReLU):
                region = region.with_signal(F.relu(region.signal))
            elif isinstance(m, nn.MaxPool2d):
                # Unpool, then rectify when a ReLU sits right below (the paper's unpool, rectify).
                fuse = i > 0 and isinstance(features[i - 1], nn.ReLU)
                k = to_pair(m.kernel_size, "kernel_size")
                s, p, d = to_pair(m.stride or k, "stride"), to_pair(m.padding, "padding"), to_pair(m.dilation, "d")
                if fuse and not region.trim and i > 1 and filters.get(i - 2, (None, False, False))[2]:
                    # ... and filter, in one kernel (_filters says when)
                    region = self._unpool_filter(region, trace, i, (k, s, p, d), image_index, filters[i - 2])
                    i -= 2  # now at the convolution
                    i -= 1 if i > 0 and isinstance(features[i - 1], nn.ReLU) else 0
                    i -= 1
                    continue
                signal = unpool_crops(
                    region.signal, trace.switches[i], image_index, region.offset, k, s, p, d, trace.sizes[i],
                    relu=fuse, backend=self.backend,
                )  # fmt: skip
                region = region.below(signal, s, p, trace.sizes[i])
                i -= 1 if fuse else 0
            elif isinstance(m, nn.Conv2d):
                # Filter, then rectify when a ReLU sits right below (fused into the kernel's store).
                fuse = i > 0 and isinstance(features[i - 1], nn.ReLU)
                out_offset = offset_below(region.offset, m.stride, m.padding)
                weight, finite, _ = filters[i]
                signal = conv_transpose_crops(
                    region.signal, weight, m.stride, m.dilation, m.groups, out_offset, trace.sizes[i],
                    relu=fuse, weights_finite=finite, backend=self._filter_backend(region.signal),
                )  # fmt: skip
                region = region.below(signal, m.stride, m.padding, trace.sizes[i])
                i -= 1 if fuse else 0
            # LocalResponseNorm, Dropout and BatchNorm2d (folded into the convolution below it, or not
            # after a convolution): passed through unchanged.
            i -= 1
        return region

    def _filter_backend(self, signal: torch.Tensor) -> str:
        """The backend of a filter step on ``signal`` (T, C, h, w): with "auto" on the CPU, torch's dense
        transposed convolution once more than DENSE_ABOVE of the inputs are non-zero, else self.backend."""
        if self.backend != "auto" or signal.device.type != "cpu" or torch.compiler.is_compiling():
            return self.backend
        return "torch" if int(torch.count_nonzero(signal)) > DENSE_ABOVE * signal.numel() else self.backend

    def _unpool_filter(self, region: Region, trace: Trace, i: int, pool: tuple, image_index: torch.Tensor,
                       conv_filter: tuple[torch.Tensor, bool, bool]) -> Region:  # fmt: skip
        """The unpooling at features[i] with the ReLU below it, and the transposed convolution at
        features[i - 2] (rectified when a ReLU sits below it), in one kernel."""
        features = self.plain.features
        k, s, p, d = pool
        conv: nn.Conv2d = features[i - 2]
        out_offset = offset_below(offset_below(region.offset, s, p), conv.stride, conv.padding)
        weight, finite, _ = conv_filter
        signal = unpool_conv_transpose_crops(
            region.signal, trace.switches[i], image_index, region.offset, k, s, p, d, trace.sizes[i],
            weight, out_offset, conv.stride, conv.dilation, conv.groups, trace.sizes[i - 2],
            unpool_relu=True, relu=i > 2 and isinstance(features[i - 3], nn.ReLU), weights_finite=finite,
            backend=self.backend,
        )  # fmt: skip
        return Region(signal, out_offset, *trace.sizes[i - 2])

    # ------------------------------------------------------------------ targets
    def project_targets(
        self,
        images: torch.Tensor,
        layer: str | int,
        targets: torch.Tensor,
        *,
        batch_size: int | None = None,
        trace: Trace | None = None,
    ) -> Crops:
        """Project single activations: ``targets`` int64 (T, 4) rows (image index, channel, row, col)
        into ``images`` (B, C, H, W) and the layer's map. Each target keeps its activation's value
        and every other activation of the layer is zero. Returns crops of the receptive fields."""
        if trace is None:
            trace, stop = self.trace(images, layer)
        else:
            stop = self.plain.resolve(layer)
        images = check_images(images, self._in_channels())
        act = trace.output
        targets = torch.as_tensor(targets, device=act.device)
        if targets.dim() != 2 or targets.shape[1] != 4 or targets.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"targets must be an int (T, 4) tensor of (image, channel, row, col), got "
                             f"{tuple(targets.shape)} {targets.dtype}")  # fmt: skip
        targets = targets.long()
        limits = torch.tensor([act.shape[0], act.shape[1], act.shape[2], act.shape[3]], device=act.device)
        if targets.numel() and (bool((targets < 0).any()) or bool((targets >= limits).any())):
            raise ValueError(f"targets out of range for {len(images)} images and a {tuple(act.shape[1:])} layer")
        values = act[targets[:, 0], targets[:, 1], targets[:, 2], targets[:, 3]]

        def start(t):  # t: (image, channel, row, col, target index)
            return self._single(act, t[:, 1], t[:, 2:4], values[t[:, 4]])

        indexed = torch.cat([targets, torch.arange(len(targets), device=act.device)[:, None]], 1)
        done = [region for _, region in self._chunks(start, indexed, trace, stop, batch_size)]
        if not done:
            empty = torch.zeros((0, images.shape[1], 1, 1), dtype=act.dtype, device=act.device)
            return Crops(empty, torch.zeros((0, 2), dtype=torch.long), tuple(images.shape[-2:]))
        return Crops(torch.cat([r.signal for r in done]), torch.cat([r.offset for r in done]), tuple(images.shape[-2:]))

    def _single(self, act: torch.Tensor, channel: torch.Tensor, position: torch.Tensor, value: torch.Tensor):
        """Regions holding one activation each: a 1 x 1 crop at ``position`` (T, 2), or with
        ``crop=False`` a whole map that is zero but there."""
        t = len(channel)
        rows = torch.arange(t, device=act.device)
        if self.crop:
            signal = torch.zeros((t, act.shape[1], 1, 1), dtype=act.dtype, device=act.device)
            signal[rows, channel, 0, 0] = value
            return Region(signal, position.clone(), act.shape[2], act.shape[3])
        signal = torch.zeros((t, *act.shape[1:]), dtype=act.dtype, device=act.device)
        signal[rows, channel, position[:, 0], position[:, 1]] = value
        zero = torch.zeros((t, 2), dtype=torch.long, device=act.device)
        return Region(signal, zero, act.shape[2], act.shape[3], trim=True)

    def _chunks(self, start, targets: torch.Tensor, trace: Trace, stop: int, batch_size: int | None):
        """Push targets down in batches; ``start(part)`` builds each batch's first region. Yields
        (part, pixel-level region) per batch."""
        if not len(targets):
            return
        chunk = batch_size or max(1, self.max_memory // self._bytes_per_target(trace, stop, start(targets[:1]).size))
        filters = self._filters(stop)
        for lo in range(0, len(targets), chunk):
            part = targets[lo : lo + chunk]
            with reusing(self._buffers):
                region = self._down(start(part), trace, stop, part[:, 0], filters)
            yield part, region

    def _bytes_per_target(self, trace: Trace, stop: int, size: tuple[int, int]) -> int:
        """The largest per-target intermediate on the way down, times 4 for temporaries."""
        h, w = size
        channels = trace.output.shape[1]
        biggest = channels * h * w
        for i in range(stop, -1, -1):
            m = self.plain.features[i]
            if isinstance(m, nn.Conv2d | nn.MaxPool2d):
                k, s, d = (to_pair(getattr(m, a) or m.kernel_size, a) for a in ("kernel_size", "stride", "dilation"))
                h, w = (h - 1) * s[0] + (k[0] - 1) * d[0] + 1, (w - 1) * s[1] + (k[1] - 1) * d[1] + 1
                h, w = min(h, trace.sizes[i][0] + 2 * k[0]), min(w, trace.sizes[i][1] + 2 * k[1])
                if isinstance(m, nn.Conv2d):
                    channels = m.in_channels
                biggest = max(biggest, channels * h * w)
        return 4 * biggest * trace.output.element_size()

    # ------------------------------------------------------------------ public
    def project(
        self,
        images: torch.Tensor,
        layer: str | int,
        channels: int | Sequence[int] | torch.Tensor,
        mode: str = "max",
        batch_size: int | None = None,
    ) -> torch.Tensor:
        """Project channels of ``layer`` back to pixel space, for every image.

        Args:
            images: (B, 3, H, W) (or (3, H, W)) float, on the model's device.
            layer: "conv1".."conv5" (the rectified output of that convolution), "pool1", "pool2",
                "pool5", ... or an int i meaning the output of ``model.features[i]``.
            channels: an int or K channel indices of that layer.
            mode: "max" keeps only the channel's strongest activation in each image (the
                paper's figures; first maximum in row-major order); "map" keeps its whole map.
            batch_size: targets projected together (default: as many as ``max_memory`` allows).

        Returns:
            (B, K, 3, H, W), images' dtype: each target's projection, zero outside its
            receptive field in "max" mode.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be 'max' or 'map', got {mode!r}")
        check_int(batch_size, "batch_size", none=True)
        trace, stop = self.trace(images, layer)
        images = check_images(images, self._in_channels())
        act = trace.output
        chans = check_channels(channels, act.shape[1])
        b, k = act.shape[0], len(chans)
        image_index = torch.arange(b, device=act.device).repeat_interleave(k)
        channel_index = chans.to(act.device).repeat(b)
        if mode == "max":
            flat = act[image_index, channel_index].flatten(1)
            pos = flat.argmax(1)  # the first maximum in row-major order
            values = flat.gather(1, pos[:, None]).view(-1)
            offsets = torch.stack([pos // act.shape[3], pos % act.shape[3]], 1)

            def start(t):  # the activation alone, every other one zero
                return self._single(act, t[:, 1], offsets[t[:, 2]], values[t[:, 2]])
        else:

            def start(t):  # the channel's whole map, every other channel zero
                signal = torch.zeros((len(t), act.shape[1], *act.shape[2:]), dtype=act.dtype, device=act.device)
                signal[torch.arange(len(t), device=act.device), t[:, 1]] = act[t[:, 0], t[:, 1]]
                zero = torch.zeros((len(t), 2), dtype=torch.long, device=act.device)
                return Region(signal, zero, act.shape[2], act.shape[3], trim=True)

        targets = torch.stack([image_index, channel_index, torch.arange(b * k, device=act.device)], 1)
        size = (b * k, images.shape[1], *images.shape[-2:])
        # Where the native crop kernels run, every row is written once, zeros and crop together
        # (paste_rows), into memory kept between calls; elsewhere into zeros, a rectangle per target.
        if native_paste := self._runs_natively("conv_transpose_crops", act):
            with reusing(self._buffers):
                out = native.empty(size, act, act.dtype, torch.contiguous_format)
        else:
            out = torch.zeros(size, dtype=act.dtype, device=act.device)
        for part, region in self._chunks(start, targets, trace, stop, batch_size):
            if native_paste:
                paste_rows(out, part[:, 2], region.signal, region.offset)
            else:
                paste_into(out, part[:, 2].tolist(), region.signal, region.offset)
        return out.view(b, k, *out.shape[1:])


def _same_state(a: list, b: list) -> bool:
    """Whether two weight states (lists of (tensor, version), then the settings) are the same."""
    if len(a) != len(b) or a[-1] != b[-1]:
        return False
    return all(x is y and vx == vy for (x, vx), (y, vy) in zip(a[:-1], b[:-1], strict=True))


def check_channels(channels, count: int) -> torch.Tensor:
    """int64 (K,) channel indices in [0, count); TypeError/ValueError naming ``channels`` otherwise."""
    if isinstance(channels, bool):
        raise TypeError("channels must be an int or a sequence of ints, got a bool")
    if isinstance(channels, int):
        channels = [channels]
    try:
        chans = torch.as_tensor(channels)
    except (TypeError, ValueError) as err:
        raise TypeError(f"channels must be an int or a sequence of ints, got {channels!r}") from err
    if chans.dim() != 1 or chans.numel() == 0 or chans.is_floating_point() or chans.dtype == torch.bool:
        raise TypeError(f"channels must be an int or a non-empty sequence of ints, got {channels!r}")
    bad = chans[(chans < 0) | (chans >= count)]
    if bad.numel():
        raise ValueError(f"channels {bad.tolist()} out of range: the layer has {count} channels (0..{count - 1})")
    return chans.long()
