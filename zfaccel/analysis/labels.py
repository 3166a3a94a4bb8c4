"""How figures and messages name classes and say what a model predicted."""

from __future__ import annotations

from collections.abc import Sequence


def class_name(c: int, class_names: Sequence[str] | None = None, limit: int = 40) -> str:
    """The class's name (cut to ``limit`` characters), or 'class c' without names."""
    if class_names is not None and 0 <= c < len(class_names):
        name = str(class_names[c])
        return name if len(name) <= limit else name[: limit - 2] + ".."
    return f"class {c}"


def verdict(true: int | None, predicted: int, prob: float | None, class_names: Sequence[str] | None = None) -> str:
    """What the model made of an image: "true: circle, predicted: diamond (0.90)" where the true class is
    known and differs, "circle (true and predicted, 0.97)" where it agrees, "predicted: circle (0.97)"
    where it is unknown. ``prob`` is the predicted class's probability (None: not shown)."""
    name = class_name(predicted, class_names)
    if true is not None and true == predicted:
        return f"{name} (true and predicted{'' if prob is None else f', {prob:.2f}'})"
    shown = f"predicted: {name}{'' if prob is None else f' ({prob:.2f})'}"
    return shown if true is None else f"true: {class_name(true, class_names)}, {shown}"
