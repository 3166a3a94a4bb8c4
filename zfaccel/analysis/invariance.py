"""Invariance to vertical shift, zoom and rotation (paper Fig. 5 and section 4.2).

Each image is transformed by each amount and run through the model with every transformed copy in
batches; at each chosen layer, forward hooks measure the Euclidean distance between the layer's feature
vector (its whole output, flattened) for the transformed image and for the original, and the model's
softmax gives the probability of the true class. The paper finds that small transforms move layer 1
a lot and the top layers much less, and that the network is fairly invariant to shift and zoom but not
to rotation, except for rotation-symmetric objects.

Amounts that leave the image as it is (shift 0, scale 1, rotation by a multiple of 360 degrees) are not
run again: their distance is exactly 0 and their probability the original's, whatever the batch sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from zfaccel.analysis.feature_layers import resolve_layers
from zfaccel.analysis.occlusion.engine import inference
from zfaccel.analysis.transforms import (
    check_amounts,
    check_padding,
    check_transform,
    default_amounts,
    is_identity,
    transform_images,
)
from zfaccel.checks import check_classes, check_images, check_int
from zfaccel.models.classes import class_names as model_class_names
from zfaccel.models.plain import PlainCNN, split_model
from zfaccel.models.preprocessing import Preprocessing, preprocessing_for

if TYPE_CHECKING:  # matplotlib loads only to draw (import zfaccel stays light)
    from matplotlib.figure import Figure


@dataclass(repr=False)  # the generated repr would print every tensor
class InvarianceResult:
    """How far each layer's features and the true class's probability move as the images are transformed.

    transform: "translate", "scale" or "rotate"; amounts: (A,) float64 in the transform's unit (pixels
    down, zoom factor, degrees counter-clockwise); layers: the layer names, in the order given.
    distances: layer -> (B, A) float32, ||f(T_a x_b) - f(x_b)||_2 over the layer's whole output, divided by
    ``norms[layer]`` when ``relative``; norms: layer -> (B,) float32, ||f(x_b)||_2 of each original.
    prob: (B, A) float32 softmax probability of ``labels[b]``; predicted: (B, A) int64 the top class.
    labels: (B,) int64; images: (B, 3, H, W) the originals as given (CPU), for the figure's examples;
    padding: what filled the area outside the original; preprocessing: how to undo the normalisation;
    class_names: the model's class names, or None.
    """

    transform: str
    amounts: torch.Tensor
    layers: tuple[str, ...]
    distances: dict[str, torch.Tensor]
    norms: dict[str, torch.Tensor]
    prob: torch.Tensor
    predicted: torch.Tensor
    labels: torch.Tensor
    images: torch.Tensor
    padding: str = "zeros"
    relative: bool = False
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    class_names: list[str] | None = None

    def __repr__(self) -> str:
        a = self.amounts
        return (f"InvarianceResult(transform={self.transform!r}, images={len(self.labels)}, "
                f"amounts={len(a)} ({a.min().item():g}..{a.max().item():g}), layers={self.layers}, "
                f"relative={self.relative})")  # fmt: skip

    def render(self, path=None) -> Figure:
        """The paper's Fig. 5 row for this transform (see render_invariance); saved as a PNG when given a path."""
        from zfaccel.analysis.invariance_figure import render_invariance

        return render_invariance([self], path)


def _resolve_layers(model: nn.Module, plain: PlainCNN, layers: object) -> dict[str, nn.Module]:
    """Layer name -> the module to hook; the default is the paper's layers 1 and 7 (the first convolution and
    the layer feeding the last Linear)."""
    if layers is None:
        layers = ("conv1" if "conv1" in plain.names else plain.name_of(0), "penultimate")
    elif isinstance(layers, str | int) and not isinstance(layers, bool):
        layers = (layers,)
    return {f.name: f.module for f in resolve_layers(model, layers, "layers")}


