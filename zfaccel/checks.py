"""Input checks shared by the ops: clear errors that name the argument."""

from __future__ import annotations

from collections.abc import Sequence

import torch

FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def check_int(value: object, name: str, *, low: int = 1, none: bool = False) -> int | None:
    """``value`` when it is an int >= ``low`` (None too when ``none``); ValueError naming ``name`` otherwise.
    A bool is refused: ``True`` is not a count."""
    if none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        what = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{name} must be {what}{' or None' if none else ''}, got {value!r}")
    return value


def check_classes(values: object, count: int, name: str, classes: int | None = None) -> torch.Tensor:
    """One class index per item, as (count,) int64 on the CPU, from an integer tensor (any shape with
    ``count`` elements) or a sequence of ints; TypeError/ValueError naming ``name``. Each lies in
    0..classes-1 when ``classes`` is given, else is >= 0."""
    if isinstance(values, torch.Tensor):
        if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer classes, got a {values.dtype} tensor")
        t = values.detach().reshape(-1).to("cpu", torch.int64)
    elif isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of ints or an int tensor, got {type(values).__name__}")
    elif not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name} must hold ints, got {list(values)!r}")
    else:
        t = torch.tensor(list(values), dtype=torch.int64)
    if t.numel() != count:
        raise ValueError(f"{name} must give one class per image ({count}), got {t.numel()}")
    if t.numel() and classes is not None and (int(t.min()) < 0 or int(t.max()) >= classes):
        raise ValueError(f"{name} classes must lie in 0..{classes - 1}, got {t.tolist()}")
    if t.numel() and int(t.min()) < 0:
        raise ValueError(f"{name} must be >= 0, got {t.tolist()}")
    return t


def check_tensor(t: object, name: str, *, dtypes: tuple[torch.dtype, ...] = FLOAT_DTYPES) -> torch.Tensor:
    """A non-empty (N,C,H,W) or (C,H,W) tensor of one of ``dtypes``; TypeError/ValueError naming ``name``."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in dtypes:
        allowed = ", ".join(str(d).removeprefix("torch.") for d in dtypes)
        raise TypeError(f"{name} must have dtype {allowed}; got {t.dtype}")
    if t.dim() not in (3, 4):
        raise ValueError(f"{name} must be (N, C, H, W) or (C, H, W); got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty; got shape {tuple(t.shape)}")
    return t


def channels_last(t: torch.Tensor) -> bool:
    """Whether a 4-D tensor is laid out channels-last (and not also plain contiguous).

    Every backend returns outputs in the input's layout by this one rule, so that
    the fake (meta) outputs torch.compile sees have the real strides.
    """
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def memory_format(t: torch.Tensor) -> torch.memory_format:
    """The memory format outputs derived from ``t`` take: channels_last or contiguous."""
    return torch.channels_last if channels_last(t) else torch.contiguous_format


def check_images(images: object, in_channels: int | None) -> torch.Tensor:
    """(B, C, H, W) float images for a model whose first convolution takes ``in_channels`` (None: any);
    a (C, H, W) image becomes B = 1. TypeError/ValueError naming ``images``."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"images must be a float tensor, got {images.dtype}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.numel() == 0:
        raise ValueError(f"images must be a non-empty (B, C, H, W) or (C, H, W) tensor, got {tuple(images.shape)}")
    if in_channels is not None and images.shape[1] != in_channels:
        raise ValueError(f"images have {images.shape[1]} channels but the model's first convolution takes "
                         f"{in_channels}")  # fmt: skip
    return images
