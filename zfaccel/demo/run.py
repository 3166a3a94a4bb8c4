"""``zfaccel demo``: the paper's figures on the bundled model and data, in under a minute on 2 CPU cores.

What it writes (and why each is cheap enough):
- ``projections/<n>_<class>.png``: for a few test images, the 4 strongest feature maps of
  conv1..conv5 projected back to pixels (paper Fig. 1 style); 6 images x 5 layers x 4 maps
  = 120 projections, each cropped to its receptive field.
- ``top9/<layer>.png``: for every convolution, each feature map's 9 strongest activations over
  the bundled test set, projected, beside the matching image patches (Fig. 2); 2,000 images
  of 64 px are 2,000 x 20 MMAC = 40 GMAC per pass.
- ``evolution.png``: those projections epoch by epoch while the bundled model trained (Fig. 4),
  from the record ``zfaccel train`` shipped beside the weights.
- ``occlusion/<n>_<class>.png``: occlusion sensitivity of a few test images (Fig. 7): the
  strongest conv5 map's activation, the true class's probability and the predicted label
  with a grey square at each position.
- ``index.html``: every picture on one page.
"""

from __future__ import annotations

import html
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from zfaccel.analysis import DeconvNet
from zfaccel.analysis.evolution import render_evolution
from zfaccel.analysis.figures import render_projection_rows
from zfaccel.analysis.topk import top_activations
from zfaccel.models.plain import split_model
from zfaccel.models.preprocessing import preprocessing_for

PROJECTED_MAPS = 4  # strongest maps shown per layer and image
OCCLUSION_WINDOW, OCCLUSION_STRIDE = 16, 4  # a quarter of the 64 px image, 13 x 13 positions


@dataclass
class DemoOutputs:
    """Where the demo wrote its pictures, by figure."""

    folder: Path
    projections: list[Path] = field(default_factory=list)
    top9: list[Path] = field(default_factory=list)
    evolution: Path | None = None
    occlusion: list[Path] = field(default_factory=list)
    index: Path | None = None
    seconds: float = 0.0

    def all(self) -> list[Path]:
        return [*self.projections, *self.top9, *([self.evolution] if self.evolution else []), *self.occlusion]


def _pick_images(data: Dataset, count: int, class_names: list[str] | None) -> tuple[torch.Tensor, list[str]]:
    """The first image of each of ``count`` classes spread evenly over ``class_names`` (e.g. 6 of 10
    classes: 0, 2, 3, 5, 7, 8), or of the first ``count`` classes met when the names are unknown."""
    wanted = None
    if class_names and count <= len(class_names):
        wanted = sorted({round(i * len(class_names) / count) for i in range(count)})
    found: dict[int, torch.Tensor] = {}
    for i in range(len(data)):
        label = int(data[i][1])
        if label not in found and (wanted is None or label in wanted):
            found[label] = data[i][0]
            if len(found) == count:
                break
    labels = sorted(found) if wanted is not None else list(found)
    names = [class_names[k] if class_names else f"class{k}" for k in labels]
    return torch.stack([found[k] for k in labels]), names


