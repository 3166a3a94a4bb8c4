"""Loading weights without executing code: safetensors files or ``torch.load(weights_only=True)``.

Also maps the state_dict of pytorchcv's ZFNet (the one public pretrained ZFNet)
onto :func:`zfaccel.models.zfnet`.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from zfaccel.models.zfnet import ZFNet, zfnet

StateDict = Mapping[str, torch.Tensor]


# How each kind of weights file begins: torch.save's zip archive (its default since torch 1.6), the
# legacy torch.save pickle (the PROTO opcode 0x80; torch writes protocol 2), and safetensors (an
# 8-byte little-endian header length, then the JSON header's "{").
ZIP_MAGIC = b"PK"
PICKLE_PROTO = b"\x80"
SAFETENSORS_MAX_HEADER = 100_000_000  # the safetensors format's own limit on its JSON header, in bytes
# torch's refusal of a pickle that needs more than tensors; its advice (weights_only=False) runs code.
REFUSED = "Weights only load failed"


def weights_format(path: Path) -> str | None:
    """What the file ``path`` is, from its first 9 bytes: ``"zip"``, ``"pickle"``, ``"safetensors"``, or None."""
    with open(path, "rb") as f:
        head = f.read(9)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(PICKLE_PROTO):
        return "pickle"
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= SAFETENSORS_MAX_HEADER:
        return "safetensors"
    return None


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict from a .safetensors file or a torch file, never unpickling code.

    torch files may hold the state_dict itself or a dict with it under "state_dict"
    or "model". FileNotFoundError / ValueError name the path when it is missing, is
    no weights file, holds Python objects other than tensors, or holds something else.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    kind = weights_format(path)
    if kind is None:
        raise ValueError(
            f"{str(path)!r} is not a weights file: neither a torch checkpoint (zip or pickle) nor .safetensors"
        )
    if kind == "safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as err:
            raise ValueError(
                f"{str(path)!r} is a safetensors file: reading it needs the safetensors package "
                f"(pip install safetensors)"
            ) from err
        try:
            return dict(load_file(str(path)))
        except Exception as err:  # a header or data the safetensors reader refuses
            raise ValueError(_unreadable(path, err)) from err
    try:
        with warnings.catch_warnings():
            # torch warns of pickle protocols other than 2 on stderr; the load below says what went wrong
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused or a corrupt file: say which file
        raise ValueError(_unreadable(path, err)) from err
    if isinstance(data, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(data.get(key), Mapping):
                data = data[key]
    if not isinstance(data, Mapping):
        raise ValueError(f"{str(path)!r} holds a {type(data).__name__}, not a state_dict of tensors")
    other = next((k for k, v in data.items() if not isinstance(v, torch.Tensor)), None)
    if other is not None:
        held = type(data[other]).__name__
        raise ValueError(f"{str(path)!r} does not hold a state_dict of tensors: its {other!r} is a {held}")
    return dict(data)


def _unreadable(path: Path, err: Exception) -> str:
    """One line saying why torch.load(weights_only=True) could not read ``path``, without torch's advice."""
    message = str(err)
    if REFUSED in message:
        found = re.search(r"GLOBAL (\S+) was not an allowed global", message)
        what = f"{found.group(1)}: code" if found else "code"
        return (
            f"{str(path)!r} holds Python objects other than tensors ({what} that unpickling would run); zfaccel "
            f"loads weights only and will not run it: save a plain state_dict, torch.save(model.state_dict(), path)"
        )
    # torch's first sentence says what failed ("... failed finding central directory"); the rest is advice
    detail = message.splitlines()[0].split(". ")[0] if message else "the file ends early"
    return f"cannot read weights from {str(path)!r}: {type(err).__name__}: {detail}"


def mismatch(model: nn.Module, state: StateDict, *, strict: bool = True) -> str | None:
    """One line listing, with ``strict``, the keys ``state`` lacks or has in excess against ``model``'s
    own state_dict, and the shapes that differ; None when they fit."""
    own = model.state_dict()
    found = {}
    if strict:
        found = {"missing": [k for k in own if k not in state], "unexpected": [k for k in state if k not in own]}
    found["of another shape"] = [
        f"{k} {tuple(state[k].shape)} where the model has {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    parts = [f"{len(v)} {what} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})" for what, v in found.items() if v]
    return "; ".join(parts) or None


def load_weights(
    model: nn.Module, weights: str | os.PathLike | StateDict, *, strict: bool = True, source: str | None = None
) -> nn.Module:
    """Load a file or a state_dict into ``model`` (in place) and return it.

    ValueError in one line when they do not fit (shapes that differ and, with ``strict``, keys
    missing or unexpected), naming ``source`` (default: "the weights in '<file>'" or "the weights").
    """
    if isinstance(weights, str | os.PathLike):
        source = source or f"the weights in {str(weights)!r}"
        state = read_state_dict(weights)
    else:
        state = dict(weights)
    problem = mismatch(model, state, strict=strict)
    if problem:
        raise ValueError(f"{source or 'the weights'} do not fit {type(model).__name__}: {problem}")
    model.load_state_dict(state, strict=strict)
    return model


# pytorchcv ZFNet ("zfnet", version a) -> zfaccel ZFNet(lrn_before_pool=True) parameter names.
PYTORCHCV_ZFNET_KEYS = {
    "features.stage1.unit1.conv": "features.0",
    "features.stage2.unit1.conv": "features.4",
    "features.stage3.unit1.conv": "features.8",
    "features.stage3.unit2.conv": "features.10",
    "features.stage3.unit3.conv": "features.12",
    "output.fc1.fc": "classifier.0",
    "output.fc2.fc": "classifier.3",
    "output.fc3": "classifier.6",
}


def from_pytorchcv_zfnet(state: StateDict) -> dict[str, torch.Tensor]:
    """Rename a pytorchcv ZFNet state_dict to zfaccel's ZFNet; KeyError lists what is missing or extra."""
    out, seen = {}, set()
    for old, new in PYTORCHCV_ZFNET_KEYS.items():
        for suffix in ("weight", "bias"):
            key = f"{old}.{suffix}"
            if key not in state:
                raise KeyError(f"not a pytorchcv ZFNet state_dict: {key!r} is missing")
            out[f"{new}.{suffix}"] = state[key]
            seen.add(key)
    extra = sorted(set(state) - seen)
    if extra:
        raise KeyError(f"not a pytorchcv ZFNet state_dict: unexpected keys {extra[:5]}")
    return out


def zfnet_from_pytorchcv(weights: str | os.PathLike | StateDict) -> ZFNet:
    """pytorchcv's pretrained ZFNet as a zfaccel ZFNet: its layer order (normalise, then pool),
    its number of classes, its weights. Nothing is downloaded: pass the file you have."""
    state = read_state_dict(weights) if isinstance(weights, str | os.PathLike) else dict(weights)
    mapped = from_pytorchcv_zfnet(state)
    model = zfnet(mapped["classifier.6.weight"].shape[0], lrn_before_pool=True)
    return load_weights(model, mapped)
