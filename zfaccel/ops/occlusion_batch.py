"""zfaccel.occlusion_batch: a batch of occluded inputs (or crops of them) built in one pass.

The occlusion sweep (paper Fig. 7) never materialises N full copies of the
image plus N masks: each occluded input, or only the crop of it that a layer
needs, is written straight from the image, the baseline and the occluder's
position.
"""

from __future__ import annotations

import torch

from zfaccel import library
from zfaccel.backends import check_name
from zfaccel.checks import check_tensor


def _pair(value: object, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, tuple | list)
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair)
    ):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def occlusion_batch(
    images: torch.Tensor,
    baseline: torch.Tensor,
    positions: torch.Tensor,
    window: int | tuple[int, int],
    crop_origins: torch.Tensor | None = None,
    crop_size: int | tuple[int, int] | None = None,
    *,
    backend: str = "auto",
    validate: bool = True,
) -> torch.Tensor:
    """Occluded copies of ``images``, or crops of them, one per occluder position.

    Args:
        images: (B, C, H, W) or (C, H, W) float (float32, float64, float16, bfloat16), any strides.
        baseline: what the occluder shows: broadcastable to ``images`` (a scalar tensor, a
            per-channel (C, 1, 1) colour, an image), same dtype and device.
        positions: (P, 3) int64 rows ``(image, row, col)``: the image index and the top-left
            corner of the occluder, which covers rows ``row .. row + window[0] - 1`` and columns
            ``col .. col + window[1] - 1`` (clipped to the image). Image index 0 for 3-d images.
        window: the occluder's (height, width), or one int for a square.
        crop_origins: (P, 2) int64, the absolute (row, col) of each output's top-left pixel; may
            lie outside the image, whose outside reads as 0 (a convolution's zero padding).
            Default: all (0, 0).
        crop_size: (ch, cw) of each output; default (H, W), so that the defaults give whole images.
        backend: "auto", "triton", "native" or "torch".
        validate: check that every image index in ``positions`` names an image. On a GPU that
            reads ``positions`` back (a sync); the sweep engine, which builds the positions itself,
            may pass False. Unchecked, the native CPU kernel still raises, the native CUDA and
            Triton kernels never read out of bounds but return NaN for the bad rows, and the
            torch backend raises an indexing error (CPU) or a device assert (GPU). Skipped under
            torch.compile (a data-dependent check would break the graph).

    Returns:
        (P, C, ch, cw) images.dtype, contiguous: ``out[p, c, i, j]`` at absolute pixel
        ``(r, s) = crop_origins[p] + (i, j)`` is 0 outside the image, ``baseline[b, c, r, s]``
        inside the occluder of position p, and ``images[b, c, r, s]`` elsewhere.
    """
    check_tensor(images, "images")
    check_name(backend)
    images4 = images if images.dim() == 4 else images.unsqueeze(0)
    n, c, h, w = images4.shape
    if not isinstance(baseline, torch.Tensor):
        raise TypeError(f"baseline must be a tensor, got {type(baseline).__name__}")
    if baseline.dtype != images.dtype or baseline.device != images.device:
        raise TypeError(
            f"baseline must have the dtype and device of images ({images.dtype}, {images.device}), "
            f"got {baseline.dtype} on {baseline.device}"
        )
    try:
        baseline4 = baseline.expand_as(images4) if baseline.dim() <= 4 else None
    except RuntimeError:
        baseline4 = None
    if baseline4 is None:
        shapes = f"{tuple(baseline.shape)} does not broadcast to images {tuple(images4.shape)}"
        raise ValueError(f"baseline of shape {shapes}")
    wh, ww = _pair(window, "window")
    if not isinstance(positions, torch.Tensor) or positions.dtype != torch.int64:
        raise TypeError("positions must be an int64 tensor of (image, row, col) rows")
    if positions.dim() != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape (P, 3), got {tuple(positions.shape)}")
    if positions.device != images.device:
        raise TypeError(f"positions must be on {images.device}, got {positions.device}")
    p = positions.shape[0]
    if crop_origins is None:
        crop_origins = torch.zeros(p, 2, dtype=torch.int64, device=images.device)
    elif not isinstance(crop_origins, torch.Tensor) or crop_origins.dtype != torch.int64:
        raise TypeError("crop_origins must be an int64 tensor of (row, col) rows")
    elif tuple(crop_origins.shape) != (p, 2) or crop_origins.device != images.device:
        raise ValueError(
            f"crop_origins must be a (P, 2) = ({p}, 2) tensor on {images.device}, "
            f"got {tuple(crop_origins.shape)} on {crop_origins.device}"
        )
    ch, cw = (h, w) if crop_size is None else _pair(crop_size, "crop_size")
    if not isinstance(validate, bool):
        raise TypeError(f"validate must be a bool, got {type(validate).__name__}")
    validate = validate and not torch.compiler.is_compiling() and p > 0
    if validate and (int(positions[:, 0].min()) < 0 or int(positions[:, 0].max()) >= n):
        raise ValueError(f"positions[:, 0] (the image index) must lie in 0..{n - 1}")
    return library.occlusion_batch(
        images4, baseline4, positions.contiguous(), [wh, ww], crop_origins.contiguous(), [ch, cw], backend
    )
