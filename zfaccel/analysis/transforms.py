"""The paper's Fig. 5 transforms on normalised image batches: vertical shift, zoom, rotation about the centre.

Each output pixel samples the input bilinearly (affine_grid + grid_sample, align_corners=False, so the
image spans its pixels' outer edges and a transform maps pixel centres as the geometry says). Exact
cases skip the interpolation: the identity (shift 0, scale 1, a rotation by a multiple of 360 degrees)
returns the image itself, bit for bit, and a rotation by a multiple of 90 degrees of a square image is
torch.rot90, a permutation of the pixels.

Where the transformed image reaches beyond the original, ``padding="zeros"`` (the default) fills with
0, which in normalised space is the dataset's mean colour: the grey the occlusion analysis paints with,
flat and without edges. A reflected border ("reflection") would add content that is not in the image:
at the paper's largest shift, 27 % of the height, a mirrored copy of the object's lower or upper part, and
at 45 degrees of rotation mirrored corners. "border" repeats the edge pixels (grid_sample's modes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TRANSFORMS = ("translate", "scale", "rotate")
PADDINGS = ("zeros", "border", "reflection")
# What an amount means, for axis labels.
UNITS = {
    "translate": "vertical shift (pixels, + = down)",
    "scale": "scale factor (zoom about the centre)",
    "rotate": "rotation (degrees, counter-clockwise)",
}
# The paper's ranges (Fig. 5): shifts of -60..60 of 224 pixels (27 % of the height) in steps of 10,
# zoom 1..1.8, rotations 0..360 degrees.
SHIFT_FRACTION, SHIFT_STEPS = 60 / 224, 13
SCALES = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8)
ANGLE_STEP = 15  # degrees: 25 angles, 0..360, with 90, 180 and 270 among them


def default_amounts(transform: str, height: int) -> torch.Tensor:
    """The paper's range for ``transform`` on images ``height`` pixels high: (A,) float64.

    translate: 13 whole-pixel shifts over -27 %..+27 % of the height (exactly -60, -50, .., 60 at 224 px;
    -17, -14, .., 17 at 64 px); scale: 1, 1.1, .., 1.8; rotate: 0, 15, .., 360 degrees.
    """
    if transform == "translate":
        reach = SHIFT_FRACTION * height
        return torch.linspace(-reach, reach, SHIFT_STEPS, dtype=torch.float64).round().unique() + 0.0  # -0 -> 0
    if transform == "scale":
        return torch.tensor(SCALES, dtype=torch.float64)
    return torch.arange(0, 360 + ANGLE_STEP, ANGLE_STEP, dtype=torch.float64)


def is_identity(transform: str, amounts: torch.Tensor) -> torch.Tensor:
    """(A,) bool: where ``amounts`` leave the image as it is."""
    if transform == "translate":
        return amounts == 0
    if transform == "scale":
        return amounts == 1
    return torch.remainder(amounts, 360) == 0


def _source_matrices(transform: str, amounts: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 2, 3) float64 affine_grid thetas: for each output pixel, where in the input it samples.

    Built in centred pixel coordinates (x right, y down), where the source of output point p is M p + t,
    then expressed in grid_sample's [-1, 1] coordinates (x_n = x / (W / 2), y_n = y / (H / 2)):
    theta = [[M00, M01 H / W, 2 t_x / W], [M10 W / H, M11, 2 t_y / H]], so a rotation of a
    non-square image stays a rotation in pixels.
    """
    a = amounts.to(torch.float64)
    n = len(a)
    m = torch.eye(2, dtype=torch.float64).repeat(n, 1, 1)
    t = torch.zeros((n, 2), dtype=torch.float64)
    if transform == "translate":
        t[:, 1] = -a  # content moves down by a: the output pixel at y shows the input's y - a
    elif transform == "scale":
        m /= a.view(n, 1, 1)
    else:
        # Counter-clockwise on screen (y down) moves a point by [[cos, sin], [-sin, cos]]; sample by its inverse.
        rad = torch.deg2rad(a)
        c, s = torch.cos(rad), torch.sin(rad)
        m = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    theta = torch.empty((n, 2, 3), dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = m[:, 0, 0], m[:, 0, 1] * height / width, 2 * t[:, 0] / width
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = m[:, 1, 0] * width / height, m[:, 1, 1], 2 * t[:, 1] / height
    return theta


def transform_images(
    images: torch.Tensor, transform: str, amounts: torch.Tensor, padding: str = "zeros"
) -> torch.Tensor:
    """Transform each image by its own amount.

    Args:
        images: (N, C, H, W) float, normalised (0 = the dataset's mean).
        transform: "translate" (amount: pixels down, may be fractional), "scale" (amount: zoom factor > 0,
            about the centre; > 1 enlarges), "rotate" (amount: degrees counter-clockwise about the centre).
        amounts: (N,) float, one per image.
        padding: what fills the area outside the original: "zeros", "border" or "reflection".

    Returns:
        (N, C, H, W), the dtype and device of ``images``. Identity amounts give the image itself exactly.
    """
    n, _, h, w = images.shape
    amounts = amounts.detach().to("cpu", torch.float64)
    out = torch.empty_like(images)
    done = is_identity(transform, amounts)
    out[done] = images[done]
    if transform == "rotate":
        quarter = torch.remainder(amounts, 90) == 0
        if h != w:
            quarter &= torch.remainder(amounts, 180) == 0  # 90 / 270 change a non-square image's shape
        for k in (1, 2, 3):
            sel = quarter & ~done & (torch.remainder(amounts, 360) == 90 * k)
            if sel.any():
                out[sel] = torch.rot90(images[sel], k, dims=(-2, -1))  # rot90 turns counter-clockwise
        done |= quarter
    rest = (~done).nonzero().view(-1)
    if len(rest):
        theta = _source_matrices(transform, amounts[rest], h, w).to(images.device, images.dtype)
        grid = F.affine_grid(theta, [len(rest), images.shape[1], h, w], align_corners=False)
        out[rest.to(images.device)] = F.grid_sample(
            images[rest.to(images.device)], grid, mode="bilinear", padding_mode=padding, align_corners=False
        )
    return out


def check_transform(transform: object) -> str:
    """``transform`` itself when it is one of TRANSFORMS; ValueError naming it otherwise."""
    if not isinstance(transform, str) or transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(map(repr, TRANSFORMS))}, got {transform!r}")
    return transform


