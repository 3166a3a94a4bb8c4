"""Correspondence analysis (paper section 5.1, Table 1): does covering the same part of different images
change the features the same way?

For each image i and part, ``eps_i = x_i - x~_i`` is the change of a layer's feature vector when a grey
square (the dataset mean: 0 in the normalised images) covers that part. The paper's score is
``Delta = sum over pairs of Hamming(sign(eps_i), sign(eps_j))``: low when the sign pattern of the change is
the same from image to image, i.e. when the model treats "the star's top tip" of every image alike. The
control covers, in the same images, squares of the same size at random positions. The paper found the
parts' scores (eyes, nose of 5 dog faces) below the control's at layer 5 and about equal at layer 7, and
read it as the model establishing some correspondence between parts of different images at layer 5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from zfaccel.analysis.correspondence_result import RANDOM, CorrespondenceResult
from zfaccel.analysis.feature_layers import FeatureLayer, default_layers, features_at, resolve_layers
from zfaccel.analysis.occlusion.engine import inference
from zfaccel.analysis.occlusion.grid import positive_pair
from zfaccel.checks import FLOAT_DTYPES, check_int
from zfaccel.ops import occlusion_batch

# Changes below TOLERANCE x the layer's largest clean activation count as no change (sign 0): the same
# image through a batch of another size moved the demo model's conv5 and fc7 by up to 3e-6 on a scale of
# 7.9 (4e-7 of it), while an 8 px occluder's genuine changes have a median of 1.4e-2 (1 % are below 9e-5).
TOLERANCE = 1e-5


def default_window(size: tuple[int, int]) -> tuple[int, int]:
    """The occluder side for images of ``size`` (H, W): an eighth of the shorter side, at least 1 px
    (8 px at 64 px, 28 px at 224). On the paper's 224 px dog faces an eye or a nose is about that big; on
    the 64 px shapes an 8 px square covers a star's tip or a square's corner (objects span 22 - 42 px)
    without covering the whole object."""
    side = max(1, round(min(size) / 8))
    return side, side


def _check_images(model: nn.Module, images: object) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor (N, C, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[0] < 2 or images.numel() == 0:
        raise ValueError(f"images must be (N, C, H, W) with N >= 2 (Delta compares pairs), got {tuple(images.shape)}")
    if images.dtype not in FLOAT_DTYPES:
        raise TypeError(f"images must be a floating tensor, normalised for the model; got {images.dtype}")
    param = next(model.parameters(), None)
    if param is not None and (param.device != images.device or param.dtype != images.dtype):
        raise TypeError(f"images must have the model's dtype and device ({param.dtype}, {param.device}), "
                        f"got {images.dtype} on {images.device}")  # fmt: skip
    if not torch.isfinite(images).all():
        raise ValueError("images must be finite (no NaN or inf)")
    return images


def _check_parts(parts: object, n: int, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """name -> (N, 2) float64 (row, col) on the CPU, each inside the image."""
    if not isinstance(parts, Mapping) or len(parts) == 0:
        raise TypeError(f"parts must be a non-empty mapping of part name -> (N, 2) tensor, got {type(parts).__name__}")
    out = {}
    for name, where in parts.items():
        if not isinstance(name, str) or not name or name == RANDOM:
            raise ValueError(f"parts' names must be non-empty strings other than {RANDOM!r}, got {name!r}")
        if not isinstance(where, torch.Tensor) or where.dtype == torch.bool or where.is_complex():
            raise TypeError(f"parts[{name!r}] must be a real tensor of (row, col) rows, got {type(where).__name__}")
        if tuple(where.shape) != (n, 2):
            raise ValueError(f"parts[{name!r}] must have shape ({n}, 2): a (row, col) per image, "
                             f"got {tuple(where.shape)}")  # fmt: skip
        where = where.detach().to("cpu", torch.float64)
        inside = torch.isfinite(where).all(1) & (where >= 0).all(1)
        inside &= (where[:, 0] <= size[0] - 1) & (where[:, 1] <= size[1] - 1)
        if not inside.all():
            i = int((~inside).nonzero()[0])
            raise ValueError(f"parts[{name!r}][{i}] = {where[i].tolist()} lies outside the {size[0]} x {size[1]} "
                             f"image (rows 0..{size[0] - 1}, columns 0..{size[1] - 1})")  # fmt: skip
        out[name] = where
    return out


def _check_window(window: object, size: tuple[int, int]) -> tuple[int, int]:
    if window is None:
        return default_window(size)
    hw = positive_pair(window, "window")
    if hw[0] > size[0] or hw[1] > size[1]:
        raise ValueError(f"window {hw} does not fit in the {size[0]} x {size[1]} images")
    return hw


def _check_masks(masks: object, images: torch.Tensor) -> torch.Tensor | None:
    if masks is None:
        return None
    n, _, h, w = images.shape
    if not isinstance(masks, torch.Tensor) or masks.dtype != torch.bool:
        raise TypeError(f"random_within must be a bool tensor (N, H, W) or None, got {getattr(masks, 'dtype', masks)}")
    if tuple(masks.shape) != (n, h, w):
        raise ValueError(f"random_within must have shape ({n}, {h}, {w}), got {tuple(masks.shape)}")
    empty = ~masks.flatten(1).any(1)
    if empty.any():
        raise ValueError(f"random_within[{int(empty.nonzero()[0])}] is all False: no pixel to put a square on")
    return masks.cpu()


def corners(centres: torch.Tensor, window: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Top-left corners (N, 2) int64 of ``window`` squares centred on ``centres`` (N, 2) (row, col), shifted
    (by at most half the window) to lie wholly inside images of ``size``: every square, part or random,
    covers the same number of pixels."""
    out = []
    for axis in range(2):
        top = torch.round(centres[:, axis].double() - (window[axis] - 1) / 2)
        out.append(top.clamp(0, size[axis] - window[axis]).long())
    return torch.stack(out, 1)


