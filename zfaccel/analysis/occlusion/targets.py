"""Captum's ``target`` argument: which output of a model an attribution explains.

Forms (as ``captum._utils.common._select_targets``): None (the output as is); an int,
a one-element int tensor or a tuple: the same index into dims 1.. of every example;
a list of ints or a (B,) tensor: one column of a (B, K) output per example; a list
of tuples: one index into dims 1.. per example.
"""

from __future__ import annotations

import torch

Target = None | int | tuple | torch.Tensor | list


def output_tensor(output: object, target: Target) -> torch.Tensor:
    """A model's output (a tensor, or an int/float as Captum accepts) reduced by ``target``."""
    if isinstance(output, bool) or not isinstance(output, torch.Tensor | int | float):
        raise TypeError(f"the model must return a tensor (or a number), got {type(output).__name__}")
    if not isinstance(output, torch.Tensor):
        output = torch.tensor(output, dtype=torch.int64 if isinstance(output, int) else torch.float64)
    return select_targets(output, target)


def _column(output: torch.Tensor, index: int | tuple) -> torch.Tensor:
    index = (index,) if isinstance(index, int) else index
    if len(index) > output.dim() - 1:
        raise ValueError(f"target {index!r} indexes more dims than the output {tuple(output.shape)} has after dim 0")
    try:
        return output[(slice(None), *index)]
    except IndexError as err:
        raise ValueError(f"target {index!r} is out of range for the output {tuple(output.shape)}: {err}") from None


def select_targets(output: torch.Tensor, target: Target) -> torch.Tensor:
    """output: (B, ...) -> the selected entries, (B, ...) less the indexed dims; ValueError naming the problem."""
    if target is None:
        return output
    if output.dim() == 0:
        raise ValueError("target given but the model returns a single number")
    b = output.shape[0]
    if isinstance(target, bool):
        raise TypeError("target must be an int, a tuple, a list or a tensor, not a bool")
    if isinstance(target, int | tuple):
        return _column(output, target)
    if isinstance(target, torch.Tensor):
        if target.numel() == 1 and not target.is_floating_point():
            return _column(output, int(target.item()))
        if target.dim() == 1 and target.numel() == b and not target.is_floating_point():
            return _gather(output, target.to(output.device))
        raise ValueError(f"target tensor of shape {tuple(target.shape)} does not fit the output {tuple(output.shape)}")
    if isinstance(target, list):
        if len(target) != b:
            raise ValueError(f"target list has {len(target)} entries for {b} examples")
        if all(isinstance(t, int) and not isinstance(t, bool) for t in target):
            return _gather(output, torch.tensor(target, device=output.device))
        if all(isinstance(t, tuple) for t in target):
            try:
                return torch.stack([output[(i, *t)] for i, t in enumerate(target)])
            except IndexError as err:
                raise ValueError(f"target {target!r} is out of range for the output {tuple(output.shape)}") from err
        raise TypeError("a target list must hold ints (one column per example) or tuples")
    raise TypeError(f"target must be None, an int, a tuple, a list or a tensor, got {type(target).__name__}")


def _gather(output: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    if output.dim() != 2:
        raise ValueError(f"per-example targets need a 2-d (B, K) output, got {tuple(output.shape)}")
    k = output.shape[1]
    if len(columns) and (int(columns.min()) < -k or int(columns.max()) >= k):
        raise ValueError(f"target columns must lie in 0..{k - 1}, got {columns.tolist()}")
    return output.gather(1, (columns % k)[:, None])[:, 0]


def per_example_targets(target: Target, b: int, k: int) -> torch.Tensor | None:
    """The column of a (b, k) output that ``target`` picks for each example, (b,) int64 in 0..k-1;
    None when ``target`` picks something else than one number per example."""
    if target is None or isinstance(target, bool):
        return None
    if isinstance(target, tuple):
        target = target[0] if len(target) == 1 and isinstance(target[0], int) else None
    elif isinstance(target, list):
        if all(isinstance(t, tuple) and len(t) == 1 for t in target):
            target = [t[0] for t in target]
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in target):
            return None
        target = torch.tensor(target, dtype=torch.int64)
    elif isinstance(target, torch.Tensor):
        if target.is_floating_point() or not (target.numel() == 1 or (target.dim() == 1 and target.numel() == b)):
            return None
        target = int(target.item()) if target.numel() == 1 else target.to("cpu", torch.int64)
    if isinstance(target, int):
        target = torch.full((b,), target, dtype=torch.int64)
    if not isinstance(target, torch.Tensor) or len(target) != b:
        return None
    return target % k
