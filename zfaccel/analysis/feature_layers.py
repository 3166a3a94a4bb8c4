"""Feature vectors at named layers of a plain CNN, the fully connected ones included.

The convolutional layers have the names of zfaccel.models.plain (``convK``, ``poolK``, ``normK``, an index
into ``features``). The head's Linears are named as ZFNet, AlexNet and VGG name them, counting back from
the output: the last is ``fc8``, the one before ``fc7`` and so on (fc6 - fc8 for a three-Linear classifier,
whatever the number of convolutions); ``fcK`` is the rectified output (the ReLU right after the Linear) or the
Linear's output where no ReLU follows. ``penultimate`` is the layer that feeds the last Linear: the
``fcK`` before it (fc7), or the convolutional part's last output when the head has a single Linear.

A forward of the whole model, with a forward hook on each wanted module, collects its output flattened to
(N, D): any model that ``split_model`` accepts runs as its own forward says (torchvision's avgpool too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from zfaccel.models.plain import PlainCNN, split_model

LAST_FC = 8  # the output Linear's number: fc6, fc7, fc8 in ZFNet (the paper's layers 6, 7, 8)


@dataclass(frozen=True)
class FeatureLayer:
    """A layer whose output is a feature vector: its name and the module whose output it is."""

    name: str
    module: nn.Module


def _head_modules(model: nn.Module, plain: PlainCNN) -> list[nn.Module]:
    """The head's modules in order when they are an nn.Sequential (torchvision's ``classifier``, or the
    modules after the convolutional part of an nn.Sequential model); [] otherwise."""
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Sequential):
        return list(classifier)
    if isinstance(plain.head, nn.Sequential):
        return list(plain.head)
    return []


def fc_layers(model: nn.Module, plain: PlainCNN | None = None) -> dict[str, nn.Module]:
    """``fcK`` -> the module whose output is that layer (see the module docstring), in order."""
    plain = plain or split_model(model)
    head = _head_modules(model, plain)
    linears = [i for i, m in enumerate(head) if isinstance(m, nn.Linear)]
    names: dict[str, nn.Module] = {}
    for k, i in enumerate(linears):
        after = head[i + 1] if i + 1 < len(head) else None
        names[f"fc{LAST_FC - (len(linears) - 1 - k)}"] = after if isinstance(after, nn.ReLU) else head[i]
    return names


def _named(model: nn.Module, plain: PlainCNN) -> dict[str, FeatureLayer]:
    """Every fcK, and ``penultimate`` where the head has a Linear, as FeatureLayers."""
    fcs = {name: FeatureLayer(name, module) for name, module in fc_layers(model, plain).items()}
    linears = list(fcs)
    if len(linears) >= 2:
        fcs["penultimate"] = fcs[linears[-2]]
    elif linears:
        last = len(plain.features) - 1
        fcs["penultimate"] = FeatureLayer(plain.name_of(last), plain.features[last])
    return fcs


def default_layers(model: nn.Module) -> tuple[str, ...]:
    """The paper's layers 5 and 7 for ``model``: its last convolution and its penultimate layer (just the
    convolution when the model has no Linear head)."""
    plain = split_model(model)
    last_conv = [n for n in plain.names if n.startswith("conv")][-1]
    return (last_conv, "penultimate") if "penultimate" in _named(model, plain) else (last_conv,)


def resolve_layers(model: nn.Module, layers: Sequence[str | int], argument: str = "layers") -> list[FeatureLayer]:
    """Each of ``layers`` (a name of the module docstring or an index into ``features``) as a FeatureLayer.

    TypeError/ValueError naming ``argument`` for an empty or repeated list, or a layer the model lacks.
    """
    if isinstance(layers, str | int) or not isinstance(layers, Sequence):
        raise TypeError(f"{argument} must be a non-empty list of layer names or indices, got {layers!r}")
    if len(layers) == 0:
        raise ValueError(f"{argument} must be a non-empty list of layer names or indices, got {layers!r}")
    plain = split_model(model)
    named = _named(model, plain)
    out: list[FeatureLayer] = []
    for layer in layers:
        if isinstance(layer, str) and layer in named:
            out.append(named[layer])
            continue
        try:
            index = plain.resolve(layer, argument)
        except ValueError as error:
            known = ", ".join([*plain.names, *named]) or "none"
            raise ValueError(f"unknown layer {layer!r} in {argument}; this model's layers are {known}, "
                             f"or an index 0..{len(plain.features) - 1}") from error  # fmt: skip
        out.append(FeatureLayer(plain.name_of(index), plain.features[index]))
    names = [f.name for f in out]
    if len(set(names)) < len(names):
        raise ValueError(f"{argument} names a layer twice: {names}")
    return out


def features_at(model: nn.Module, images: torch.Tensor, layers: Sequence[FeatureLayer]) -> dict[str, torch.Tensor]:
    """One forward of ``model`` on ``images`` (B, C, H, W): each layer's output as (B, D) float, a copy
    (a later in-place ReLU cannot change it). Run it under no_grad and eval mode for inference.

    ValueError when a layer's module runs other than once (a module used twice in the model).
    """
    captured: dict[str, list[torch.Tensor]] = {f.name: [] for f in layers}

    def hook(name: str):
        return lambda _module, _inputs, output: captured[name].append(output.flatten(1).clone())

    handles = [f.module.register_forward_hook(hook(f.name)) for f in layers]
    try:
        model(images)
    finally:
        for handle in handles:
            handle.remove()
    for name, outputs in captured.items():
        if len(outputs) != 1:
            raise ValueError(f"layer {name!r} ran {len(outputs)} times in one forward; it must run once")
    return {name: outputs[0] for name, outputs in captured.items()}
