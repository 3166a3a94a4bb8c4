"""Files replaced atomically: a crash or Ctrl-C mid-write leaves the previous version intact.

Each file is written beside its target under a temporary name that keeps its suffix
(np.savez would append ".npz" otherwise), then moved over it with os.replace, which is
atomic on POSIX and Windows within one filesystem.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then move it over ``path`` (its folder is
    created). The temporary file never outlives the call, even when ``write`` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
