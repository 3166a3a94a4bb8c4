"""Top-k activations across a dataset (paper Fig. 2): mine, project, cut the matching patches.

One pass over the data keeps, for every channel of a layer, the k images whose
maps respond most strongly (value, image, position of the map's maximum):
``spatial_argmax`` reduces each map in one fused pass and a (channels, k) table
is merged per batch, so memory stays O(channels x k), never O(dataset). Then
every kept activation is projected to pixels with the DeconvNet, one forward per
distinct image, and the image patch under its receptive field is cut out.
Unreadable items are skipped and listed (topk_data); a checkpoint records what
it was made from and refuses a resume with anything else (topk_checkpoint).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from zfaccel.analysis.deconvnet import DeconvNet, check_channels
from zfaccel.analysis.topk_checkpoint import STATE, load_checkpoint, run_settings, save_checkpoint
from zfaccel.analysis.topk_data import Failure, as_dataset, batches, load
from zfaccel.checks import check_int
from zfaccel.models.preprocessing import Preprocessing, preprocessing_for
from zfaccel.ops import spatial_argmax

if TYPE_CHECKING:  # for the annotations only
    from matplotlib.figure import Figure

CHECKPOINT_SECONDS = 30.0  # how often a long mining run saves its table


@dataclass(repr=False)  # the generated repr would print every tensor: thousands of lines for conv5
class TopActivations:
    """The k strongest activations of each channel of a layer across a dataset.

    values: (C, k) float32, descending per channel (-inf where fewer than k images were seen);
    image_index: (C, k) int64 index into the dataset (-1 where missing);
    position: (C, k, 2) int64 (row, col) in the layer's map.
    images_seen: how many images were mined; failures: the items skipped as unreadable, as
    (index into the dataset, path, error message) in index order (a folder's index counts into its
    sorted files, as image_index does).
    After projection: ``projections`` and ``patches`` (C, k, 3, h, w) float32 crops of the
    receptive fields (zero outside the image), ``boxes`` (C, k, 2) int64 their top-left pixel
    in images of ``image_size`` (H, W).
    """

    layer: str
    layer_index: int
    channels: torch.Tensor
    values: torch.Tensor
    image_index: torch.Tensor
    position: torch.Tensor
    images_seen: int = 0
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    projections: torch.Tensor | None = None
    patches: torch.Tensor | None = None
    boxes: torch.Tensor | None = None
    image_size: tuple[int, int] | None = None
    failures: list[Failure] = field(default_factory=list)

    @classmethod
    def empty(
        cls, layer: str, layer_index: int, channels: torch.Tensor, k: int, preprocessing: Preprocessing
    ) -> TopActivations:
        """The table before any image: values -inf, image_index -1, positions 0; channels (C,) int64."""
        c = len(channels)
        return cls(layer, layer_index, channels, torch.full((c, k), float("-inf")),
                   torch.full((c, k), -1, dtype=torch.long), torch.zeros((c, k, 2), dtype=torch.long),
                   preprocessing=preprocessing)  # fmt: skip

    @property
    def k(self) -> int:
        return self.values.shape[1]

    @property
    def items_done(self) -> int:
        """Dataset items mined or skipped: a resumed run goes on from this index."""
        return self.images_seen + len(self.failures)

    def __repr__(self) -> str:
        return (f"TopActivations(layer={self.layer!r}, channels={len(self.channels)}, k={self.k}, "
                f"images_seen={self.images_seen}, projected={self.projections is not None}, "
                f"failures={len(self.failures)})")  # fmt: skip

    def state(self) -> dict:
        """What a checkpoint keeps (tensors and plain values only: loads with weights_only=True)."""
        return {key: getattr(self, key) for key in STATE}

    def render(self, path: str | os.PathLike | None = None, **kwargs) -> Figure:
        """The paper's Fig. 2 for this layer as a matplotlib Figure, written as a PNG to ``path`` when given
        (see zfaccel.analysis.figures.render_top_activations; matplotlib loads here, not with zfaccel)."""
        from zfaccel.analysis.figures import render_top_activations

        return render_top_activations(self, path, **kwargs)


def _merge(top: TopActivations, values: torch.Tensor, index: torch.Tensor, images: torch.Tensor, width: int) -> None:
    """Merge a batch's per-map maxima (B, C) and flat positions (B, C) of the images with dataset
    indices ``images`` (B,) int64, ascending, into the (C, k) table.

    A stable descending sort keeps earlier images first among equal values, so the result
    does not depend on batch boundaries.
    """
    b = values.shape[0]
    images = images.view(1, b).expand(values.shape[1], b)
    all_values = torch.cat([top.values, values.t().float()], 1)
    all_images = torch.cat([top.image_index, images], 1)
    pos = torch.stack([index // width, index % width], -1).transpose(0, 1)
    all_pos = torch.cat([top.position, pos], 1)
    order = torch.sort(torch.nan_to_num(all_values, nan=float("inf")), dim=1, descending=True, stable=True).indices
    keep = order[:, : top.k]
    top.values = all_values.gather(1, keep)
    top.image_index = all_images.gather(1, keep)
    top.position = all_pos.gather(1, keep[..., None].expand(-1, -1, 2))


def top_activations(
    model: nn.Module,
    dataset: Dataset | DataLoader | Iterable | str | os.PathLike,
    layer: str | int,
    k: int = 9,
    channels: Sequence[int] | None = None,
    batch_size: int | None = None,
    *,
    project: bool = True,
    preprocessing: Preprocessing | None = None,
    checkpoint: str | os.PathLike | None = None,
    strict: bool = False,
    backend: str = "auto",
    show_progress: bool = True,
) -> TopActivations:
    """Mine the k strongest activations of every channel of ``layer`` over ``dataset``, then project them.

    Args:
        model: a plain CNN (see DeconvNet), in eval mode; its device is used.
        dataset: a Dataset or DataLoader whose items are images (3, H, W) or (image, label, ...)
            tuples, already normalised for the model; or a folder of image files, read with
            ``preprocessing`` (default: the model's, see zfaccel.models.preprocessing).
        layer: a layer name ("conv1".."conv5", "pool5", ...) or an index into model.features.
        k: how many activations to keep per channel (the paper shows 9).
        channels: the channels to keep (default: all of the layer's).
        batch_size: images per forward pass (default 32; a DataLoader keeps its own).
        project: also project every kept activation and cut its image patch (needs random
            access to the data: a Dataset, a DataLoader over one, or a folder).
        checkpoint: a file where the mining table is saved every 30 s, on interruption and at
            the end, with the model's weights hash, the data and the settings; a later call
            with the same file resumes after the images already mined, or raises ValueError
            naming what differs when any of those does (see topk_checkpoint).
        strict: raise on the first unreadable item (a ValueError from the Dataset, e.g. a file
            of the folder that is no image) instead of skipping it and listing it in ``failures``;
            other errors always propagate, as does any error inside a DataLoader or iterable.
        backend: backend of the kernels ("auto", "triton", "native", "torch").
        show_progress: tqdm progress bars.

    Returns:
        TopActivations; ``.render(path)`` draws the paper's Fig. 2 for this layer.
    """
    k = check_int(k, "k")
    check_int(batch_size, "batch_size", none=True)
    batch_size = batch_size or 32
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be a bool, got {type(strict).__name__}")
    dn = DeconvNet(model, backend=backend)
    index = dn.plain.resolve(layer)
    preprocessing = preprocessing or preprocessing_for(model)
    count = dn.plain.channels(index)
    chans = check_channels(channels if channels is not None else range(count), count)
    data = as_dataset(dataset, preprocessing)
    device = next(model.parameters()).device
    name = dn.plain.name_of(index)

    top = TopActivations.empty(name, index, chans, k, preprocessing)
    settings = run_settings(model, data, name, k, chans, preprocessing) if checkpoint is not None else {}
    if checkpoint is not None and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, settings)
        for key in STATE:
            setattr(top, key, state[key])
    last_save = time.monotonic()
    total = len(data) if hasattr(data, "__len__") and not isinstance(data, DataLoader) else None
    bar = tqdm(total=total, initial=top.items_done, desc=f"mining {name}", unit="img", disable=not show_progress)
    # Every channel in order (the default) reads the activations in place: indexing them copied the
    # whole map, 74 MB per batch of 16 at conv1, and doubled the mining's cost beyond the forward pass.
    every_channel = torch.equal(top.channels, torch.arange(count))
    try:
        for batch in batches(data, batch_size, top.items_done, strict):
            if batch.images is not None:
                act = dn.trace(batch.images.to(device), index, record=False)[0].output
                maps = act if every_channel else act[:, top.channels.to(act.device)]
                values, flat = spatial_argmax(maps, backend=backend)
                _merge(top, values.cpu(), flat.cpu(), batch.indices, act.shape[3])
                top.images_seen += len(batch.indices)
            # A batch's failures count only with its images: Ctrl-C inside a batch keeps neither, and a
            # resumed run rereads that batch whole from items_done.
            top.failures += batch.failures
            bar.update(len(batch.indices) + len(batch.failures))
            if checkpoint is not None and time.monotonic() - last_save > CHECKPOINT_SECONDS:
                save_checkpoint(top, settings, checkpoint)
                last_save = time.monotonic()
    except KeyboardInterrupt:
        if checkpoint is not None:
            save_checkpoint(top, settings, checkpoint)
        raise
    finally:
        bar.close()
    if top.images_seen == 0:
        if top.failures:
            _, _, first = top.failures[0]
            raise ValueError(f"none of the dataset's {len(top.failures)} items could be read; the first: {first}")
        raise ValueError("the dataset is empty")
    if checkpoint is not None:
        save_checkpoint(top, settings, checkpoint)
    if project:
        _project(top, dn, data, batch_size, device, show_progress)
    return top


def _project(top: TopActivations, dn: DeconvNet, data, batch_size: int, device, show_progress: bool) -> None:
    """Project every kept activation and cut its image patch; one forward per distinct image."""
    kept = top.image_index >= 0
    rows = kept.nonzero()  # (T, 2): (channel row, rank)
    images = top.image_index[kept]
    distinct = torch.unique(images)
    proj = patches = boxes = None
    bar = tqdm(total=len(distinct), desc=f"projecting {top.layer}", unit="img", disable=not show_progress)
    for lo in range(0, len(distinct), batch_size):
        chunk = distinct[lo : lo + batch_size]
        pixels = load(data, chunk.tolist()).to(device)
        local = torch.searchsorted(chunk, images)
        mine = (local < len(chunk)) & (chunk[local.clamp(max=len(chunk) - 1)] == images)
        sel = mine.nonzero().view(-1)
        targets = torch.stack([local[sel], top.channels[rows[sel, 0]], top.position[kept][sel, 0],
                               top.position[kept][sel, 1]], 1)  # fmt: skip
        crops = dn.project_targets(pixels, top.layer_index, targets.to(device))
        if proj is None:
            c, k = top.values.shape
            proj = torch.zeros((c, k, *crops.signal.shape[1:]), dtype=torch.float32)
            patches = torch.zeros_like(proj)
            boxes = torch.zeros((c, k, 2), dtype=torch.long)
        r, rank = rows[sel, 0], rows[sel, 1]
        proj[r, rank] = crops.signal.float().cpu()
        boxes[r, rank] = crops.offset.cpu()
        patches[r, rank] = _cut(pixels.cpu(), local[sel], crops.offset.cpu(), crops.signal.shape[-2:])
        bar.update(len(chunk))
    bar.close()
    top.projections, top.patches, top.boxes = proj, patches, boxes
    top.image_size = tuple(pixels.shape[-2:])


def _cut(pixels: torch.Tensor, image: torch.Tensor, offset: torch.Tensor, size) -> torch.Tensor:
    """The (T, 3, h, w) image patches under the receptive fields; zero outside the image."""
    from zfaccel.reference.crops import gather_crops, mask_outside

    crops = gather_crops(pixels, image, offset, tuple(size))
    return mask_outside(crops, offset, tuple(pixels.shape[-2:]))
