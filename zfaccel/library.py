"""zfaccel's ops registered with ``torch.library``: ``torch.ops.zfaccel.*``.

Each op has a real implementation (backend chosen at call time by
:func:`zfaccel.backends.dispatch`), a fake one (shapes, dtypes and strides only,
for torch.compile and meta tensors) and an autograd formula, so that models
using :mod:`zfaccel.nn`, deconvnet projections and occlusion batches train or
compile without graph breaks. The public functions (:mod:`zfaccel.ops`,
:mod:`zfaccel.ops.crops`) check the arguments and call these.

- ``max_pool2d_switches(x, kernel_size, stride, padding, dilation, ceil_mode, relu, backend) -> (y, switches)``
- ``max_unpool2d_switches(y, switches, output_size, kernel_size, stride, padding, dilation, relu, backend) -> x_hat``
- ``spatial_argmax(x, backend) -> (values, indices)``
- ``occlusion_batch(images, baseline, positions, window, crop_origins, crop_size, backend) -> out``
- ``conv_transpose_crops(x, weight, offset, stride, dilation, groups, map_size, relu, weights_finite, backend) -> y``
- ``unpool_crops(x, switches, image_index, offset, kernel_size, stride, padding, dilation, map_size, relu, backend)
  -> y``
- ``unpool_conv_transpose_crops(x, switches, image_index, offset, kernel_size, stride, padding, dilation, map_size,
  unpool_relu, weight, conv_offset, conv_stride, conv_dilation, groups, conv_map_size, relu, weights_finite,
  backend) -> y``: the two crop ops in one (the unpooled crops never whole in memory)

Gradients: the pool's is the unpool of grad_y (masked by y > 0 with the fused
ReLU) through the saved uint8 switches; the unpool's is the gather of grad_x
(masked by x_hat > 0 with ReLU) at the switches. Neither saves its input.
spatial_argmax's values get torch.max's gradient (all of it to the argmax);
occlusion_batch's output is a copy, whose gradient goes back to the pixel of the
image or the baseline each cell copied; the crop ops are linear in ``x`` (and
``weight``): their gradients are the transposed steps, masked as the forward
masks. Integer outputs (switches, indices) are marked non-differentiable, and
integer inputs (switches, positions, offsets, indices) get no gradient.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor

from zfaccel import backends
from zfaccel.checks import memory_format
from zfaccel.geometry import PoolGeometry
from zfaccel.reference import switch_gather
from zfaccel.reference.crops import gather_crops, inside, offset_below, spread
from zfaccel.reference.occlusion_batch import occlusion_batch_transpose


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


# ---------------------------------------------------------------- spatial_argmax


@torch.library.custom_op("zfaccel::spatial_argmax", mutates_args=())
def spatial_argmax(x: Tensor, backend: str) -> tuple[Tensor, Tensor]:
    values, indices = backends.dispatch("spatial_argmax", backend, x.device)(x)
    return values.contiguous(), indices.contiguous()  # as the fake ones, whatever x's strides


@spatial_argmax.register_fake
def _(x, backend):
    size = tuple(x.shape[:2])
    return x.new_empty(size), x.new_empty(size, dtype=torch.int64)


def _argmax_setup_context(ctx, inputs, output):
    x, _ = inputs
    _, indices = output
    ctx.mark_non_differentiable(indices)
    ctx.save_for_backward(indices)
    ctx.shape = tuple(x.shape)


def _argmax_backward(ctx, grad_values, _grad_indices):
    (indices,) = ctx.saved_tensors
    n, c, h, w = ctx.shape
    grad = grad_values.new_zeros((n, c, h * w)).scatter(2, indices[..., None], grad_values[..., None])
    return grad.view(n, c, h, w), None


spatial_argmax.register_autograd(_argmax_backward, setup_context=_argmax_setup_context)


# ---------------------------------------------------------------- occlusion_batch


@torch.library.custom_op("zfaccel::occlusion_batch", mutates_args=())
def occlusion_batch(
    images: Tensor,
    baseline: Tensor,
    positions: Tensor,
    window: list[int],
    crop_origins: Tensor,
    crop_size: list[int],
    backend: str,
) -> Tensor:
    launch = backends.dispatch("occlusion_batch", backend, images.device)
    return launch(images, baseline, positions, tuple(window), crop_origins, tuple(crop_size))


@occlusion_batch.register_fake
def _(images, baseline, positions, window, crop_origins, crop_size, backend):
    return images.new_empty((positions.shape[0], images.shape[1], *crop_size))


def _occlusion_setup_context(ctx, inputs, output):
    images, _, positions, window, crop_origins, _, _ = inputs
    ctx.save_for_backward(positions, crop_origins)
    ctx.shape = tuple(images.shape)
    ctx.window = tuple(window)


def _occlusion_backward(ctx, grad):
    positions, crop_origins = ctx.saved_tensors
    grad_images, grad_baseline = occlusion_batch_transpose(grad, ctx.shape, positions, ctx.window, crop_origins)
    return grad_images, grad_baseline, None, None, None, None, None


occlusion_batch.register_autograd(_occlusion_backward, setup_context=_occlusion_setup_context)


# ---------------------------------------------------------------- the deconvnet's crop ops


def _zero_where_not(keep: Tensor, t: Tensor) -> Tensor:
    return torch.where(keep, t, torch.zeros((), dtype=t.dtype, device=t.device))


def _zero_skipping(weight: Tensor, weights_finite: bool | None) -> dict[str, str] | None:
    """The backends ruled out for a filter step with ``weight``: skipping zeros drops 0 * inf = nan, so
    the native kernels step aside for non-finite weights (the dense path runs)."""
    if weights_finite is None:
        weights_finite = bool(torch.isfinite(weight).all())
    return None if weights_finite else {"native": "the weights hold inf or nan (skipping zeros would drop 0 * inf)"}


@torch.library.custom_op("zfaccel::conv_transpose_crops", mutates_args=())
def conv_transpose_crops(
    x: Tensor,
    weight: Tensor,
    offset: Tensor,
    stride: list[int],
    dilation: list[int],
    groups: int,
    map_size: list[int],
    relu: bool,
    weights_finite: bool | None,
    backend: str,
) -> Tensor:
    launch = backends.dispatch(
        "conv_transpose_crops", backend, x.device, x.dtype, unfit=_zero_skipping(weight, weights_finite)
    )
    return launch(x, weight, tuple(stride), tuple(dilation), groups, offset, tuple(map_size), relu)


@conv_transpose_crops.register_fake
def _(x, weight, offset, stride, dilation, groups, map_size, relu, weights_finite, backend):
    size = spread(tuple(x.shape[-2:]), tuple(weight.shape[-2:]), stride, dilation)
    return x.new_empty((x.shape[0], weight.shape[1] * groups, *size))


def _conv_setup_context(ctx, inputs, output):
    x, weight, offset, stride, dilation, groups, map_size, relu, _, _ = inputs
    ctx.save_for_backward(x, weight, offset, output)
    ctx.params = (list(stride), list(dilation), groups, tuple(map_size), relu)


def _conv_backward(ctx, grad):
    x, weight, offset, y = ctx.saved_tensors
    stride, dilation, groups, map_size, relu = ctx.params
    grad = _zero_where_not((y > 0) if relu else inside(offset, tuple(y.shape[-2:]), map_size), grad)
    grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
        grad, x, weight, None, stride, [0, 0], dilation, True, [0, 0], groups, [*ctx.needs_input_grad[:2], False]
    )
    return grad_x, grad_w, None, None, None, None, None, None, None, None


conv_transpose_crops.register_autograd(_conv_backward, setup_context=_conv_setup_context)


@torch.library.custom_op("zfaccel::unpool_crops", mutates_args=())
def unpool_crops(
    x: Tensor,
    switches: Tensor,
    image_index: Tensor,
    offset: Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    map_size: list[int],
    relu: bool,
    backend: str,
) -> Tensor:
    launch = backends.dispatch("unpool_crops", backend, x.device, x.dtype)
    pairs = (tuple(kernel_size), tuple(stride), tuple(padding), tuple(dilation), tuple(map_size))
    return launch(x, switches, image_index, offset, *pairs, relu)


@unpool_crops.register_fake
def _(x, switches, image_index, offset, kernel_size, stride, padding, dilation, map_size, relu, backend):
    return x.new_empty((*x.shape[:2], *spread(tuple(x.shape[-2:]), kernel_size, stride, dilation)))


def _unpool_crops_setup_context(ctx, inputs, output):
    x, switches, image_index, offset, kernel_size, stride, padding, dilation, map_size, relu, _ = inputs
    ctx.save_for_backward(switches, image_index, offset, output)
    ctx.params = (tuple(x.shape[-2:]), tuple(kernel_size), tuple(stride), tuple(padding), tuple(dilation),
                  tuple(map_size), relu)  # fmt: skip


def _unpool_crops_backward(ctx, grad):
    switches, image_index, offset, y = ctx.saved_tensors
    size, kernel, stride, padding, dilation, map_size, relu = ctx.params
    out_offset = offset_below(offset, stride, padding)
    grad = _zero_where_not((y > 0) if relu else inside(out_offset, tuple(y.shape[-2:]), map_size), grad)
    g = PoolGeometry.for_unpool(spread(size, kernel, stride, dilation), size, kernel, stride, 0, dilation)
    grad_x = switch_gather(grad, gather_crops(switches, image_index, offset, size), g)
    grad_x = _zero_where_not(inside(offset, size, tuple(switches.shape[-2:])), grad_x)
    return grad_x, None, None, None, None, None, None, None, None, None, None


unpool_crops.register_autograd(_unpool_crops_backward, setup_context=_unpool_crops_setup_context)


@torch.library.custom_op("zfaccel::unpool_conv_transpose_crops", mutates_args=())
def unpool_conv_transpose_crops(
    x: Tensor,
    switches: Tensor,
    image_index: Tensor,
    offset: Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    map_size: list[int],
    unpool_relu: bool,
    weight: Tensor,
    conv_offset: Tensor,
    conv_stride: list[int],
    conv_dilation: list[int],
    groups: int,
    conv_map_size: list[int],
    relu: bool,
    weights_finite: bool | None,
    backend: str,
) -> Tensor:
    unfit = _zero_skipping(weight, weights_finite)
    launch = backends.dispatch("unpool_conv_transpose_crops", backend, x.device, x.dtype, unfit=unfit)
    pool = (tuple(kernel_size), tuple(stride), tuple(padding), tuple(dilation), tuple(map_size))
    conv = (tuple(conv_stride), tuple(conv_dilation), groups, conv_offset, tuple(conv_map_size))
    return launch(x, switches, image_index, offset, *pool, unpool_relu, weight, *conv, relu)


@unpool_conv_transpose_crops.register_fake
def _(x, switches, image_index, offset, kernel_size, stride, padding, dilation, map_size, unpool_relu, weight,
      conv_offset, conv_stride, conv_dilation, groups, conv_map_size, relu, weights_finite, backend):  # fmt: skip
    unpooled = spread(tuple(x.shape[-2:]), kernel_size, stride, dilation)
    size = spread(unpooled, tuple(weight.shape[-2:]), conv_stride, conv_dilation)
    return x.new_empty((x.shape[0], weight.shape[1] * groups, *size))


def _fused_setup_context(ctx, inputs, output):
    x, switches, image_index, offset, kernel_size, stride, padding, dilation, map_size, unpool_relu, weight, \
        conv_offset, conv_stride, conv_dilation, groups, conv_map_size, relu, _, _ = inputs  # fmt: skip
    ctx.save_for_backward(x, switches, image_index, offset, weight, conv_offset, output)
    ctx.pool = (list(kernel_size), list(stride), list(padding), list(dilation), list(map_size), unpool_relu)
    ctx.conv = (list(conv_stride), list(conv_dilation), groups, tuple(conv_map_size), relu)


def _fused_backward(ctx, grad):
    """The two steps' gradients in turn; the unpooled crops are recomputed (the forward never kept them)."""
    x, switches, image_index, offset, weight, conv_offset, y = ctx.saved_tensors
    kernel, stride, padding, dilation, map_size, unpool_relu = ctx.pool
    unpooled = unpool_crops(x, switches, image_index, offset, kernel, stride, padding, dilation, map_size,
                            unpool_relu, "auto")  # fmt: skip
    conv = SimpleNamespace(saved_tensors=(unpooled, weight, conv_offset, y), params=ctx.conv,
                           needs_input_grad=(ctx.needs_input_grad[0], ctx.needs_input_grad[10]))  # fmt: skip
    grad_u, grad_w = _conv_backward(conv, grad)[:2]
    grad_x = None
    if ctx.needs_input_grad[0]:
        pool = SimpleNamespace(saved_tensors=(switches, image_index, offset, unpooled),
                               params=(tuple(x.shape[-2:]), *map(tuple, ctx.pool[:5]), unpool_relu))  # fmt: skip
        grad_x = _unpool_crops_backward(pool, grad_u)[0]
    return grad_x, None, None, None, None, None, None, None, None, None, grad_w, *([None] * 8)


unpool_conv_transpose_crops.register_autograd(_fused_backward, setup_context=_fused_setup_context)