class _Recorder:
    """Forward hooks on the chosen layers: keep the originals' features (reference pass), then measure each
    transformed copy's distance to its original's as the layer runs (so a later in-place op cannot alter it)."""

    def __init__(self, modules: dict[str, nn.Module], dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.reference: dict[str, list[torch.Tensor] | torch.Tensor] = {name: [] for name in modules}
        self.rows: torch.Tensor | None = None  # the originals of the current batch; None in the reference pass
        self.current: dict[str, torch.Tensor] = {}
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in modules.items()]

    def _hook(self, name: str):
        def hook(module, inputs, output):
            if name in self.current:
                raise ValueError(f"layers: {name!r} ran twice in one forward pass (its module is used at two "
                                 "places in the model); choose another layer")  # fmt: skip
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"layers: {name!r} returns {type(output).__name__}, not a tensor")
            f = output.detach().flatten(1).to(self.dtype)
            if self.rows is None:
                self.current[name] = f.clone()  # clone: an inplace ReLU after this module would overwrite it
            else:
                self.current[name] = torch.linalg.vector_norm(f - self.reference[name][self.rows], dim=1)

        return hook

    def take(self) -> dict[str, torch.Tensor]:
        current, self.current = self.current, {}
        return current

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _forward(model: nn.Module, x: torch.Tensor, recorder: _Recorder, labels: torch.Tensor):
    """Run one batch; (the hooks' results per layer, (n,) probability of ``labels``, (n,) top class)."""
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != len(x):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise TypeError(f"the model must return (N, classes) logits, got {shape} for {len(x)} images")
    if int(labels.max()) >= out.shape[1]:
        raise ValueError(f"labels must lie in 0..{out.shape[1] - 1} (the model has {out.shape[1]} classes), "
                         f"got {int(labels.max())}")  # fmt: skip
    prob = torch.softmax(out.float(), 1)
    features = recorder.take()
    missing = [name for name in recorder.reference if name not in features]
    if missing:
        raise ValueError(f"layers: {', '.join(map(repr, missing))} did not run in the model's forward pass")
    return features, prob.gather(1, labels.to(prob.device).view(-1, 1)).view(-1), prob.argmax(1)


