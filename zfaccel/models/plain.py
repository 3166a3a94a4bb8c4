"""The convolutional part of a plain CNN: validated modules, layer names, and the head.

A plain CNN is a torchvision-style model whose convolutional part is an
nn.Sequential ``features`` (ZFNet, torchvision AlexNet and VGG, the demo
model), or an nn.Sequential that is such a features Sequential followed by a
head, or an nn.Sequential whose leading modules are conv-part modules.

Layer names, for any features Sequential:
- ``convK``: the rectified output of the K-th convolution (the first ReLU after
  it, before the next convolution or pool), or the convolution's output when no
  ReLU follows;
- ``poolK`` / ``normK``: the first max-pool / normalisation after the K-th
  convolution (so ZFNet and AlexNet have pool1, pool2, pool5);
- an integer i: the output of ``features[i]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

# What a deconvnet can invert and an incremental occlusion can recompute locally.
SUPPORTED = (nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.LocalResponseNorm, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d)
_SUPPORTED_NAMES = "Conv2d, ReLU, MaxPool2d, LocalResponseNorm, BatchNorm2d, Dropout"


def check_module(module: nn.Module, where: str) -> None:
    """TypeError/ValueError naming ``where`` for a module the analyses cannot handle."""
    if not isinstance(module, SUPPORTED):
        raise TypeError(
            f"{where} is {type(module).__name__}: zfaccel handles plain CNNs whose features are "
            f"{_SUPPORTED_NAMES} (no residual additions or other modules)"
        )
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):
            raise ValueError(
                f"{where}: Conv2d(padding={module.padding!r}) is not supported; give the padding in pixels"
            )
        if module.padding_mode != "zeros":
            raise ValueError(f"{where}: Conv2d(padding_mode={module.padding_mode!r}) is not supported, only 'zeros'")
    if isinstance(module, nn.MaxPool2d) and module.return_indices:
        raise ValueError(f"{where}: MaxPool2d(return_indices=True) is not supported")


@dataclass
class PlainCNN:
    """A model split into its checked ``features`` and the ``head`` that maps their output to logits."""

    features: nn.Sequential
    head: Callable[[torch.Tensor], torch.Tensor] | None
    names: dict[str, int] = field(default_factory=dict)

    def resolve(self, layer: str | int, argument: str = "layer") -> int:
        """The index into ``features`` that ``layer`` (a name or an index) means; ValueError otherwise."""
        n = len(self.features)
        if isinstance(layer, bool) or not isinstance(layer, int | str):
            raise TypeError(f"{argument} must be a layer name or an int index, got {layer!r}")
        if isinstance(layer, int):
            if not 0 <= layer < n:
                raise ValueError(f"{argument}={layer} is out of range: model.features has {n} modules (0..{n - 1})")
            return layer
        if layer not in self.names:
            known = ", ".join(self.names) or "none"
            raise ValueError(f"unknown {argument} {layer!r}; this model's layers are {known}, or an index 0..{n - 1}")
        return self.names[layer]

    @property
    def first_conv(self) -> nn.Conv2d | None:
        """The first Conv2d of ``features`` (what sets the input's channels, device and dtype), or None."""
        return next((m for m in self.features if isinstance(m, nn.Conv2d)), None)

    def channels(self, index: int) -> int:
        """How many channels the output of features[index] has (the last convolution's)."""
        convs = [m for m in self.features[: index + 1] if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError(f"features[{index}] comes before any convolution: it is the input itself")
        return convs[-1].out_channels

    def name_of(self, index: int) -> str:
        for name, i in self.names.items():
            if i == index:
                return name
        return f"features[{index}]"


def layer_names(features: nn.Sequential) -> dict[str, int]:
    """convK / poolK / normK -> index into ``features`` (see the module docstring)."""
    names: dict[str, int] = {}
    conv = 0
    awaiting_relu = False
    for i, m in enumerate(features):
        if isinstance(m, nn.Conv2d):
            conv += 1
            names[f"conv{conv}"] = i
            awaiting_relu = True
        elif isinstance(m, nn.ReLU) and awaiting_relu:
            names[f"conv{conv}"] = i
            awaiting_relu = False
        elif isinstance(m, nn.MaxPool2d):
            names.setdefault(f"pool{conv}", i)
            awaiting_relu = False
        elif isinstance(m, nn.LocalResponseNorm | nn.BatchNorm2d):
            names.setdefault(f"norm{conv}", i)
    return names


def _torchvision_head(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, nn.Module):
        return None
    avgpool = getattr(model, "avgpool", None)
    pool = avgpool if isinstance(avgpool, nn.Module) else nn.Identity()
    return lambda f: classifier(torch.flatten(pool(f), 1))


def split_model(model: nn.Module) -> PlainCNN:
    """Find ``model``'s features and head and check every feature module.

    TypeError naming the model or the module when it is not a plain CNN.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        head = _torchvision_head(model)
        where = "model.features"
    elif isinstance(model, nn.Sequential) and len(model) and isinstance(model[0], nn.Sequential):
        features, head, where = model[0], nn.Sequential(*list(model)[1:]), "model[0]"
    elif isinstance(model, nn.Sequential):
        children = list(model)
        n = next((i for i, m in enumerate(children) if not isinstance(m, SUPPORTED)), len(children))
        if n == 0:
            first = type(children[0]).__name__ if children else "missing"
            raise TypeError(
                f"model[0] is {first}: a plain nn.Sequential CNN must start with its convolutional layers "
                f"({_SUPPORTED_NAMES})"
            )
        features, head, where = nn.Sequential(*children[:n]), nn.Sequential(*children[n:]), "model"
    else:
        raise TypeError(
            f"{type(model).__name__} is not a plain CNN: zfaccel needs a torchvision-style model with an "
            f"nn.Sequential `features` (like ZFNet, AlexNet, VGG) or an nn.Sequential of layers"
        )
    if len(features) == 0:
        raise ValueError(f"{where} is empty")
    for i, m in enumerate(features):
        check_module(m, f"{where}[{i}]")
    return PlainCNN(features, head, layer_names(features))
