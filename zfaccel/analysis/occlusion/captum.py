"""Captum's ``Occlusion(model).attribute(...)``, the same call and the same numbers, faster on plain CNNs.

Semantics (captum 0.7-0.9, ``captum.attr.Occlusion`` on top of ``FeatureAblation``):
a hyperrectangle of ``sliding_window_shapes`` (every dimension but the batch one,
channels included) slides over each input with ``strides`` (default 1); along a
dimension of size n with window w and stride s it takes ``ceil((n - w) / s) + 1``
positions ``k * s``, the last one clipped at the edge. Each position is replaced
by the baseline in every example at once, the model's (target-selected) output is
compared with the clean one, and every element receives the sum of the
differences of the windows covering it divided by how many windows cover it.
The result is float32 whatever the input dtype (Captum divides ``.float()``
totals by float32 counts).

Two paths give these numbers:
- fast: one (B, C, H, W) input, a window spanning all C channels, no additional
  forward arguments, float32, a (B, K) output reduced by a target, and a model the
  occlusion engine supports: the engine evaluates all occluder positions
  incrementally (only each occluder's projective field is recomputed) and the
  window sums are two small matrix products;
- generic: anything else, perturbations_per_eval positions per model call, the
  occluded inputs written by slice (no full-size masks, unlike Captum).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from zfaccel.analysis.occlusion.factory import make_engine
from zfaccel.analysis.occlusion.targets import output_tensor, per_example_targets
from zfaccel.models.plain import split_model

Inputs = torch.Tensor | tuple[torch.Tensor, ...]
FAST_CHUNK = 4096  # positions per engine.evaluate call: bounds the (P, K) logits kept at once (16 MB at K=1000)


def occlusion_attribute(
    model: Callable[..., Any],
    inputs: Inputs,
    sliding_window_shapes: tuple[int, ...] | tuple[tuple[int, ...], ...],
    strides: None | int | tuple[int, ...] | tuple[int | tuple[int, ...], ...] = None,
    baselines: None | int | float | torch.Tensor | tuple[int | float | torch.Tensor, ...] = None,
    target: None | int | tuple | torch.Tensor | list = None,
    additional_forward_args: Any = None,
    perturbations_per_eval: int = 1,
    show_progress: bool = False,
) -> Inputs:
    """Occlusion attributions, as ``captum.attr.Occlusion(model).attribute`` computes them.

    Args:
        model: the forward function (an nn.Module for the fast path).
        inputs: a (B, ...) tensor or a tuple of them (examples aligned along dim 0).
        sliding_window_shapes: the window over each input's dims 1.. (a tuple per input for tuple inputs);
            e.g. (3, 32, 32) on (B, 3, H, W) images occludes all channels at once.
        strides: None (1 everywhere), an int, a tuple per dim, or one int/tuple per input.
            Each stride must not exceed the window along a dim the window does not fill.
        baselines: what occluded elements become: None (0), a number, a tensor broadcastable to the input
            (e.g. (1, C, H, W) or (C, 1, 1)), or one of these per input.
        target: which output to explain: None (the output is one number per example), an int or tuple
            index (all examples), a list or (B,) tensor of per-example indices.
        additional_forward_args: a value or tuple passed after the inputs to every call; tensors with a
            batch dim are repeated with the perturbations.
        perturbations_per_eval: occluder positions per model call (the generic path's batch is this x B).
        show_progress: a tqdm bar over model (or engine) calls.

    Returns:
        float32 attributions shaped like ``inputs`` (a tensor, or a tuple for tuple inputs); for a model
        whose output is not one number per example, shaped (outputs, ...) as Captum's.

    Example:
        >>> attr = occlusion_attribute(model, images, (3, 32, 32), strides=(3, 8, 8), target=7)
    """
    is_tuple = isinstance(inputs, tuple)
    xs = _format_inputs(inputs)
    windows = _format_windows(sliding_window_shapes, xs)
    steps = _format_strides(strides, xs, windows)
    bases = _format_baselines(baselines, xs)
    extra = additional_forward_args
    if extra is not None and not isinstance(extra, tuple):
        extra = (extra,)
    if isinstance(perturbations_per_eval, bool) or not isinstance(perturbations_per_eval, int):
        raise TypeError(f"perturbations_per_eval must be an int >= 1, got {perturbations_per_eval!r}")
    if perturbations_per_eval < 1:
        raise ValueError(f"perturbations_per_eval must be at least 1, got {perturbations_per_eval}")
    counts = [_shift_counts(x.shape[1:], w, s) for x, w, s in zip(xs, windows, steps, strict=True)]
    with torch.no_grad():
        raw = _forward(model, xs, extra)
        clean = output_tensor(raw, target)
        fast = _fast(model, xs, windows, steps, bases, target, extra, raw, clean, counts, show_progress)
        if fast is not None:
            attrs = fast
        else:
            attrs = _generic(model, xs, windows, steps, bases, target, extra, clean, counts,
                             perturbations_per_eval, show_progress)  # fmt: skip
    return attrs if is_tuple else attrs[0]


# --- arguments ---------------------------------------------------------------------------------------------------


def _format_inputs(inputs: object) -> tuple[torch.Tensor, ...]:
    xs = inputs if isinstance(inputs, tuple) else (inputs,)
    if not xs or not all(isinstance(x, torch.Tensor) for x in xs):
        raise TypeError(f"inputs must be a tensor or a non-empty tuple of tensors, got {type(inputs).__name__}")
    if any(x.dim() == 0 for x in xs):
        raise ValueError("every input needs a batch dimension (dim 0); got a 0-d tensor")
    if any(x.shape[0] != xs[0].shape[0] for x in xs):
        raise ValueError(f"inputs must share dim 0 (the examples), got {[tuple(x.shape) for x in xs]}")
    return xs


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _format_windows(shapes: object, xs: tuple[torch.Tensor, ...]) -> list[tuple[int, ...]]:
    if not isinstance(shapes, tuple):
        raise TypeError(f"sliding_window_shapes must be a tuple (of ints, or of tuples per input), got {shapes!r}")
    if len(shapes) == 0 or _is_int(shapes[0]):
        shapes = (shapes,)
    if len(shapes) != len(xs):
        raise ValueError(f"sliding_window_shapes: give one window per input ({len(xs)}), got {len(shapes)}")
    windows = []
    for i, (w, x) in enumerate(zip(shapes, xs, strict=True)):
        if not isinstance(w, tuple) or len(w) != x.dim() - 1 or not all(_is_int(v) for v in w):
            raise ValueError(
                f"sliding window for input {i} is {w!r}: it must be a tuple of {x.dim() - 1} ints "
                f"(the input's shape {tuple(x.shape)} less the batch dim)"
            )
        if any(v < 1 for v in w) or any(v > n for v, n in zip(w, x.shape[1:], strict=True)):
            raise ValueError(
                f"sliding window {w} for input {i} must lie between 1 and the input's dims {tuple(x.shape[1:])}"
            )
        windows.append(tuple(int(v) for v in w))
    return windows


def _format_strides(strides: object, xs: tuple[torch.Tensor, ...], windows: list[tuple[int, ...]]) -> list:
    if strides is None:
        strides = tuple(1 for _ in xs)
    if len(xs) == 1 and not (isinstance(strides, tuple) and len(strides) == 1):
        strides = (strides,)
    if not isinstance(strides, tuple) or len(strides) != len(xs):
        raise ValueError(f"strides: give one stride (an int or a tuple) per input ({len(xs)}), got {strides!r}")
    out = []
    for i, (s, x, w) in enumerate(zip(strides, xs, windows, strict=True)):
        per_dim = (s,) * len(w) if _is_int(s) else s
        if not isinstance(per_dim, tuple) or len(per_dim) != len(w) or not all(_is_int(v) for v in per_dim):
            raise ValueError(
                f"stride for input {i} is {s!r}: it must be an int or a tuple of {len(w)} ints "
                f"for an input of shape {tuple(x.shape)}"
            )
        for d, (v, wd, n) in enumerate(zip(per_dim, w, x.shape[1:], strict=True)):
            if v < 1:
                raise ValueError(f"stride {v} for input {i}, dim {d + 1} must be at least 1")
            if wd < n and v > wd:
                raise ValueError(
                    f"stride {v} for input {i}, dim {d + 1} exceeds the window ({wd}): elements would be skipped"
                )
        out.append(tuple(int(v) for v in per_dim))
    return out


def _format_baselines(baselines: object, xs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """One baseline per input, each broadcast to its input's shape and dtype."""
    if baselines is None:
        baselines = tuple(False if x.dtype == torch.bool else 0 for x in xs)
    if not isinstance(baselines, tuple):
        baselines = (baselines,)
    if len(baselines) != len(xs):
        raise ValueError(f"baselines: give one baseline per input ({len(xs)}), got {len(baselines)}")
    out = []
    for i, (b, x) in enumerate(zip(baselines, xs, strict=True)):
        if not isinstance(b, torch.Tensor | int | float):
            raise TypeError(f"baseline {i} must be a number or a tensor, got {type(b).__name__}")
        t = b if isinstance(b, torch.Tensor) else torch.tensor(b)
        try:
            out.append(t.to(device=x.device, dtype=x.dtype).expand_as(x))
        except RuntimeError:
            raise ValueError(
                f"baseline {i} of shape {tuple(t.shape)} does not broadcast to its input {tuple(x.shape)}"
            ) from None
    return out


def _shift_counts(shape: Sequence[int], window: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, ...]:
    """Window positions along each dim: ceil((n - w) / s) + 1, as Captum."""
    return tuple(-(-(n - w) // s) + 1 for n, w, s in zip(shape, window, stride, strict=True))


def _coverage(n: int, w: int, s: int, count: int) -> torch.Tensor:
    """(count, n) float64: 1 where position k's window (k*s .. k*s+w-1, clipped) covers element i."""
    start = torch.arange(count, dtype=torch.int64)[:, None] * s
    i = torch.arange(n, dtype=torch.int64)[None, :]
    return ((i >= start) & (i < start + w)).double()


def _weights(shape: Sequence[int], window: tuple[int, ...], stride: tuple[int, ...], counts: tuple[int, ...]):
    """(*shape) float32: how many windows cover each element (the product of per-dim coverages)."""
    total = torch.ones((), dtype=torch.float64)
    for d, (n, w, s, c) in enumerate(zip(shape, window, stride, counts, strict=True)):
        per_dim = _coverage(n, w, s, c).sum(0)
        total = total.unsqueeze(-1) * per_dim.view(*([1] * d), n)
    return total.float()


def _forward(model: Callable[..., Any], xs: Sequence[torch.Tensor], extra: tuple | None) -> Any:
    return model(*xs, *extra) if extra is not None else model(*xs)


# --- generic path ------------------------------------------------------------------------------------------------


def _window_slices(index: int, window: tuple[int, ...], stride: tuple[int, ...], counts: tuple[int, ...]):
    """Captum's feature number -> slices of the window; the first dim varies fastest."""
    slices = []
    for w, s, c in zip(window, stride, counts, strict=True):
        index, k = divmod(index, c)
        slices.append(slice(k * s, k * s + w))
    return tuple(slices)


def _repeat_extra(extra: tuple | None, n: int) -> tuple | None:
    if extra is None or n == 1:
        return extra
    return tuple(torch.cat([a] * n) if isinstance(a, torch.Tensor) and a.dim() > 0 else a for a in extra)


def _repeat_target(target: object, n: int) -> object:
    if n == 1:
        return target
    if isinstance(target, list):
        return target * n
    if isinstance(target, torch.Tensor) and target.numel() > 1:
        return torch.cat([target] * n)
    return target


def _generic(model, xs, windows, steps, bases, target, extra, clean, counts, per_eval, show_progress):
    b = xs[0].shape[0]
    n_outputs = clean.numel()
    flat_clean = clean.reshape(1, -1)
    acc = clean.dtype if clean.dtype.is_complex else torch.float64  # sums of many differences: float32 would drift
    totals = [torch.zeros((n_outputs, *x.shape[1:]), dtype=acc, device=x.device) for x in xs]
    # (input, feature number) for every window position, input 0's first, as Captum numbers them
    features = [(i, f) for i, c in enumerate(counts) for f in range(math.prod(c))]
    calls = math.ceil(len(features) / per_eval)
    checked = False
    with tqdm(total=calls + 1, initial=1, desc="occlusion", unit="eval", disable=not show_progress) as bar:
        for start in range(0, len(features), per_eval):
            chunk = features[start : start + per_eval]
            n = len(chunk)
            batch = [torch.cat([x] * n) if n > 1 else x.clone() for x in xs]
            for j, (i, f) in enumerate(chunk):
                where = (slice(j * b, (j + 1) * b), *_window_slices(f, windows[i], steps[i], counts[i]))
                batch[i][where] = bases[i][(slice(None), *where[1:])]
            out = output_tensor(_forward(model, batch, _repeat_extra(extra, n)), _repeat_target(target, n))
            if not checked and per_eval > 1:
                if clean.dim() == 0 or out.dim() == 0 or out.shape[0] != n * clean.shape[0]:
                    raise ValueError(
                        "with perturbations_per_eval > 1 the model's output must grow with the batch: "
                        f"{tuple(clean.shape)} for {b} examples but {tuple(out.shape)} for {n * b}"
                    )
                checked = True
            diff = (flat_clean - out.reshape(-1, n_outputs)).to(acc)  # (n, n_outputs)
            for j, (i, f) in enumerate(chunk):
                sl = _window_slices(f, windows[i], steps[i], counts[i])
                totals[i][(slice(None), *sl)] += diff[j].view(n_outputs, *([1] * len(sl)))
            bar.update()
    return tuple(
        t.float() / _weights(x.shape[1:], w, s, c).to(x.device)
        for t, x, w, s, c in zip(totals, xs, windows, steps, counts, strict=True)
    )


# --- fast path ---------------------------------------------------------------------------------------------------


def _make_engine(model: nn.Module):
    """The incremental occlusion engine for ``model``, or None where it cannot run: not a plain CNN with
    a head (make_engine would fall back to full re-inference, which gains nothing over the generic path)."""
    try:
        plain = split_model(model)
    except (TypeError, ValueError):
        return None
    if plain.head is None or not isinstance(plain.features[0], nn.Conv2d):
        return None
    # The feature totals are not needed here: tap the last feature layer, which every plain CNN has.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = make_engine(model, len(plain.features) - 1, incremental=True)
    return engine if engine.incremental else None


def _fast(model, xs, windows, steps, bases, target, extra, logits, clean, counts, show_progress):
    """The engine's attributions, or None when this call is not one the engine can answer exactly."""
    if len(xs) != 1 or extra is not None or not isinstance(model, nn.Module):
        return None
    x, window, stride, count = xs[0], windows[0], steps[0], counts[0]
    # float32 only: the engine returns float32 logits, which would lose a float64 model's precision.
    if x.dim() != 4 or x.dtype != torch.float32 or window[0] != x.shape[1] or x.shape[0] == 0:
        return None
    # The engine runs the model in eval mode; a model in training mode (dropout) is Captum's to run.
    if any(m.training for m in model.modules()):
        return None
    b, _, h, w = x.shape
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != b:
        return None
    picks = per_example_targets(target, b, logits.shape[1])
    if picks is None:
        return None
    engine = _make_engine(model)
    if engine is None:
        return None
    engine.prepare(x, bases[0])
    if not _agrees(logits, engine.clean_logits):
        return None
    _, n_h, n_w = count
    rows = torch.arange(n_h) * stride[1]
    cols = torch.arange(n_w) * stride[2]
    image, r, c = torch.meshgrid(torch.arange(b), rows, cols, indexing="ij")
    positions = torch.stack([image, r, c], -1).reshape(-1, 3).to(x.device)
    picks = picks.to(x.device)
    selected = torch.empty(len(positions), dtype=logits.dtype, device=x.device)
    with tqdm(total=len(positions), desc="occlusion", unit="pos", disable=not show_progress) as bar:
        for start in range(0, len(positions), FAST_CHUNK):
            pos = positions[start : start + FAST_CHUNK]
            out, _ = engine.evaluate(pos, window[1:], progress=bar.update)
            selected[start : start + len(pos)] = out.to(logits.dtype).gather(1, picks[pos[:, 0], None])[:, 0]
    diff = (clean.reshape(b, 1, 1) - selected.view(b, n_h, n_w)).double()  # (B, nH, nW)
    cover_r = _coverage(h, window[1], stride[1], n_h).to(x.device)  # (nH, H)
    cover_c = _coverage(w, window[2], stride[2], n_w).to(x.device)  # (nW, W)
    total = cover_r.T @ diff @ cover_c  # (B, H, W): the sum over the windows covering each pixel
    weights = _weights(x.shape[1:], window, stride, count).to(x.device)
    return (total.float()[:, None].expand_as(x) / weights,)


def _agrees(model_logits: torch.Tensor, engine_logits: torch.Tensor) -> bool:
    """Does the engine (features, then head) compute what the model's forward returns? A model whose
    forward does more (a softmax, a temperature) fails here and takes the generic path."""
    if model_logits.shape != engine_logits.shape:
        return False
    # Same sums in other blockings: float32 rounding, ~1e-6 of the largest logit; 1e-4 leaves room.
    scale = float(model_logits.abs().max()) + 1e-6
    return bool(torch.allclose(engine_logits.to(model_logits), model_logits, rtol=1e-4, atol=1e-4 * scale))
