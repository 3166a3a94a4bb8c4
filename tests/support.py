"""Helpers shared by the tests: the (device, backend) targets, exact and tolerant comparisons."""

from __future__ import annotations

import pytest
import torch

from zfaccel.backends import BACKEND_TABLE, why_unavailable

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
HAS_CUDA = torch.cuda.is_available()


def skip_reason(device: str, backend: str, op: str | None = None) -> str | None:
    """Why ``backend`` cannot run ``op`` (any op when None) on ``device`` here: the backends' tables say."""
    return why_unavailable(backend, torch.device(device), op)


def target_params(op: str | None = None) -> list:
    """Every (device, backend) pair for ``op``, skipped with the reason where it cannot run here."""
    params = []
    for device in ("cpu", "cuda"):
        for backend in reversed(BACKEND_TABLE):  # torch, native, triton
            reason = skip_reason(device, backend, op)
            marks = [pytest.mark.skip(reason=f"{device}/{backend}: {reason}")] if reason else []
            if device == "cuda":
                marks.append(pytest.mark.gpu)
            if backend == "triton":
                marks.append(pytest.mark.triton)
            params.append(pytest.param((device, backend), marks=marks, id=f"{device}-{backend}"))
    return params


def interpreted(target: tuple[str, str]) -> bool:
    """Triton on CPU: the interpreter, about 1000x slower, so tests shrink their shapes."""
    return target == ("cpu", "triton")


def assert_same(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Exact equality (NaN equal to NaN), with the first differing position on failure."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    a, e = actual.cpu(), expected.cpu()
    same = (a == e) | (a.isnan() & e.isnan()) if a.is_floating_point() else a == e
    if not bool(same.all()):
        idx = tuple(int(i) for i in (~same).nonzero()[0])
        raise AssertionError(
            f"{what}: {int((~same).sum())} of {same.numel()} differ; first at {list(idx)}: {a[idx]} != {e[idx]}"
        )


# Unpool tolerances against a float64 reference, per dtype: the kernels sum in
# float32 (float64) and round once on the store, so the error is half an ulp of
# the result plus float32 rounding of a sum of at most a few terms.
TOLERANCES = {
    torch.float64: dict(rtol=1e-12, atol=1e-12),
    torch.float32: dict(rtol=2e-6, atol=2e-6),
    torch.float16: dict(rtol=2**-10, atol=1e-3),
    torch.bfloat16: dict(rtol=2**-7, atol=1e-2),
}


LAYOUTS = ["contiguous", "channels_last", "strided", "transposed"]


def make_input(
    shape: tuple[int, ...], dtype: torch.dtype, device: str, gen: torch.Generator, layout: str = "contiguous"
) -> torch.Tensor:
    """A fresh random (N, C, H, W) tensor whose planes cycle through three kinds of data:

    - plane % 3 == 0: normal values;
    - plane % 3 == 1: small integers, so most windows hold ties (the first maximum must win);
    - plane % 3 == 2: normal values with 5% NaN, 5% +inf and 20% -inf, and one all -inf row band.

    ``layout`` gives the strides: contiguous, channels_last, strided (every other
    column of a wider tensor) or transposed (a (N, C, W, H) tensor viewed as (N, C, H, W)).
    """
    n, c, h, w = shape
    values = torch.randn((n * c, h, w), generator=gen, dtype=torch.float64)
    ties = torch.randint(-3, 4, (n * c, h, w), generator=gen).double()
    u = torch.rand((n * c, h, w), generator=gen, dtype=torch.float64)
    special = values.clone()
    special[u < 0.05] = float("nan")
    special[(u >= 0.05) & (u < 0.10)] = float("inf")
    special[(u >= 0.10) & (u < 0.30)] = float("-inf")
    special[:, : max(1, h // 4), :] = float("-inf")
    kind = torch.arange(n * c) % 3
    data = torch.where((kind == 0).view(-1, 1, 1), values, torch.where((kind == 1).view(-1, 1, 1), ties, special))
    x = data.view(n, c, h, w).to(dtype)
    if layout == "contiguous":
        out = x.contiguous()
    elif layout == "channels_last":
        out = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        wide = torch.zeros((n, c, h, 2 * w + 1), dtype=dtype)
        wide[..., 1::2] = x
        out = wide[..., 1::2]
    elif layout == "transposed":
        out = x.transpose(2, 3).contiguous().transpose(2, 3)
    else:
        raise ValueError(layout)
    out = out.to(device)
    if layout in ("strided", "transposed") and h > 1 and w > 1:
        assert not out.is_contiguous() and not out.is_contiguous(memory_format=torch.channels_last)
    return out