def check_amounts(amounts: object, transform: str) -> torch.Tensor:
    """(A,) float64 from a 1-D sequence or tensor of finite numbers (scale factors > 0); errors name ``amounts``."""
    if isinstance(amounts, torch.Tensor):
        if amounts.is_complex() or amounts.dtype == torch.bool:
            raise TypeError(f"amounts must be real numbers, got a {amounts.dtype} tensor")
        a = amounts.detach().to("cpu", torch.float64)
    else:
        try:
            a = torch.tensor(amounts, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"amounts must be a 1-D sequence of numbers or a tensor, got {amounts!r}") from err
    if a.dim() != 1 or len(a) == 0:
        raise ValueError(f"amounts must be 1-D and non-empty, got shape {tuple(a.shape)}")
    if not bool(torch.isfinite(a).all()):
        raise ValueError(f"amounts must be finite, got {a.tolist()}")
    if transform == "scale" and not bool((a > 0).all()):
        raise ValueError(f"amounts for 'scale' are zoom factors and must be > 0, got {a.tolist()}")
    return a


def check_padding(padding: object) -> str:
    if not isinstance(padding, str) or padding not in PADDINGS:
        raise ValueError(f"padding must be one of {', '.join(map(repr, PADDINGS))}, got {padding!r}")
    return padding
