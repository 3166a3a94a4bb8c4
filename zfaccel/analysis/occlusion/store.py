"""The zarr v3 store of a dataset sweep: one group, arrays whose first axis is the image index N.

Arrays (chunks of ``chunk`` images along N, the unit of work, so that each chunk of
each array is one file written by one process):

- ``prob``, ``feature`` (N, nH, nW) float32 and ``label`` (N, nH, nW) int32: the maps of
  paper Fig. 7 d, b, e (NaN / -1 for failed or pending images);
- ``clean_prob``, ``clean_feature``, ``clean_label_prob`` (N,) float32; ``clean_label``, ``target``,
  ``feature_channel``, ``true_label`` (N,) int32 (-1: unknown);
- ``status`` (N,) int8: 0 pending, 1 done, 2 failed; ``path`` and ``error`` (N,) strings.

A chunk is written whole, array by array, ``status`` last: a status of done vouches for
maps already on disk (zarr's local store replaces each chunk file atomically), so a
process killed at any moment leaves at most its chunks in flight pending. The group's
attributes hold the settings, the model's and the data's identities and the versions;
a run whose settings differ from the store's is refused, naming what differs.
Reading is lazy: the arrays are zarr arrays, read chunk by chunk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zfaccel.analysis.occlusion.result import OcclusionResult
from zfaccel.identity import describe_mismatch
from zfaccel.models.preprocessing import Preprocessing

PENDING, DONE, FAILED = 0, 1, 2
FORMAT = "zfaccel-occlusion-sweep/1"  # attrs["format"]: what makes a zarr group a sweep store

MAPS = {"prob": ("float32", np.nan), "feature": ("float32", np.nan), "label": ("int32", -1)}
PER_IMAGE = {
    "clean_prob": ("float32", np.nan),
    "clean_feature": ("float32", np.nan),
    "clean_label": ("int32", -1),
    "clean_label_prob": ("float32", np.nan),
    "target": ("int32", -1),
    "feature_channel": ("int32", -1),
    "true_label": ("int32", -1),
}
TEXT = ("path", "error")
# What a resumed run must share with the store (everything but versions and where the data lies).
SETTINGS = ("images", "grid", "chunk", "window", "stride", "baseline", "feature_layer", "target", "input_size",
            "preprocessing", "class_names", "model", "data", "approximation")  # fmt: skip


def _zarr():
    import zarr

    return zarr


def store_location(store: str | os.PathLike) -> str:
    """A local path as a string, or a URL zarr's fsspec store takes (s3://..., memory://...)."""
    return store if isinstance(store, str) and "://" in store else os.fspath(store)


def open_group(store: str | os.PathLike, mode: str):
    location = store_location(store)
    try:
        return _zarr().open_group(store=location, mode=mode)
    except (FileNotFoundError, NotADirectoryError, PermissionError, OSError) as err:
        why = err.strerror or str(err) if isinstance(err, OSError) else str(err)
        raise ValueError(f"cannot open the store {location!r}: {why}") from err


def is_sweep(group) -> bool:
    return group.attrs.get("format") == FORMAT


def create(store: str | os.PathLike, attrs: Mapping[str, object], paths: list[str], overwrite: bool = False):
    """A new, empty (all pending) store for ``len(paths)`` images with ``attrs`` (settings, identities,
    versions; ``attrs["grid"]`` and ``attrs["chunk"]`` shape the arrays). ``overwrite`` replaces
    whatever is there; otherwise an existing store is an error (resume it with ``open_for_run``).
    """
    location = store_location(store)
    if not overwrite and "://" not in location and Path(location).exists():
        raise ValueError(f"{location!r} already exists; resume it with the same settings, or overwrite it")
    group = open_group(location, "w")
    n, (n_h, n_w), chunk = len(paths), attrs["grid"], int(attrs["chunk"])
    for name, (dtype, fill) in MAPS.items():
        group.create_array(name, shape=(n, n_h, n_w), chunks=(chunk, n_h, n_w), dtype=dtype, fill_value=fill)
    for name, (dtype, fill) in PER_IMAGE.items():
        group.create_array(name, shape=(n,), chunks=(chunk,), dtype=dtype, fill_value=fill)
    group.create_array("status", shape=(n,), chunks=(chunk,), dtype="int8", fill_value=PENDING)
    for name in TEXT:
        group.create_array(name, shape=(n,), chunks=(chunk,), dtype=str)
    # The listing, chunk by chunk (each chunk one file, as the others).
    path = group["path"]
    for lo in range(0, n, chunk):
        path[lo : lo + chunk] = np.array(paths[lo : lo + chunk], dtype=object).astype(str)
    group.attrs.update({**attrs, "format": FORMAT})
    return group


