"""What a saved partial result was made from, so that resuming it with other inputs is refused.

A long run (top-k mining, an occlusion sweep) saves its progress and resumes it later; the
resumed part must come from the same model, data and settings, or the result silently mixes two
runs. These helpers give each input a short identity (a sha256 hex digest or a plain value) and
say, in one line, which of them differ from the saved ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import torch
from torch import nn

HASH_SHOWN = 12  # hex digits of a hash shown in messages: 48 bits, enough to tell two apart by eye
LONGEST_SHOWN = 8  # a longer list shows its first items, its last one and its length
_HEX = frozenset("0123456789abcdef")


def _text(h: hashlib._Hash, text: str) -> None:
    # NUL ends each field: it occurs in no module name, state_dict key, shape or dtype name.
    h.update(text.encode("utf-8") + b"\0")


def model_identity(model: nn.Module) -> str:
    """A sha256 hex digest (64 characters) of ``model``'s class and weights.

    Hashed in order: the class's module and qualified name, then for every state_dict entry (in
    key order) its key, shape, dtype and the bytes of the tensor (moved to the CPU, contiguous).
    The same weights give the same digest on any device; any changed weight, buffer, shape or dtype
    gives another. Non-tensor entries (a module's extra state) are hashed by type and repr.
    ZFNet's 250 MB of float32 weights take about 0.15 s on one CPU core (sha256 at ~2 GB/s).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    h = hashlib.sha256()
    cls = type(model)
    _text(h, f"{cls.__module__}.{cls.__qualname__}")
    for key, value in model.state_dict().items():
        _text(h, key)
        if not isinstance(value, torch.Tensor):
            _text(h, f"{type(value).__qualname__} {value!r}")
            continue
        t = value.detach().to("cpu").contiguous()
        _text(h, f"{tuple(t.shape)} {t.dtype}")
        # Reinterpreted as bytes: also bfloat16 and bool, which numpy cannot hold as such. The length
        # follows from shape and dtype, so no separator is needed after it.
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def listing_identity(items: Sequence[str]) -> str:
    """A sha256 hex digest (64 characters) of a list of strings, in the given order (sort first
    when order does not matter, e.g. relative file paths). Each item is followed by a NUL, which
    no item may hold (no file path can): ["ab"] and ["a", "b"] hash differently."""
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise TypeError(f"items must be a sequence of strings, got {type(items).__name__}")
    h = hashlib.sha256()
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"items[{i}] must be a str, got {type(item).__name__}")
        if "\0" in item:
            raise ValueError(f"items[{i}] holds a NUL character, the separator: {item!r}")
        _text(h, item)
    return h.hexdigest()


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) >= 32 and set(value) <= _HEX


def format_value(value: object) -> str:
    """A setting for a one-line message: a tuple of two ints as a size (16x16), a hex hash of 32+
    digits as "(hash 3f2a9c0d1e2f…)", a list longer than 8 as its first items, last one and length,
    None as "none", anything else as str()."""
    if value is None:
        return "none"
    if _is_hash(value):
        return f"(hash {value[:HASH_SHOWN]}…)"
    if isinstance(value, tuple) and len(value) == 2 and all(type(v) is int for v in value):
        return f"{value[0]}x{value[1]}"
    if isinstance(value, list | tuple):
        shown = [format_value(v) for v in value]
        if len(shown) > LONGEST_SHOWN:
            shown = [*shown[:3], "…", shown[-1]]
            return f"[{', '.join(shown)}] ({len(value)} values)"
        return f"[{', '.join(shown)}]" if isinstance(value, list) else f"({', '.join(shown)})"
    return str(value)


def describe_mismatch(saved: Mapping[str, object], current: Mapping[str, object], what: str) -> str | None:
    """None when ``saved`` and ``current`` hold the same settings; otherwise one line naming every
    setting that differs, e.g. "k 5 differs from the checkpoint's 9; model (hash 3f2a9c0d1e2f…)
    differs from the checkpoint's (hash 91bc0a7d3e11…)" for ``what="the checkpoint"`` (the saved
    side). A key on one side only counts as differing. Values are shown with format_value."""
    if not isinstance(saved, Mapping) or not isinstance(current, Mapping):
        raise TypeError(f"saved and current must be mappings, got {type(saved).__name__} and {type(current).__name__}")
    parts = []
    for key, value in current.items():
        if key not in saved:
            parts.append(f"{key} {format_value(value)} is not recorded in {what}")
        elif saved[key] != value:
            parts.append(f"{key} {format_value(value)} differs from {what}'s {format_value(saved[key])}")
    parts += [f"{what} records {key} {format_value(v)}, missing here" for key, v in saved.items() if key not in current]
    return "; ".join(parts) or None