def run_demo(
    out: str | os.PathLike = "zfaccel-demo",
    *,
    model: nn.Module | None = None,
    data: Dataset | None = None,
    class_names: list[str] | None = None,
    evolution_record: str | os.PathLike | None = None,
    images: int = 6,
    occluded: int = 3,
    show_progress: bool = True,
) -> DemoOutputs:
    """Write the demo's figures under ``out``; the defaults are the bundled model and test data.

    Args:
        out: the folder to write (created).
        model: a plain CNN in eval mode (default: ``zfaccel.models.pretrained_small()``).
        data: a Dataset of (normalised (3, H, W) float32 image, int label) items for top-9
            mining and the example images (default: the bundled shapes test split).
        class_names: names of the labels (default: the shapes classes with the bundled data).
        evolution_record: a FeatureEvolution .npz (default: the one shipped with the weights;
            skipped if missing).
        images: how many example images get deconvnet projections.
        occluded: how many of them get occlusion maps.
    """
    start = time.perf_counter()
    if model is None or data is None:
        from zfaccel.demo import shapes
        from zfaccel.models.registry import SMALL_EVOLUTION, pretrained_small

        model = model if model is not None else pretrained_small()
        if data is None:
            data, class_names = shapes.demo_test_set(), list(shapes.CLASSES)
        if evolution_record is None and SMALL_EVOLUTION.is_file():
            evolution_record = SMALL_EVOLUTION
    if not isinstance(images, int) or images < 1 or not isinstance(occluded, int) or not 0 <= occluded <= images:
        raise ValueError(f"need images >= 1 and 0 <= occluded <= images, got images={images!r}, occluded={occluded!r}")
    model = model.eval()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    result = DemoOutputs(folder)
    prep = preprocessing_for(model)
    layers = [name for name in split_model(model).names if name.startswith("conv")]
    examples, names = _pick_images(data, images, class_names)

    dn = DeconvNet(model)
    with torch.no_grad():
        for i in tqdm(range(len(examples)), desc="deconvnet projections", unit="img", disable=not show_progress):
            rows = []
            for layer in layers:
                act = dn.trace(examples[i : i + 1], layer, record=False)[0].output[0]
                strongest = act.flatten(1).amax(1).argsort(descending=True)[:PROJECTED_MAPS].tolist()
                rows.append(
                    (
                        f"{layer}: maps {', '.join(map(str, strongest))}",
                        dn.project(examples[i : i + 1], layer, strongest)[0],
                    )
                )
            path = folder / "projections" / f"{i}_{names[i]}.png"
            result.projections.append(render_projection_rows(prep.denormalize(examples[i]), rows, path))

        for layer in tqdm(layers, desc="top-9 per layer", unit="layer", disable=not show_progress):
            top = top_activations(model, data, layer, k=9, batch_size=250, show_progress=False)
            result.top9.append(top.render(folder / "top9" / f"{layer}.png"))

    if evolution_record is not None:
        result.evolution = render_evolution(evolution_record, folder / "evolution.png")

    if occluded:
        from zfaccel.analysis import Occlusion

        occ = Occlusion(model)
        res = occ.sweep(
            examples[:occluded], window=OCCLUSION_WINDOW, stride=OCCLUSION_STRIDE, show_progress=show_progress
        )
        for i in range(occluded):
            path = folder / "occlusion" / f"{i}_{names[i]}.png"
            result.occlusion.append(res.render_panel(path, i, class_names=class_names, preprocessing=prep))

    result.seconds = time.perf_counter() - start
    result.index = _write_index(result)
    return result


def _write_index(result: DemoOutputs) -> Path:
    """One HTML page showing every picture, grouped by figure."""
    sections = [
        ("Deconvnet projections (paper Fig. 1): the strongest maps of each layer, back in pixels", result.projections),
        ("Top-9 activations per feature map, projected, beside their image patches (Fig. 2)", result.top9),
        ("Feature evolution during training (Fig. 4)", [result.evolution] if result.evolution else []),
        ("Occlusion sensitivity (Fig. 7): feature activation, class probability, predicted label", result.occlusion),
    ]
    parts = ["<!doctype html><meta charset='utf-8'><title>zfaccel demo</title>", "<h1>zfaccel demo</h1>"]
    for title, paths in sections:
        if not paths:
            continue
        parts.append(f"<h2>{html.escape(title)}</h2>")
        for p in paths:
            rel = html.escape(p.relative_to(result.folder).as_posix())
            parts.append(f"<figure><img src='{rel}'><figcaption>{rel}</figcaption></figure>")
    index = result.folder / "index.html"
    index.write_text("\n".join(parts) + "\n")
    return index