def _comparable(value: object) -> object:
    """JSON's lists of two ints back to (h, w) tuples, shown as 16x16 in messages; an approximation's
    settings as words ("tau 0.5, drill-down 0.25"; "exact" for none)."""
    if isinstance(value, list | tuple) and len(value) == 2 and all(type(v) is int for v in value):
        return tuple(value)
    if isinstance(value, dict) and "tau" in value:
        words = [f"tau {value['tau']:g}"]
        if value.get("drill_down") is not None:
            words.append(f"drill-down {value['drill_down']:g}")
        if value.get("coarse_stride") is not None:
            words.append("coarse stride {}x{}".format(*value["coarse_stride"]))
        return ", ".join(words)
    return value


def check_settings(saved: Mapping[str, object], current: Mapping[str, object], location: str) -> None:
    """ValueError naming every setting of ``current`` that differs from the store's ``saved`` ones."""
    mine = {k: _comparable(current.get(k)) for k in SETTINGS}
    theirs = {k: _comparable(saved.get(k)) for k in SETTINGS}
    mine["approximation"] = mine["approximation"] or "exact"
    theirs["approximation"] = theirs["approximation"] or "exact"
    differ = describe_mismatch(theirs, mine, "the store")
    if differ:
        raise ValueError(f"{location!r} holds a sweep with other settings: {differ}; rerun with the store's "
                         f"settings to resume it, or overwrite it")  # fmt: skip


def pending_chunks(group) -> list[int]:
    """Chunk numbers with any image still pending, read chunk by chunk."""
    status = group["status"]
    chunk = status.chunks[0]
    return [k for k, lo in enumerate(range(0, status.shape[0], chunk)) if (status[lo : lo + chunk] == PENDING).any()]


def write_chunk(group, k: int, values: Mapping[str, np.ndarray]) -> None:
    """Write chunk ``k`` of every array in ``values`` (whole chunks), ``status`` last."""
    chunk = group["status"].chunks[0]
    lo = k * chunk
    for name, array in values.items():
        if name != "status":
            group[name][lo : lo + len(array)] = array
    group["status"][lo : lo + len(values["status"])] = values["status"]


@dataclass(frozen=True)
class Failure:
    """An image the sweep could not read: its index, path (relative to the data) and why."""

    index: int
    path: str
    error: str


