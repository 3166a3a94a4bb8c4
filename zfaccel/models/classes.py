"""The names of a model's classes, where the model declares them (the bundled demo model does)."""

from __future__ import annotations

from torch import nn


def class_names(model: nn.Module) -> list[str] | None:
    """``model.class_names`` as a list of str when it names each of the model's outputs, else None.

    The outputs are counted as the ``out_features`` of the model's last nn.Linear (the
    classifier's output layer in ZFNet, AlexNet, VGG and the demo model), so the bundled
    names of a 10-class model are not given for a 7-class one; a model without an
    nn.Linear, or whose ``class_names`` is not a list or tuple of str, gives None.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    names = getattr(model, "class_names", None)
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        return None
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1].out_features != len(names):
        return None
    return list(names)
