"""Training's files, each replaced atomically (zfaccel.atomic): a crash or Ctrl-C mid-write leaves the
previous version intact."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from zfaccel.atomic import replace_atomically


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save ``obj`` (tensors, dicts, lists, numbers, strings only: loadable with weights_only=True)."""
    return replace_atomically(path, lambda tmp: torch.save(obj, tmp))


def save_json_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON."""
    return replace_atomically(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=1) + "\n"))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A training checkpoint written by save_atomic, read without unpickling code; ValueError naming
    the file when it is unreadable or not a checkpoint."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # refused by weights_only, or truncated: say which file
        raise ValueError(f"cannot read the checkpoint {str(path)!r}: {type(err).__name__}: {err}") from err
    missing = {"model", "optimisers", "epoch", "config", "log"} - set(state if isinstance(state, dict) else ())
    if missing:
        raise ValueError(f"{str(path)!r} is not a zfaccel training checkpoint (missing {sorted(missing)})")
    return state