def random_corners(
    n: int, window: tuple[int, int], size: tuple[int, int], generator: torch.Generator, masks: torch.Tensor | None
) -> torch.Tensor:
    """(N, 2) int64 top-left corners of random squares wholly inside the image: uniform over the corners, or
    centred on a uniformly drawn pixel of each image's mask (then shifted inside as ``corners`` does)."""
    if masks is None:
        rows = torch.randint(0, size[0] - window[0] + 1, (n,), generator=generator)
        cols = torch.randint(0, size[1] - window[1] + 1, (n,), generator=generator)
        return torch.stack([rows, cols], 1)
    flat = torch.multinomial(masks.flatten(1).double(), 1, generator=generator).view(n)
    return corners(torch.stack([flat // size[1], flat % size[1]], 1), window, size)


def pair_hamming(signs: torch.Tensor) -> torch.Tensor:
    """Hamming distances between the rows of ``signs`` (N, D) (any integer values, here -1, 0, 1), for the
    pairs i < j in ``torch.triu_indices(N, N, 1)`` order: (N (N - 1) / 2,) int64.

    Equal entries are counted with one matrix product per value (float64: exact below 2**53), so N = 50
    images of ZFNet's 43,264 conv5 features take three (50 x 43k) @ (43k x 50) products.
    """
    n, d = signs.shape
    same = torch.zeros((n, n), dtype=torch.float64, device=signs.device)
    for value in torch.unique(signs).tolist():
        hit = (signs == value).double()
        same += hit @ hit.T
    i, j = torch.triu_indices(n, n, 1, device=signs.device)
    return (d - same[i, j]).round().long().cpu()


def _signs(eps: torch.Tensor, tolerance: float) -> torch.Tensor:
    """sign(eps) as int8, 0 where |eps| <= tolerance."""
    return (torch.sign(eps) * (eps.abs() > tolerance)).to(torch.int8)


def _run(
    model: nn.Module,
    images: torch.Tensor,
    layers: Sequence[FeatureLayer],
    conditions: torch.Tensor,
    window: tuple[int, int],
    batch_size: int,
    tolerance: float,
) -> dict[str, torch.Tensor]:
    """Signs of the feature changes: layer -> (R, N, D) int8, for occluders at ``conditions`` (R, N, 2)
    top-left corners (image i of condition r covered at conditions[r, i])."""
    n = images.shape[0]
    r = conditions.shape[0]
    baseline = torch.zeros((), dtype=images.dtype, device=images.device)
    with inference(model):
        clean: dict[str, list[torch.Tensor]] = {f.name: [] for f in layers}
        for lo in range(0, n, batch_size):
            for name, x in features_at(model, images[lo : lo + batch_size], layers).items():
                clean[name].append(x)
        x0 = {name: torch.cat(chunks) for name, chunks in clean.items()}
        limits = {name: tolerance * float(x.abs().max()) for name, x in x0.items()}
        signs = {name: torch.empty((r * n, x.shape[1]), dtype=torch.int8) for name, x in x0.items()}
        image_of = torch.arange(n).repeat(r)
        positions = torch.cat([image_of[:, None], conditions.reshape(r * n, 2)], 1).to(images.device)
        for lo in range(0, r * n, batch_size):
            chunk = positions[lo : lo + batch_size]
            occluded = occlusion_batch(images, baseline, chunk, window)
            for name, x in features_at(model, occluded, layers).items():
                eps = x0[name][chunk[:, 0]] - x
                signs[name][lo : lo + len(chunk)] = _signs(eps, limits[name]).cpu()
    return {name: s.view(r, n, -1) for name, s in signs.items()}


def correspondence(
    model: nn.Module,
    images: torch.Tensor,
    parts: Mapping[str, torch.Tensor],
    layers: Sequence[str | int] | None = None,
    window: int | tuple[int, int] | None = None,
    *,
    random_draws: int = 3,
    seed: int = 0,
    random_within: torch.Tensor | None = None,
    batch_size: int = 64,
    tolerance: float = TOLERANCE,
) -> CorrespondenceResult:
    """The paper's Table 1: how consistently covering each part changes the features, against random squares.

    Args:
        model: a plain CNN (see zfaccel.models.plain); run in eval mode under no_grad (its flags are restored).
        images: (N, C, H, W) float, N >= 2, normalised for the model (so 0 is the dataset's mean colour,
            which the occluder shows), on the model's device and of its dtype: N images of one kind of object.
        parts: part name -> (N, 2) real tensor, the (row, col) pixel (index units) of that part in each
            image, inside the image. The square is centred there, shifted inside the image where it would
            stick out.
        layers: layer names or indices into ``model.features`` (see zfaccel.analysis.feature_layers:
            ``convK``, ``poolK``, ``fcK``, ``penultimate``). Default: the last convolution and the
            penultimate layer, the paper's layers 5 and 7 (conv5 and fc7 in ZFNet and the demo model).
        window: the square's side, or (height, width). Default: an eighth of the shorter side
            (``default_window``: 8 px at 64 px).
        random_draws: how many sets of random squares make the control (each: one square per image).
        seed: the random squares' seed: the same seed, the same squares.
        random_within: optional (N, H, W) bool masks: the random squares are then centred on a random pixel
            of each mask (the paper's "random parts of the object"); by default anywhere in the image.
        batch_size: occluded images per forward pass.
        tolerance: a change of at most ``tolerance`` x the layer's largest clean activation has sign 0.

    Returns:
        CorrespondenceResult: per layer and part the Delta sum and its normalised mean and std; the
        random control likewise; ``.markdown()`` and ``.render(path)`` give the table.
    """
    chosen = resolve_layers(model, default_layers(model) if layers is None else layers)
    images = _check_images(model, images)
    n, _, h, w = images.shape
    size = (h, w)
    where = _check_parts(parts, n, size)
    window_hw = _check_window(window, size)
    masks = _check_masks(random_within, images)
    random_draws = check_int(random_draws, "random_draws")
    seed = check_int(seed, "seed", low=0)
    batch_size = check_int(batch_size, "batch_size")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be a number in [0, 1), got {tolerance!r}")

    generator = torch.Generator().manual_seed(seed)
    conditions = [corners(c, window_hw, size) for c in where.values()]
    conditions += [random_corners(n, window_hw, size, generator, masks) for _ in range(random_draws)]
    signs = _run(model, images, chosen, torch.stack(conditions), window_hw, batch_size, float(tolerance))
    hamming = {name: torch.stack([pair_hamming(s) for s in per]) for name, per in signs.items()}
    changed = {name: (per != 0).double().mean(2) for name, per in signs.items()}
    return CorrespondenceResult(
        layers=tuple(f.name for f in chosen),
        parts=tuple(where),
        window=window_hw,
        num_images=n,
        random_draws=random_draws,
        random_on_object=masks is not None,
        dims={name: s.shape[2] for name, s in signs.items()},
        hamming=hamming,
        changed=changed,
        corners=torch.stack(conditions),
    )
