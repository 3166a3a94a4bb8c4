"""zfaccel.nn.MaxPool2d: a drop-in torch.nn.MaxPool2d that keeps uint8 switches."""

from __future__ import annotations

import torch
from torch import nn

from zfaccel.backends import check_name
from zfaccel.geometry import PoolGeometry
from zfaccel.ops import max_pool2d_switches


class MaxPool2d(nn.MaxPool2d):
    """torch.nn.MaxPool2d on zfaccel's fused kernel.

    Same constructor and outputs as ``torch.nn.MaxPool2d`` (a subclass of it);
    the backward pass unpools through the uint8 switches saved by the forward,
    so it keeps 1 byte per output instead of the input or int64 indices (8x
    less than torch). Gradients equal torch's.

    Beyond torch's arguments (keyword-only):
        relu: return relu(pool(x)) (a fused ReLU + pool; ReLU commutes with max).
        backend: "auto", "triton", "native" or "torch".
        keep_switches: store the last forward's switches in ``self.switches``
            (uint8, the output's shape), e.g. for a deconvnet.

    ``return_indices=True`` is not supported (a ValueError): use
    :func:`zfaccel.max_pool2d_switches` and :func:`zfaccel.switches_to_indices`.
    """

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        dilation=1,
        return_indices: bool = False,
        ceil_mode: bool = False,
        *,
        relu: bool = False,
        backend: str = "auto",
        keep_switches: bool = False,
    ) -> None:
        if return_indices:
            raise ValueError(
                "zfaccel.nn.MaxPool2d keeps uint8 switches, not int64 indices: return_indices=True is not "
                "supported; call zfaccel.max_pool2d_switches and zfaccel.switches_to_indices instead"
            )
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)
        PoolGeometry.parameters(kernel_size, stride, padding, dilation)  # fail at construction, not first call
        self.relu = relu
        self.backend = check_name(backend)
        self.keep_switches = keep_switches
        self.switches: torch.Tensor | None = None

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - torch's argument name
        y, switches = max_pool2d_switches(
            input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
            relu=self.relu, backend=self.backend,
        )  # fmt: skip
        if self.keep_switches:
            self.switches = switches
        return y

    def extra_repr(self) -> str:
        extra = f", relu={self.relu}" if self.relu else ""
        extra += f", backend={self.backend!r}" if self.backend != "auto" else ""
        return super().extra_repr() + extra

    @classmethod
    def from_torch(cls, pool: nn.MaxPool2d, **kwargs) -> MaxPool2d:
        """A zfaccel MaxPool2d with ``pool``'s settings (ValueError if it returns indices)."""
        if pool.return_indices:
            raise ValueError(f"{pool!r} returns indices, which zfaccel.nn.MaxPool2d does not")
        return cls(pool.kernel_size, pool.stride, pool.padding, pool.dilation, False, pool.ceil_mode, **kwargs)


def patch(model: nn.Module, **kwargs) -> nn.Module:
    """Replace every ``nn.MaxPool2d`` inside ``model`` (in place) by :class:`MaxPool2d`; returns ``model``.

    kwargs (relu, backend, keep_switches) go to each new module. A pool with
    ``return_indices=True`` raises a ValueError naming it, before anything changes.
    """
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.MaxPool2d) and not isinstance(module, MaxPool2d)
    ]
    for name, module in targets:
        if module.return_indices:
            raise ValueError(
                f"cannot patch {name or 'the model'}: it returns indices, which zfaccel's MaxPool2d does not"
            )
    if isinstance(model, nn.MaxPool2d) and not isinstance(model, MaxPool2d):
        raise TypeError("patch() replaces modules inside a model; wrap a bare MaxPool2d with MaxPool2d.from_torch")
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, MaxPool2d.from_torch(module, **kwargs))
    return model
