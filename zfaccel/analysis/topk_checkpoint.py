"""The top-k mining checkpoint: the table so far plus what it was made from.

A resumed run merges new images into the saved table, so the saved part must come from the same
model, data and settings; otherwise the result silently mixes two runs (a checkpoint made with one
weights file and resumed with another gave a table of both models' activations). The checkpoint
therefore records the run's settings (see run_settings) and a resume with any other is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import DataLoader

from zfaccel.atomic import replace_atomically
from zfaccel.identity import describe_mismatch, listing_identity, model_identity
from zfaccel.models.preprocessing import ImageFolder, Preprocessing

if TYPE_CHECKING:
    from zfaccel.analysis.topk import TopActivations

START_OVER = "remove it or pass another checkpoint file to start over"
# TopActivations' fields a checkpoint keeps, besides "settings"; a failure is (index, path, message).
STATE = ("layer_index", "channels", "values", "image_index", "position", "images_seen", "failures")


def data_settings(data) -> dict[str, object]:
    """What identifies the data: its kind ("folder", a Dataset's type name, "DataLoader over <type>"
    or an iterable's type name), its size where it has one, and for a folder a hash of its sorted
    file names."""
    source = data.dataset if isinstance(data, DataLoader) else data
    kind = "folder" if isinstance(source, ImageFolder) else type(source).__name__
    settings: dict[str, object] = {"data": kind if source is data else f"DataLoader over {kind}"}
    if hasattr(source, "__len__"):
        settings["data size"] = len(source)
    if isinstance(source, ImageFolder):
        # ImageFolder reads one folder, not its subfolders: a file's name is its relative path.
        settings["data files"] = listing_identity(sorted(p.name for p in source.files))
    return settings


def run_settings(
    model: nn.Module, data, layer: str, k: int, channels: torch.Tensor, preprocessing: Preprocessing
) -> dict[str, object]:
    """Everything that changes a mining table, as plain values (loadable with weights_only=True):
    the weights' hash (model_identity), the data (data_settings), the layer's name, k, the channels
    (int64 (K,) -> list) and the preprocessing."""
    mean, std = (tuple(float(v) for v in p) for p in (preprocessing.mean, preprocessing.std))
    return {
        "model": model_identity(model),
        **data_settings(data),
        "layer": layer,
        "k": k,
        "channels": channels.tolist(),
        "preprocessing": f"{preprocessing.size} px, mean {mean}, std {std}",
    }


def save_checkpoint(top: TopActivations, settings: dict[str, object], path: str | os.PathLike) -> None:
    """The table and the settings, atomically: a crash mid-write leaves the previous checkpoint intact."""
    replace_atomically(path, lambda tmp: torch.save({**top.state(), "settings": settings}, tmp))


def load_checkpoint(path: str | os.PathLike, settings: dict[str, object]) -> dict:
    """The state saved in ``path`` (the STATE keys and "settings"); ValueError when it cannot be read,
    lacks the settings or the failures (an older zfaccel wrote it), or was made with other
    ``settings`` (naming each that differs)."""
    name = repr(str(Path(path)))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, or refused by weights_only: say which file
        raise ValueError(f"cannot read the checkpoint {name}: {type(err).__name__}: {err}") from err
    if not isinstance(state, dict) or "values" not in state:
        raise ValueError(f"{name} is not a top-k checkpoint; {START_OVER}")
    if "settings" not in state or not set(STATE) <= set(state):
        raise ValueError(f"checkpoint {name} does not record the model, data and settings it was made with "
                         f"(an older zfaccel wrote it), so it cannot be resumed safely; {START_OVER}")  # fmt: skip
    differences = describe_mismatch(state["settings"], settings, "the checkpoint")
    if differences:
        raise ValueError(f"checkpoint {name} was made with other settings: {differences}; {START_OVER}")
    return state