def invariance(
    model: nn.Module,
    images: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    transform: str,
    amounts: Sequence[float] | torch.Tensor | None = None,
    layers: Sequence[str | int] | str | None = None,
    *,
    batch_size: int = 64,
    padding: str = "zeros",
    relative: bool = False,
) -> InvarianceResult:
    """Distances between the features of original and transformed images, and p(true class) (paper Fig. 5).

    Args:
        model: a plain CNN (ZFNet, AlexNet/VGG-style, the demo model, an nn.Sequential CNN) returning
            (N, classes) logits; run in eval mode (its training flag is restored after), on its device.
        images: (B, 3, H, W) float, normalised for the model (0 = the dataset mean); when the model
            declares ``input_size``, H = W = input_size (224 for ZFNet, 64 for the demo model).
        labels: (B,) the true classes.
        transform: "translate" (vertical shift, pixels, + = down), "scale" (zoom factor about the centre)
            or "rotate" (degrees counter-clockwise about the centre).
        amounts: (A,) the amounts to try; default: the paper's ranges at this image size (shifts of up to
            27 % of the height in 13 whole-pixel steps: -60..60 by 10 at 224 px; scales 1..1.8 by 0.1;
            rotations 0..360 by 15 degrees). See zfaccel.analysis.transforms.
        layers: layer names or indices into model.features ("conv1".."conv5", "pool5", "fc6", "fc7", ...;
            see zfaccel.analysis.feature_layers); default the first convolution and the layer feeding the
            last Linear: ("conv1", "fc7") on ZFNet and the demo model, the paper's layers 1 and 7.
        batch_size: transformed images per forward pass.
        padding: what fills the area a transform uncovers: "zeros" (the dataset's mean colour, default),
            "border" or "reflection" (see zfaccel.analysis.transforms for why zeros).
        relative: divide each distance by the norm of the original's feature vector (the layers' raw
            scales differ by orders of magnitude; the paper plots raw distances). A zero norm gives inf
            (0 where the distance is 0 too).

    Returns:
        InvarianceResult with (B, A) distances per layer and probabilities; ``.render(path)`` draws Fig. 5.

    Memory: the originals' features at each layer are kept for the whole run, B x the layer's size floats
    on the model's device (ZFNet's conv1 is 96 x 110 x 110: 4.6 MB an image), plus one batch's activations.
    """
    transform = check_transform(transform)
    plain = split_model(model)
    conv = plain.first_conv
    images = check_images(images, conv.in_channels if conv is not None else None)
    size = getattr(model, "input_size", None)
    if isinstance(size, int) and tuple(images.shape[-2:]) != (size, size):
        raise ValueError(f"images must be {size} x {size} pixels for this model (its input_size), "
                         f"got {tuple(images.shape[-2:])}")  # fmt: skip
    b, _, h, _ = images.shape
    labels = check_classes(labels, b, "labels")
    amounts = default_amounts(transform, h) if amounts is None else check_amounts(amounts, transform)
    modules = _resolve_layers(model, plain, layers)
    check_int(batch_size, "batch_size")
    padding = check_padding(padding)
    if not isinstance(relative, bool):
        raise TypeError(f"relative must be a bool, got {type(relative).__name__}")

    param = next(model.parameters(), None)
    device = param.device if param is not None else images.device
    dtype = param.dtype if param is not None and param.is_floating_point() else images.dtype
    x_all = images.detach().to(device, dtype)
    recorder = _Recorder(modules, torch.promote_types(dtype, torch.float32))
    a = len(amounts)
    dist = {name: torch.zeros((b, a)) for name in modules}
    prob, predicted = torch.empty((b, a)), torch.empty((b, a), dtype=torch.int64)
    try:
        with inference(model):
            refs: dict[str, list[torch.Tensor]] = {name: [] for name in modules}
            clean_p, clean_top = [], []
            for lo in range(0, b, batch_size):
                feats, p, top = _forward(model, x_all[lo : lo + batch_size], recorder, labels[lo : lo + batch_size])
                for name in modules:
                    refs[name].append(feats[name])
                clean_p.append(p.cpu())
                clean_top.append(top.cpu())
            recorder.reference = {name: torch.cat(refs[name]) for name in modules}
            same = is_identity(transform, amounts)
            prob[:, same] = torch.cat(clean_p).view(b, 1)
            predicted[:, same] = torch.cat(clean_top).view(b, 1)
            # Every (image, amount) pair that changes the image, image-major, in batches of batch_size.
            pairs = torch.cartesian_prod(torch.arange(b), (~same).nonzero().view(-1)).view(-1, 2)
            for lo in range(0, len(pairs), batch_size):
                rows, cols = pairs[lo : lo + batch_size].unbind(1)
                x = transform_images(x_all[rows.to(device)], transform, amounts[cols], padding)
                recorder.rows = rows.to(device)
                feats, p, top = _forward(model, x, recorder, labels[rows])
                for name in modules:
                    dist[name][rows, cols] = feats[name].float().cpu()
                prob[rows, cols], predicted[rows, cols] = p.cpu(), top.cpu()
    finally:
        recorder.close()
    norms = {name: torch.linalg.vector_norm(recorder.reference[name], dim=1).float().cpu() for name in modules}
    if relative:
        for name in modules:
            n = norms[name].view(b, 1)
            dist[name] = torch.where(dist[name] == 0, 0.0, dist[name] / n)  # 0 / 0 -> 0, d / 0 -> inf
    return InvarianceResult(
        transform, amounts, tuple(modules), dist, norms, prob, predicted, labels, images.detach().cpu(),
        padding, relative, preprocessing_for(model), model_class_names(model),
    )  # fmt: skip