class SweepStore:
    """A sweep's store opened for reading: the arrays as lazy zarr arrays, the settings as ``attrs``.

    Attributes ``prob``, ``feature``, ``label``, ``clean_prob``, ``clean_feature``, ``clean_label``,
    ``clean_label_prob``, ``target``, ``feature_channel``, ``true_label``, ``status``, ``path``,
    ``error`` are zarr arrays (index them to read: ``store.prob[10:20]``); ``len(store)`` is the
    number of images.
    """

    ARRAYS = (*MAPS, *PER_IMAGE, "status", *TEXT)

    def __init__(self, group, location: str) -> None:
        self.group = group
        self.location = location
        self.attrs = dict(group.attrs)

    def __getattr__(self, name: str):
        if name in SweepStore.ARRAYS:
            return self.group[name]
        raise AttributeError(name)

    def __len__(self) -> int:
        return int(self.group["status"].shape[0])

    def __repr__(self) -> str:
        counts = self.counts()
        n_h, n_w = self.attrs["grid"]
        return (f"SweepStore({self.location!r}, images={len(self)}, done={counts[DONE]}, failed={counts[FAILED]}, "
                f"pending={counts[PENDING]}, grid={n_h}x{n_w})")  # fmt: skip

    @property
    def chunk(self) -> int:
        return int(self.attrs["chunk"])

    def chunks(self) -> Iterator[tuple[int, int]]:
        """(lo, hi) image ranges of the chunks, in order: read a large store a chunk at a time."""
        for lo in range(0, len(self), self.chunk):
            yield lo, min(lo + self.chunk, len(self))

    def counts(self) -> dict[int, int]:
        """How many images are pending, done and failed (read chunk by chunk)."""
        counts = {PENDING: 0, DONE: 0, FAILED: 0}
        for lo, hi in self.chunks():
            values, n = np.unique(self.group["status"][lo:hi], return_counts=True)
            for v, c in zip(values.tolist(), n.tolist(), strict=True):
                counts[v] = counts.get(v, 0) + c
        return counts

    def failures(self) -> list[Failure]:
        """Every failed image: (index, path, error)."""
        out = []
        for lo, hi in self.chunks():
            bad = np.nonzero(self.group["status"][lo:hi] == FAILED)[0]
            if len(bad):
                paths, errors = self.group["path"][lo:hi], self.group["error"][lo:hi]
                out += [Failure(lo + int(i), str(paths[i]), str(errors[i])) for i in bad]
        return out

    def preprocessing(self) -> Preprocessing:
        p = self.attrs["preprocessing"]
        return Preprocessing(int(p["size"]), tuple(p["mean"]), tuple(p["std"]))

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` as the model saw it: (3, S, S) float32, re-read from its file and preprocessed."""
        root = self.attrs.get("data_root")
        if root is None:
            raise ValueError(f"image {i} came from a Dataset, not a file: pass it to result(i, image=...)")
        return self.preprocessing().load(Path(root) / str(self.group["path"][i]))

    def result(self, i: int, image: torch.Tensor | None = None) -> OcclusionResult:
        """Image ``i``'s maps as an OcclusionResult of one image (its ``render_*`` methods draw Fig. 7),
        with the image re-read from its file (or ``image``, (3, S, S), for a Dataset's item).
        ValueError for an index out of range or an image that is not done."""
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < n:
            raise ValueError(f"index must be an image number 0..{n - 1}, got {i!r}")
        i = int(i)
        status = int(self.group["status"][i])
        if status != DONE:
            state = "failed: " + str(self.group["error"][i]) if status == FAILED else "pending"
            raise ValueError(f"image {i} ({self.group['path'][i]}) is {state}")
        picture = self.image(i) if image is None else image
        one = lambda name, dtype: torch.as_tensor(np.asarray(self.group[name][i : i + 1]), dtype=dtype)  # noqa: E731
        true = one("true_label", torch.int64)
        return OcclusionResult(
            images=picture.float().reshape(1, *picture.shape[-3:]).cpu(),
            prob=one("prob", torch.float32),
            label=one("label", torch.int64),
            feature=one("feature", torch.float32),
            feature_channel=one("feature_channel", torch.int64),
            target=one("target", torch.int64),
            clean_prob=one("clean_prob", torch.float32),
            clean_label=one("clean_label", torch.int64),
            clean_feature=one("clean_feature", torch.float32),
            window=tuple(self.attrs["window"]),
            stride=tuple(self.attrs["stride"]),
            feature_layer=self.attrs["feature_layer"],
            true_label=None if int(true[0]) < 0 else true,
            clean_label_prob=one("clean_label_prob", torch.float32),
        )


def open_sweep(store: str | os.PathLike) -> SweepStore:
    """A sweep's store, for reading (lazily). ValueError when ``store`` is missing or not a sweep."""
    location = store_location(store)
    if "://" not in location and not Path(location).exists():
        raise ValueError(f"the store {location!r} does not exist")
    group = open_group(location, "r")
    if not is_sweep(group):
        raise ValueError(f"{location!r} is not an occlusion sweep store (no '{FORMAT}' format attribute)")
    return SweepStore(group, location)
