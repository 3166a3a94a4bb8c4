"""Named layers of a plain CNN as modules whose output a forward hook can read: the features and the head.

The features' names are zfaccel.models.plain's (``convK``, ``poolK``, ``normK``, or an int index into
``features``). The head's fully connected layers are named by their depth in the network, as the
paper counts layers: on a model with C convolutions, the K-th nn.Linear is ``fc{C + K}`` (ZFNet, AlexNet,
VGG-11 and the demo model: fc6, fc7, fc8). Like ``convK``, ``fcK`` is the rectified output: the ReLU that
directly follows the Linear in its nn.Sequential, or the Linear's own output when none does (fc8, the logits).
Linears are counted in registration order, which is their order of execution in ZFNet, AlexNet, VGG, the
demo model and nn.Sequential CNNs (zfaccel.models.class_names counts on the same).
"""

from __future__ import annotations

from torch import nn

from zfaccel.models.plain import PlainCNN


def _follower(model: nn.Module, linear: nn.Linear) -> nn.Module:
    """The ReLU right after ``linear`` in the nn.Sequential that holds it, else ``linear`` itself."""
    for parent in model.modules():
        if isinstance(parent, nn.Sequential):
            children = list(parent)
            for i, child in enumerate(children[:-1]):
                if child is linear and isinstance(children[i + 1], nn.ReLU):
                    return children[i + 1]
    return linear


def head_layers(model: nn.Module, plain: PlainCNN) -> dict[str, nn.Module]:
    """``fcK`` -> the module whose output is that layer (see the module docstring), in network order."""
    convs = sum(isinstance(m, nn.Conv2d) for m in plain.features)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return {f"fc{convs + k}": _follower(model, linear) for k, linear in enumerate(linears, 1)}


def penultimate(model: nn.Module, plain: PlainCNN) -> str:
    """The name of the layer that feeds the last nn.Linear: fc7 on ZFNet and the demo model (the paper's
    layer 7); the features' last layer (e.g. pool5) when the head has a single Linear or none."""
    fcs = list(head_layers(model, plain))
    if len(fcs) >= 2:
        return fcs[-2]
    return plain.name_of(len(plain.features) - 1)


def layer_module(
    model: nn.Module, plain: PlainCNN, layer: str | int, argument: str = "layers"
) -> tuple[str, nn.Module]:
    """(the layer's name, the module whose forward output is it) for a features name or index or an ``fcK``.

    ValueError naming ``argument`` and listing the model's layers when ``layer`` is none of them.
    """
    head = head_layers(model, plain)
    if isinstance(layer, str) and layer in head:
        return layer, head[layer]
    try:
        index = plain.resolve(layer, argument)
    except ValueError as err:
        if not isinstance(layer, str):
            raise
        known = ", ".join([*plain.names, *head])
        raise ValueError(f"unknown {argument} entry {layer!r}; this model's layers are {known}, "
                         f"or an index 0..{len(plain.features) - 1} into model.features") from err  # fmt: skip
    return plain.name_of(index), plain.features[index]
