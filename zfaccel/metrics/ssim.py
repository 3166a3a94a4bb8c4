"""The structural similarity index (SSIM, Wang et al. 2004) of two maps, as scikit-image computes it.

With scikit-image's defaults: a 7 x 7 uniform window, K1 = 0.01, K2 = 0.03, sample
covariances (normalised by n - 1 = 48), and the mean of the SSIM map over the cells
whose whole window lies inside the map (scikit-image filters with reflection, then
crops (7 - 1) / 2 cells from each border: exactly the valid cells). Maps smaller than
7 cells take the largest odd window that fits (at least 3), as
``structural_similarity(..., win_size=w)`` would be told to.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

K1, K2 = 0.01, 0.03
WINDOW = 7


def _as_batch(x, name: str) -> torch.Tensor:
    t = (x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))).detach()
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8)):
        raise TypeError(f"{name} must hold numbers, got {t.dtype}")
    if t.dim() == 2:
        t = t.unsqueeze(0)
    if t.dim() != 3 or t.numel() == 0:
        raise ValueError(f"{name} must be an (H, W) or (B, H, W) map, got shape {tuple(t.shape)}")
    return t.to(torch.float64).cpu()


def window_size(height: int, width: int) -> int:
    """The window scikit-image's default would use, shrunk to the largest odd size that fits."""
    w = min(WINDOW, height, width)
    w -= 1 - w % 2
    if w < 3:
        raise ValueError(f"SSIM needs maps of at least 3 x 3 cells, got {height} x {width}")
    return w


def ssim(a, b, data_range: float | None = None) -> torch.Tensor:
    """Mean SSIM of ``a`` against ``b``: maps (H, W) -> a 0-d tensor, (B, H, W) -> (B,) float64, one per map.

    ``data_range``: the spread of values the maps can take (e.g. 1.0 for probabilities); default: the
    spread of both maps together (max - min over ``a`` and ``b``, per map; 1 where they are constant).
    Equal maps give 1. ValueError for maps of other shapes or smaller than 3 x 3.
    """
    single = np.ndim(a) == 2
    x, y = _as_batch(a, "a"), _as_batch(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    batch, h, w = x.shape
    win = window_size(h, w)
    if data_range is None:
        both = torch.cat([x.reshape(batch, -1), y.reshape(batch, -1)], 1)
        spread = both.amax(1) - both.amin(1)
        r = torch.where(spread > 0, spread, torch.ones_like(spread)).view(batch, 1, 1, 1)
    else:
        if isinstance(data_range, bool) or not isinstance(data_range, int | float) or not data_range > 0:
            raise ValueError(f"data_range must be a positive number, got {data_range!r}")
        r = torch.full((batch, 1, 1, 1), float(data_range), dtype=torch.float64)
    x, y = x.unsqueeze(1), y.unsqueeze(1)
    mean = lambda t: F.avg_pool2d(t, win, stride=1)  # noqa: E731  (valid cells only)
    n = win * win
    cov = n / (n - 1)  # sample covariance, as scikit-image's use_sample_covariance=True
    ux, uy = mean(x), mean(y)
    vx = cov * (mean(x * x) - ux * ux)
    vy = cov * (mean(y * y) - uy * uy)
    vxy = cov * (mean(x * y) - ux * uy)
    c1, c2 = (K1 * r) ** 2, (K2 * r) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    out = s.mean((1, 2, 3))
    return out[0] if single else out
