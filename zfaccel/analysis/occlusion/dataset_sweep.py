"""Occlusion sweeps over whole datasets, into a resumable zarr store, on one process or many.

``sweep_dataset`` lists the data (sorted, so an index means the same file everywhere),
creates the store (or checks that an existing one was made with the same settings,
model and data), then works through the pending chunks: DataLoader workers decode and
preprocess a chunk's images while the model sweeps the previous one; the chunk's maps
are written whole, status last. Under ``torch.distributed`` (torchrun) rank 0 creates
or checks the store and hands every rank a disjoint, deterministic share of the
pending chunks; each rank writes its own chunks directly. Killed at any moment, a run
loses at most its chunks in flight: rerunning it resumes.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from zfaccel.analysis.occlusion import store as stores
from zfaccel.analysis.occlusion.approximate import Approximation
from zfaccel.analysis.occlusion.dataset import Listing, SweepImages, list_images
from zfaccel.analysis.occlusion.grid import default_geometry, grid
from zfaccel.analysis.occlusion.macs import count_macs
from zfaccel.analysis.occlusion.sweep import Occlusion
from zfaccel.checks import check_int
from zfaccel.identity import model_identity
from zfaccel.models.classes import class_names as model_class_names
from zfaccel.models.preprocessing import Preprocessing, preprocessing_for

# Images swept together: bounds the clean activations cached at once (ZFNet: about 10 MB an image).
GROUP = 16


@dataclass(frozen=True)
class Plan:
    """Everything a dataset sweep decided before running: what, how, and the store's attributes."""

    listing: Listing
    preprocessing: Preprocessing
    input_size: tuple[int, int]
    window: tuple[int, int]
    stride: tuple[int, int]
    grid: tuple[int, int]
    baseline: float | list[float] | None
    target: str | int
    labels: list[int] | None  # the true class of every image where the data says (model's numbering)
    class_names: list[str] | None
    attrs: dict
    approximation: Approximation | None = None

    @property
    def positions(self) -> int:
        return self.grid[0] * self.grid[1]


def _check_baseline(baseline: object) -> float | list[float] | None:
    if baseline is None or baseline == "mean":
        return None
    if isinstance(baseline, bool):
        raise TypeError("baseline must be None ('mean'), a float or a per-channel colour, got a bool")
    if isinstance(baseline, int | float):
        return float(baseline)
    if isinstance(baseline, Sequence) and not isinstance(baseline, str) and len(baseline) == 3:
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in baseline):
            return [float(v) for v in baseline]
    raise TypeError(
        "baseline must be None (the data's mean, 0 in normalised units), a float or a colour of 3 floats "
        f"in the model's normalised input space, got {baseline!r}"
    )


def _check_target(target: object) -> str | int:
    if target in ("predicted", "label"):
        return target  # type: ignore[return-value]
    if isinstance(target, int) and not isinstance(target, bool) and target >= 0:
        return target
    raise ValueError(f"target must be 'predicted', 'label' or a class number >= 0, got {target!r}")


def _true_labels(listing: Listing, names: list[str] | None) -> tuple[list[int] | None, list[str] | None]:
    """Each image's true class in the model's numbering, from the folder layout, and the class names:
    a folder class is matched by name with the model's classes where the model names them, else
    numbered in sorted order (torchvision's ImageFolder)."""
    if listing.folder_label is None:
        return None, names
    folders = listing.folder_classes
    if names is None:
        return list(listing.folder_label), folders
    index = {name: k for k, name in enumerate(names)}
    unknown = [f for f in folders if f not in index]
    if unknown:
        return None, names  # subfolders that are not classes of the model: no labels
    return [index[folders[k]] for k in listing.folder_label], names


