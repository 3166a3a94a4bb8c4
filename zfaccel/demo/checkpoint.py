"""Atomic files for training: a crash or Ctrl-C mid-write leaves the previous version intact.

Each file is written beside its target under a temporary name, then moved over it
with os.replace, which is atomic on POSIX and Windows within one filesystem.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save ``obj`` (tensors, dicts, lists, numbers, strings only: loadable with weights_only=True)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def save_json_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A training checkpoint written by save_atomic, read without unpickling code; ValueError naming
    the file when it is unreadable or not a checkpoint."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # refused by weights_only, or truncated: say which file
        raise ValueError(f"cannot read the checkpoint {str(path)!r}: {type(err).__name__}: {err}") from err
    missing = {"model", "optimizer", "scheduler", "epoch", "config", "log"} - set(
        state if isinstance(state, dict) else ()
    )
    if missing:
        raise ValueError(f"{str(path)!r} is not a zfaccel training checkpoint (missing {sorted(missing)})")
    return state
