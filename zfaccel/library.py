"""The switch ops registered with ``torch.library``: ``torch.ops.zfaccel.*``.

Each op has a real implementation (backend chosen at call time), a fake one
(shapes, dtypes and strides only, for torch.compile and meta tensors) and an
autograd formula, so models that use :mod:`zfaccel.nn` train and compile
without graph breaks. The public functions in :mod:`zfaccel.ops` check the
arguments and call these.

- ``max_pool2d_switches(x, kernel_size, stride, padding, dilation, ceil_mode, relu, backend) -> (y, switches)``
- ``max_unpool2d_switches(y, switches, output_size, kernel_size, stride, padding, dilation, relu, backend) -> x_hat``

Gradients: the pool's is the unpool of grad_y (masked by y > 0 with the fused
ReLU) through the saved uint8 switches; the unpool's is the gather of grad_x
(masked by x_hat > 0 with ReLU) at the switches. Neither saves its input.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zfaccel import backends
from zfaccel.checks import memory_format
from zfaccel.geometry import PoolGeometry
from zfaccel.reference import switch_gather


def _pool_geometry(x: Tensor, kernel_size, stride, padding, dilation, ceil_mode) -> PoolGeometry:
    return PoolGeometry.for_pool(tuple(x.shape[-2:]), kernel_size, stride, padding, dilation, ceil_mode)


@torch.library.custom_op("zfaccel::max_pool2d_switches", mutates_args=())
def max_pool2d_switches(
    x: Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    ceil_mode: bool,
    relu: bool,
    backend: str,
) -> tuple[Tensor, Tensor]:
    g = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    return backends.dispatch("max_pool2d_switches", backend, x.device)(x, g, relu)


@max_pool2d_switches.register_fake
def _(x, kernel_size, stride, padding, dilation, ceil_mode, relu, backend):
    g = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    size = (*x.shape[:2], *g.output_size)
    fmt = memory_format(x)
    y = torch.empty(size, dtype=x.dtype, device=x.device, memory_format=fmt)
    return y, torch.empty(size, dtype=torch.uint8, device=x.device, memory_format=fmt)


def _pool_setup_context(ctx, inputs, output):
    x, kernel_size, stride, padding, dilation, _, relu, backend = inputs
    y, switches = output
    ctx.mark_non_differentiable(switches)
    ctx.save_for_backward(switches, y if relu else None)
    ctx.params = (list(x.shape[-2:]), kernel_size, stride, padding, dilation, relu, backend)


def _pool_backward(ctx, grad_y, _grad_switches):
    switches, y = ctx.saved_tensors
    input_size, kernel_size, stride, padding, dilation, relu, backend = ctx.params
    if relu:
        grad_y = torch.where(y > 0, grad_y, torch.zeros_like(grad_y))  # torch.relu's derivative
    grad_x = max_unpool2d_switches(grad_y, switches, input_size, kernel_size, stride, padding, dilation, False, backend)
    return grad_x, None, None, None, None, None, None, None


max_pool2d_switches.register_autograd(_pool_backward, setup_context=_pool_setup_context)


def _unpool_geometry(y: Tensor, output_size, kernel_size, stride, padding, dilation) -> PoolGeometry:
    return PoolGeometry.for_unpool(output_size, tuple(y.shape[-2:]), kernel_size, stride, padding, dilation)


@torch.library.custom_op("zfaccel::max_unpool2d_switches", mutates_args=())
def max_unpool2d_switches(
    y: Tensor,
    switches: Tensor,
    output_size: list[int],
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    relu: bool,
    backend: str,
) -> Tensor:
    g = _unpool_geometry(y, output_size, kernel_size, stride, padding, dilation)
    return backends.dispatch("max_unpool2d_switches", backend, y.device)(y, switches, g, relu)


@max_unpool2d_switches.register_fake
def _(y, switches, output_size, kernel_size, stride, padding, dilation, relu, backend):
    g = _unpool_geometry(y, output_size, kernel_size, stride, padding, dilation)
    size = (*y.shape[:2], *g.input_size)
    return torch.empty(size, dtype=y.dtype, device=y.device, memory_format=memory_format(y))


def _unpool_setup_context(ctx, inputs, output):
    y, switches, output_size, kernel_size, stride, padding, dilation, relu, _ = inputs
    ctx.save_for_backward(switches, output if relu else None)
    ctx.geometry = _unpool_geometry(y, output_size, kernel_size, stride, padding, dilation)
    ctx.relu = relu


def _unpool_backward(ctx, grad_x):
    switches, x_hat = ctx.saved_tensors
    if ctx.relu:
        grad_x = torch.where(x_hat > 0, grad_x, torch.zeros_like(grad_x))
    return switch_gather(grad_x, switches, ctx.geometry), None, None, None, None, None, None, None, None


max_unpool2d_switches.register_autograd(_unpool_backward, setup_context=_unpool_setup_context)
