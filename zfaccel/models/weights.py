"""Loading weights without executing code: safetensors files or ``torch.load(weights_only=True)``.

Also maps the state_dict of pytorchcv's ZFNet (the one public pretrained ZFNet)
onto :func:`zfaccel.models.zfnet`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from zfaccel.models.zfnet import ZFNet, zfnet

StateDict = Mapping[str, torch.Tensor]


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict from a .safetensors file or a torch file, never unpickling code.

    torch files may hold the state_dict itself or a dict with it under "state_dict"
    or "model". FileNotFoundError / ValueError name the path when it is missing or
    holds something else.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as err:
            raise ImportError(f"reading {path} needs the safetensors package (pip install safetensors)") from err
        return dict(load_file(str(path)))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused or a corrupt file: say which file
        raise ValueError(f"cannot read weights from {str(path)!r}: {type(err).__name__}: {err}") from err
    if isinstance(data, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(data.get(key), Mapping):
                data = data[key]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"{str(path)!r} does not hold a state_dict of tensors")
    return dict(data)


def load_weights(model: nn.Module, weights: str | os.PathLike | StateDict, *, strict: bool = True) -> nn.Module:
    """Load a file or a state_dict into ``model`` (in place) and return it; clear errors on mismatch."""
    state = read_state_dict(weights) if isinstance(weights, str | os.PathLike) else dict(weights)
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        raise ValueError(f"the weights do not fit {type(model).__name__}: {err}") from err
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