def plan_sweep(
    model: nn.Module,
    data,
    *,
    window=None,
    stride=None,
    baseline=None,
    target: str | int = "predicted",
    feature_layer: str | int = "conv5",
    chunk: int = 64,
    preprocessing: Preprocessing | None = None,
    approximate: Approximation | None = None,
) -> Plan:
    """Check the arguments and list the data; nothing is run or written. See :func:`sweep_dataset`."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    chunk = check_int(chunk, "chunk")
    target = _check_target(target)
    base = _check_baseline(baseline)
    if approximate is not None and not isinstance(approximate, Approximation):
        raise TypeError(f"approximate must be a zfaccel.Approximation or None, got {type(approximate).__name__}")
    approx = None if approximate is None or approximate.exact else approximate
    if preprocessing is not None and not isinstance(preprocessing, Preprocessing):
        raise TypeError(f"preprocessing must be a zfaccel Preprocessing, got {type(preprocessing).__name__}")
    prep = preprocessing or preprocessing_for(model)
    listing = list_images(data)
    if listing.dataset is not None:
        first = SweepImages(listing, prep)[0][1]
        size = tuple(first.shape[-2:])
    else:
        size = (prep.size, prep.size)
    window_hw, stride_hw = default_geometry(size, window, stride)
    if window_hw[0] > size[0] or window_hw[1] > size[1]:
        raise ValueError(f"window {window_hw[0]}x{window_hw[1]} is larger than the images ({size[0]}x{size[1]})")
    labels, names = _true_labels(listing, model_class_names(model))
    if target == "label" and labels is None and listing.dataset is None:
        why = ("its subfolders are not all classes of the model" if listing.folder_label is not None
               else "it is not in ImageFolder layout (one subfolder per class)")  # fmt: skip
        raise ValueError(f"target 'label' needs the images' classes, and the data gives none: {why}")
    layer = feature_layer
    attrs = {
        "images": len(listing),
        "grid": list(grid(size, window_hw, stride_hw)),
        "chunk": chunk,
        "window": list(window_hw),
        "stride": list(stride_hw),
        "baseline": "mean" if base is None else base,
        "feature_layer": layer,
        "target": target,
        "input_size": list(size),
        "preprocessing": {
            "size": prep.size,
            "mean": list(prep.mean),
            "std": list(prep.std),
            "resize": "shorter side, then centre crop",
        },  # fmt: skip
        "class_names": names,
        "model": {
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "weights_sha256": model_identity(model),
        },  # fmt: skip
        "data": {"listing": listing.identity, "kind": "dataset" if listing.dataset is not None else "files"},
        "approximation": None if approx is None else approx.as_dict(),
        "data_root": None if listing.root is None else str(listing.root),
        "versions": _versions(),
    }
    return Plan(listing, prep, size, window_hw, stride_hw, tuple(attrs["grid"]), base, target, labels, names, attrs,
                approx)  # fmt: skip


def _versions() -> dict:
    from zfaccel import __version__

    return {"zfaccel": __version__, "torch": torch.__version__, "python": platform.python_version()}


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _broadcast(value, rank: int, world: int):
    """Rank 0's ``value`` on every rank (a picklable object)."""
    if world == 1:
        return value
    box = [value if rank == 0 else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _open_or_create(location: str, plan: Plan, overwrite: bool) -> list[int]:
    """Rank 0: the store created (or checked against the plan), and its pending chunks. Only a sweep
    store (or an empty folder) is ever overwritten: ``overwrite`` never deletes other data."""
    local = "://" not in location
    exists = local and os.path.exists(location)
    if exists and (os.path.isfile(location) or os.listdir(location)):
        group = None
        if os.path.isdir(location):
            try:
                group = stores.open_group(location, "r+")
            except ValueError:
                group = None
        if group is None or not stores.is_sweep(group):
            raise ValueError(f"{location!r} exists and is not an occlusion sweep store; choose another store "
                             f"(it is never overwritten)")  # fmt: skip
        if not overwrite:
            stores.check_settings(dict(group.attrs), plan.attrs, location)
            group.attrs.update({"data_root": plan.attrs["data_root"], "versions": plan.attrs["versions"]})
            return stores.pending_chunks(group)
    group = stores.create(location, plan.attrs, plan.listing.paths, overwrite=True)
    return stores.pending_chunks(group)


def sweep_dataset(
    model: nn.Module,
    data: str | os.PathLike | Sequence[str | os.PathLike] | Dataset,
    store: str | os.PathLike,
    *,
    window: int | tuple[int, int] | None = None,
    stride: int | tuple[int, int] | None = None,
    baseline: float | Sequence[float] | None = None,
    target: str | int = "predicted",
    feature_layer: str | int = "conv5",
    chunk: int = 64,
    batch_size: int | None = None,
    workers: int = 0,
    preprocessing: Preprocessing | None = None,
    strict: bool = False,
    overwrite: bool = False,
    backend: str = "auto",
    approximate: Approximation | None = None,
    show_progress: bool = False,
) -> stores.SweepStore:
    """Occlusion maps (paper Fig. 7) of every image of ``data`` into the zarr store ``store``.

    Args:
        model: a CNN in eval mode on its device (a plain CNN runs by exact incremental inference).
        data: a folder of images (searched recursively; ImageFolder layout gives labels), a text
            file of paths, a list of paths, or a torch Dataset of (float (3, H, W) image already
            preprocessed, int label) items.
        store: the zarr store's path (or a URL zarr's fsspec store takes). Rerunning with the same
            settings resumes; other settings, another model or other data are refused (ValueError).
        window, stride: as ``Occlusion.sweep`` (default: 32/8 at 224 px, 16/4 at 64 px).
        baseline: None (the data's mean: 0 in normalised units), a float or a colour of 3 floats.
        target: "predicted" (each image's clean prediction), "label" (its true class) or a class.
        feature_layer: the layer whose strongest map is totalled (Fig. 7b).
        chunk: images per chunk of the store (the unit of work, of resumption and of failure).
        batch_size: occluder positions per batch (default: sized from free memory).
        workers: DataLoader worker processes decoding images (0: in this process).
        preprocessing: how files become model inputs (default: the model's).
        strict: an unreadable image is an error (ValueError naming it) instead of a failed entry.
        overwrite: start afresh, replacing what ``store`` holds.
        backend: the kernels' backend.
        approximate: a ``zfaccel.Approximation`` (projective-field threshold, drill-down) to compute
            less than the exact maps; recorded in the store, so a resume with another is refused.
        show_progress: a progress bar over images (rank 0 only).

    Returns:
        The store, opened for reading (:func:`open_sweep`).
    """
    plan = plan_sweep(model, data, window=window, stride=stride, baseline=baseline, target=target,
                      feature_layer=feature_layer, chunk=chunk, preprocessing=preprocessing,
                      approximate=approximate)  # fmt: skip
    check_int(workers, "workers", low=0)
    if not isinstance(strict, bool) or not isinstance(overwrite, bool):
        raise TypeError("strict and overwrite must be bools")
    location = stores.store_location(store)
    rank, world = _distributed()
    # Rank 0 checks or creates the store before anyone reads it; every rank learns the pending chunks
    # (or the reason to stop) from it, so that no rank starts writing before all have the same list.
    # Any failure of rank 0's is broadcast too: the other ranks must not wait for a list that never comes.
    failure: Exception | None = None
    outcome: tuple[list[int] | None, str | None] = (None, None)
    if rank == 0:
        try:
            outcome = (_open_or_create(location, plan, overwrite), None)
        except Exception as err:
            failure, outcome = err, (None, str(err))
    pending, error = _broadcast(outcome, rank, world)
    if failure is not None:
        raise failure
    if error is not None:
        raise ValueError(error)
    group = stores.open_group(location, "r+")
    if rank != 0:  # every rank's model must be the one the store records
        stores.check_settings(dict(group.attrs), plan.attrs, location)
    mine = pending[rank::world]
    occ = Occlusion(model, backend=backend)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    n = len(plan.listing)
    lo_hi = [(k * plan.attrs["chunk"], min(n, (k + 1) * plan.attrs["chunk"])) for k in mine]
    loader = DataLoader(
        SweepImages(plan.listing, plan.preprocessing),
        batch_sampler=[list(range(lo, hi)) for lo, hi in lo_hi],
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    total = sum(hi - lo for lo, hi in lo_hi)
    bar = tqdm(total=total, unit="img", desc="sweep", disable=not show_progress or rank != 0)
    start, positions = time.perf_counter(), 0
    try:
        for k, (index, images, labels, errors) in zip(mine, loader, strict=True):
            values = _sweep_chunk(occ, plan, index, images, labels, list(errors), strict, batch_size, device, dtype)
            stores.write_chunk(group, k, values)
            positions += int((values["status"] == stores.DONE).sum()) * plan.positions
            bar.update(len(index))
            bar.set_postfix_str(f"{positions / max(time.perf_counter() - start, 1e-9):.0f} positions/s")
    finally:
        bar.close()
    if world > 1:
        torch.distributed.barrier()
    return stores.open_sweep(location)


def _sweep_chunk(occ: Occlusion, plan: Plan, index, images, labels, errors: list[str], strict: bool,
                 batch_size, device, dtype) -> dict[str, np.ndarray]:  # fmt: skip
    """One chunk's arrays: the maps of its readable images, NaN / -1 and status 2 for the others."""
    n = len(index)
    n_h, n_w = plan.grid
    values = {name: np.full((n, n_h, n_w), fill, dtype=dtype_) for name, (dtype_, fill) in stores.MAPS.items()}
    values.update({name: np.full(n, fill, dtype=dtype_) for name, (dtype_, fill) in stores.PER_IMAGE.items()})
    values["error"] = np.array(errors, dtype=object).astype(str)
    good = [i for i, e in enumerate(errors) if not e]
    bad = [i for i, e in enumerate(errors) if e]
    if bad and strict:
        i = bad[0]
        raise ValueError(f"cannot read image {int(index[i])} ({plan.listing.paths[int(index[i])]}): {errors[i]}")
    true = [plan.labels[int(index[i])] for i in range(n)] if plan.labels is not None else labels.tolist()
    values["true_label"][:] = true
    for g in range(0, len(good), GROUP):
        rows = good[g : g + GROUP]
        known = all(true[i] >= 0 for i in rows)
        if plan.target == "label" and not known:
            missing = next(int(index[i]) for i in rows if true[i] < 0)
            raise ValueError(f"target 'label': image {missing} ({plan.listing.paths[missing]}) has no label")
        res = occ.sweep(
            images[rows].to(device, dtype, non_blocking=True),
            target=plan.target,
            window=plan.window,
            stride=plan.stride,
            baseline=plan.baseline,
            feature_layer=plan.attrs["feature_layer"],
            batch_size=batch_size,
            labels=[true[i] for i in rows] if known else None,
            approximate=plan.approximation,
        )
        for name in (*stores.MAPS, "clean_prob", "clean_feature", "clean_label", "clean_label_prob", "target",
                     "feature_channel"):  # fmt: skip
            values[name][rows] = getattr(res, name).numpy()
    values["status"] = np.where(np.array([not e for e in errors]), stores.DONE, stores.FAILED).astype(np.int8)
    return values


@dataclass(frozen=True)
class Estimate:
    """What a sweep would do and how long it would take (``zfaccel sweep --dry-run``)."""

    images: int
    positions_per_image: int
    grid: tuple[int, int]
    macs_incremental: float | None  # per position; None where the model is not a plain CNN
    macs_full: float | None
    positions_per_second: float
    pending: int  # images still to do (all of them for a new store)

    @property
    def seconds(self) -> float:
        return self.pending * self.positions_per_image / self.positions_per_second


def estimate(model: nn.Module, data, store: str | os.PathLike | None = None, *, batch_size=None,
             backend: str = "auto", **settings) -> Estimate:  # fmt: skip
    """Plan the sweep, count its MACs and time it on the first readable image (or a random one),
    writing nothing. ``settings`` are sweep_dataset's window, stride, baseline, target,
    feature_layer, chunk, preprocessing and approximate (its tau counts in the MACs; its drill-down
    in the calibration's positions/s, which are positions of the requested grid)."""
    plan = plan_sweep(model, data, **settings)
    tau = 1.0 if plan.approximation is None else plan.approximation.tau
    try:
        macs = count_macs(model, plan.input_size, plan.window, plan.stride, tau=tau)
        inc, full = macs.incremental, macs.full
    except (TypeError, ValueError):
        inc = full = None
    pending = len(plan.listing)
    location = None if store is None else stores.store_location(store)
    if location is not None and "://" not in location and os.path.exists(location):
        group = stores.open_group(location, "r")
        if stores.is_sweep(group):
            stores.check_settings(dict(group.attrs), plan.attrs, location)
            status = group["status"]
            pending = sum(int((status[lo:hi] == stores.PENDING).sum()) for lo, hi in
                          stores.SweepStore(group, location).chunks())  # fmt: skip
    reader = SweepImages(plan.listing, plan.preprocessing)
    image = next((item[1] for item in (reader[i] for i in range(min(len(reader), 8))) if not item[3]), None)
    param = next(model.parameters())
    if image is None:
        image = torch.randn(3, *plan.input_size)
    x = image[None].to(param.device, param.dtype)
    occ = Occlusion(model, backend=backend)
    run = lambda: occ.sweep(x, window=plan.window, stride=plan.stride, baseline=plan.baseline,  # noqa: E731
                            feature_layer=plan.attrs["feature_layer"], batch_size=batch_size,
                            approximate=plan.approximation)  # fmt: skip
    run()  # warm-up: allocator, oneDNN primitives, compiled kernels
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    return Estimate(len(plan.listing), plan.positions, plan.grid, inc, full, plan.positions / seconds, pending)
