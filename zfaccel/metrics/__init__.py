"""Measures of how alike two maps are, for judging approximations against exact results."""

from zfaccel.metrics.ssim import ssim

__all__ = ["ssim"]
