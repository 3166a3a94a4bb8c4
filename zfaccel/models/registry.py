"""Models by name for the CLI and the demo: ``zfnet``, ``small``, or a weights file."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from zfaccel.models.small import SmallZFNet, small_zfnet
from zfaccel.models.weights import PYTORCHCV_ZFNET_KEYS, load_weights, read_state_dict, zfnet_from_pytorchcv
from zfaccel.models.zfnet import zfnet

# The demo model's trained weights, shipped inside the package (zfaccel train writes them).
ASSETS = Path(__file__).resolve().parent.parent / "assets"
SMALL_WEIGHTS = ASSETS / "small_zfnet.pt"
# Fig. 4: what FeatureEvolution recorded while the bundled weights trained.
SMALL_EVOLUTION = ASSETS / "small_zfnet_evolution.npz"


def pretrained_small() -> SmallZFNet:
    """The demo model with the bundled weights (trained by ``zfaccel train`` on the bundled shapes data)."""
    if not SMALL_WEIGHTS.is_file():
        raise FileNotFoundError(f"the bundled demo weights are missing ({SMALL_WEIGHTS}); run `zfaccel train`")
    state = read_state_dict(SMALL_WEIGHTS)
    return load_weights(small_zfnet(state["classifier.6.weight"].shape[0]), state)


def load_model(spec: str | os.PathLike) -> nn.Module:
    """``"zfnet"`` (random weights), ``"small"`` (the bundled demo model), or a weights file whose
    keys say which architecture it is (zfaccel ZFNet, the demo model, or pytorchcv's ZFNet).
    Returns the model in eval mode."""
    if spec == "zfnet":
        model: nn.Module = zfnet()
    elif spec == "small":
        model = pretrained_small()
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"--model {str(spec)!r} is neither 'zfnet', 'small' nor an existing weights file")
        state = read_state_dict(path)
        if f"{next(iter(PYTORCHCV_ZFNET_KEYS))}.weight" in state:
            model = zfnet_from_pytorchcv(state)
        elif "classifier.6.weight" in state and state.get("features.0.weight") is not None:
            classes = state["classifier.6.weight"].shape[0]
            if tuple(state["features.0.weight"].shape) == (96, 3, 7, 7):
                model = load_weights(zfnet(classes), state)
            else:
                model = load_weights(small_zfnet(classes), state)
        else:
            raise ValueError(f"{str(path)!r} is not a ZFNet, demo-model or pytorchcv ZFNet state_dict")
    return model.eval()
