"""zfaccel.nn.MaxUnpool2d: switch unpooling (+ ReLU) as a module."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from zfaccel.backends import check_name
from zfaccel.geometry import PoolGeometry
from zfaccel.ops import max_unpool2d_switches


class MaxUnpool2d(nn.Module):
    """Unpools through uint8 switches, summing where windows overlap (the exact
    transpose of the pooling), then applies ReLU when ``relu=True``: the
    deconvnet's unpool-and-rectify step. Differentiable with respect to y.

    forward(y, switches, output_size) -> x_hat: (N, C, *output_size), y.dtype.
    """

    def __init__(
        self, kernel_size, stride=None, padding=0, dilation=1, *, relu: bool = False, backend: str = "auto"
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = PoolGeometry.parameters(
            kernel_size, stride, padding, dilation
        )
        self.relu = relu
        self.backend = check_name(backend)

    @classmethod
    def like(cls, pool: nn.MaxPool2d, **kwargs) -> MaxUnpool2d:
        """The unpool that inverts ``pool``'s geometry."""
        return cls(pool.kernel_size, pool.stride, pool.padding, pool.dilation, **kwargs)

    def forward(self, y: torch.Tensor, switches: torch.Tensor, output_size: Sequence[int]) -> torch.Tensor:
        return max_unpool2d_switches(
            y, switches, output_size, self.kernel_size, self.stride, self.padding, self.dilation,
            relu=self.relu, backend=self.backend,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, relu={self.relu}"
        )
