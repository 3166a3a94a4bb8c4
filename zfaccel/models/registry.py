"""Models by name for the CLI and the demo: ``zfnet``, ``alexnet``, ``vgg11``..``vgg19``, ``small``, or a
weights file whose keys say which of them it is."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import torch
from torch import nn

from zfaccel.models.small import SmallZFNet, check_first_layer, small_zfnet
from zfaccel.models.torchvision_style import VGG_CONFIGS, alexnet, vgg
from zfaccel.models.weights import PYTORCHCV_ZFNET_KEYS, load_weights, read_state_dict, zfnet_from_pytorchcv
from zfaccel.models.zfnet import zfnet

# The demo model's trained weights, shipped inside the package (zfaccel train writes them).
ASSETS = Path(__file__).resolve().parent.parent / "assets"
SMALL_WEIGHTS = ASSETS / "small_zfnet.pt"
# The same model with an AlexNet-like first layer (Fig. 6's comparison), trained the same way.
SMALL_ALEXNET_WEIGHTS = ASSETS / "small_zfnet_alexnet.pt"
SMALL_VARIANTS = {"small": ("zfnet", SMALL_WEIGHTS), "small-alexnet": ("alexnet", SMALL_ALEXNET_WEIGHTS)}
# Fig. 4: what FeatureEvolution recorded while the bundled weights trained.
SMALL_EVOLUTION = ASSETS / "small_zfnet_evolution.npz"

# The architectures load_model builds by name, from the number of classes: random weights unless given.
ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {
    "zfnet": zfnet,
    "alexnet": alexnet,
    **{f"vgg{depth}": partial(vgg, depth) for depth in VGG_CONFIGS},
}
MODEL_NAMES = ("zfnet", *SMALL_VARIANTS, *list(ARCHITECTURES)[1:])
# A pytorchcv ZFNet state_dict has this key (zfaccel's own models have torchvision's names).
PYTORCHCV = f"{next(iter(PYTORCHCV_ZFNET_KEYS))}.weight"


def pretrained_small(first_layer: str = "zfnet") -> SmallZFNet:
    """The demo model with the bundled weights (trained by ``zfaccel train`` on the bundled shapes data);
    ``first_layer="alexnet"``: the variant with an AlexNet-like first layer, trained the same way."""
    path = {layer: path for layer, path in SMALL_VARIANTS.values()}[check_first_layer(first_layer)]
    if not path.is_file():
        flag = "" if first_layer == "zfnet" else f" --first-layer {first_layer}"
        raise FileNotFoundError(f"the bundled demo weights are missing ({path}); run `zfaccel train{flag}`")
    state = read_state_dict(path)
    return load_weights(small_zfnet(state["classifier.6.weight"].shape[0], first_layer), state)


def load_model(
    spec: str | os.PathLike,
    weights: str | os.PathLike | Mapping[str, torch.Tensor] | None = None,
    *,
    names: tuple[str, str] = ("spec", "weights"),
) -> nn.Module:
    """A model in eval mode from ``spec``:

    - ``"zfnet"``, ``"alexnet"``, ``"vgg11"``, ``"vgg13"``, ``"vgg16"``, ``"vgg19"``: that architecture with
      ``weights`` (a torchvision-style state_dict or its file, .pt/.pth or .safetensors; for zfnet also
      pytorchcv's), its number of classes taken from their ``classifier.6.weight``; random weights
      (1000 classes) without them;
    - ``"small"``: the bundled demo model; ``"small-alexnet"``: its variant with an AlexNet-like first layer;
    - a weights file of any of these (or of pytorchcv's ZFNet): its keys and shapes say which.

    Files are read without running code. Errors name the arguments as ``names`` says (the CLI
    passes ``("--model", "--weights")``): FileNotFoundError for an unknown spec, ValueError when
    ``weights`` come with ``"small"`` or a file, hold another architecture or do not fit.
    """
    spec_arg, weights_arg = names
    if weights is not None and not isinstance(weights, str | os.PathLike | Mapping):
        raise TypeError(f"{weights_arg} must be a weights file path or a state_dict, got {type(weights).__name__}")
    for_names = f"{weights_arg} works with {spec_arg} {', '.join(ARCHITECTURES)} only"
    if isinstance(spec, str) and spec in ARCHITECTURES:
        model = ARCHITECTURES[spec]() if weights is None else _with_weights(spec, weights, weights_arg)
    elif isinstance(spec, str) and spec in SMALL_VARIANTS:
        if weights is not None:
            raise ValueError(f"{for_names}; {_named(spec_arg, spec)} is a bundled demo model with its own weights")
        model = pretrained_small(SMALL_VARIANTS[spec][0])
    else:
        if not isinstance(spec, str | os.PathLike):
            raise TypeError(f"{spec_arg} must be a model name or a weights file path, got {type(spec).__name__}")
        if not Path(spec).is_file():
            raise FileNotFoundError(
                f"{_named(spec_arg, spec)} is neither a model name ({', '.join(MODEL_NAMES)}) "
                f"nor an existing weights file"
            )
        if weights is not None:
            raise ValueError(f"{_named(spec_arg, spec)} is a weights file already; {for_names}")
        model = _from_file(Path(spec))
    return model.eval()


def _named(argument: str, value: object) -> str:
    """How a message names an argument and its value: ``--model 'x'`` in the CLI, ``spec='x'`` in Python."""
    value = os.fspath(value) if isinstance(value, os.PathLike) else value
    return f"{argument} {value!r}" if argument.startswith("-") else f"{argument}={value!r}"


def architecture_of(state: Mapping[str, torch.Tensor]) -> str | None:
    """Which model a state_dict is for, from its keys and its first convolution's shape: a name of
    ARCHITECTURES, ``"small"`` (the demo model), ``"pytorchcv-zfnet"``, or None."""
    if PYTORCHCV in state:
        return "pytorchcv-zfnet"
    first = state.get("features.0.weight")
    if first is None or "classifier.6.weight" not in state:
        return None
    shape = tuple(first.shape)
    if shape == (64, 3, 3, 3):  # VGG: 3x3 convolutions only, as many as the depth less the 3 linear layers
        convs = sum(1 for k, v in state.items() if k.startswith("features.") and k.endswith(".weight") and v.dim() == 4)
        return f"vgg{convs + 3}" if convs + 3 in VGG_CONFIGS else None
    known = {(96, 3, 7, 7): "zfnet", (64, 3, 11, 11): "alexnet", (32, 3, 5, 5): "small", (32, 3, 9, 9): "small-alexnet"}
    return known.get(shape)


def _build(name: str, state: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """Architecture ``name`` (or "small") with ``state`` loaded; its classes from classifier.6.weight."""
    if PYTORCHCV in state:
        return zfnet_from_pytorchcv(state)
    last = state.get("classifier.6.weight")
    classes = int(last.shape[0]) if last is not None else 1000
    if name in SMALL_VARIANTS:
        build = partial(small_zfnet, first_layer=SMALL_VARIANTS[name][0])
    else:
        build = ARCHITECTURES[name]
    return load_weights(build(classes), state, source=source)


def _with_weights(name: str, weights: str | os.PathLike | Mapping[str, torch.Tensor], weights_arg: str) -> nn.Module:
    if isinstance(weights, Mapping):
        state, what, source = dict(weights), weights_arg, "the weights"
    else:
        state, what = read_state_dict(weights), _named(weights_arg, weights)
        source = f"the weights in {os.fspath(weights)!r}"
    found = architecture_of(state)
    if found not in (None, name) and not (name == "zfnet" and found == "pytorchcv-zfnet"):
        held = {"small": "demo-model", "pytorchcv-zfnet": "pytorchcv ZFNet"}.get(found, found)
        raise ValueError(f"{what} holds {held} weights, not {name}'s")
    return _build(name, state, source)


def _from_file(path: Path) -> nn.Module:
    state = read_state_dict(path)
    found = architecture_of(state)
    if found is None:
        raise ValueError(
            f"{str(path)!r} is not a state_dict of ZFNet, AlexNet, VGG ({', '.join(map(str, VGG_CONFIGS))}), "
            f"the demo model or pytorchcv's ZFNet"
        )
    return _build(found, state, f"the weights in {str(path)!r}")
