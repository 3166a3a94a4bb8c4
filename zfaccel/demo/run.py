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
  with a grey square at each position (16 px square, stride 4 at 64 px: 13 x 13 positions),
  and that map projected into the image beside its top 9 (the conv5 table mined above).
- ``studies/``: the paper's other studies (with ``studies=True``): invariance of a few examples
  to shifts, zooms and rotations (Fig. 5: 4 images x 63 transformed copies), the first layer's
  filters with their spectral concentration and dead filters over 200 test images (Fig. 6;
  with the bundled model also beside its variant with an AlexNet-like first layer, and what
  conv2 sees through each), and, with the bundled data, the correspondence of object parts
  (Table 1: 24 centred stars, 5 tips and 3 random draws, each a batch of 24 occluded images);
  with the bundled model, the feature-generalisation curve (section 5.2) from the record shipped
  beside its weights (the study trains 24 networks: minutes, not seconds).
- ``index.html``: every picture on one page, each with a caption.

The example images are the first correctly classified image of each of a few classes spread over
the ten (``correct_only=False`` takes the first image of each class, right or wrong).
"""

from __future__ import annotations

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
from zfaccel.analysis.labels import class_name, verdict
from zfaccel.analysis.topk import top_activations
from zfaccel.models.plain import split_model
from zfaccel.models.preprocessing import preprocessing_for
from zfaccel.pages import Section, write_page

PROJECTED_MAPS = 4  # strongest maps shown per layer and image


@dataclass
class DemoOutputs:
    """Where the demo wrote its pictures, by figure."""

    folder: Path
    projections: list[Path] = field(default_factory=list)
    top9: list[Path] = field(default_factory=list)
    evolution: Path | None = None
    occlusion: list[Path] = field(default_factory=list)
    studies: list[Path] = field(default_factory=list)
    index: Path | None = None
    seconds: float = 0.0
    captions: dict[Path, str] = field(default_factory=dict)  # figure -> what it shows

    def all(self) -> list[Path]:
        evolution = [self.evolution] if self.evolution else []
        return [*self.projections, *self.top9, *evolution, *self.occlusion, *self.studies]


SCAN_BATCH = 250  # images classified at a time while looking for correctly classified examples


def _classes_in(data: Dataset, class_names: list[str] | None) -> list[int]:
    """The labels the data holds: every index of ``class_names`` when given, else the distinct labels
    found, in order of first appearance."""
    if class_names:
        return list(range(len(class_names)))
    seen: dict[int, None] = {}
    for i in range(len(data)):
        seen.setdefault(int(data[i][1]), None)
    return list(seen)


def _pick_images(
    model: nn.Module, data: Dataset, classes: list[int], count: int, correct_only: bool
) -> tuple[torch.Tensor, list[int]]:
    """One image of each of ``count`` classes spread evenly over ``classes`` (6 of 10: 0, 2, 3, 5, 7, 8):
    the first the model classifies correctly (``correct_only``; the first of the class where none is),
    else the first of the class. Returns (images (count, 3, H, W), their labels)."""
    wanted = [classes[round(i * len(classes) / count)] for i in range(count)]
    first: dict[int, torch.Tensor] = {}
    right: dict[int, torch.Tensor] = {}
    device = next(model.parameters()).device
    for lo in range(0, len(data), SCAN_BATCH):
        items = [data[i] for i in range(lo, min(lo + SCAN_BATCH, len(data)))]
        labels = [int(item[1]) for item in items]
        keep = [j for j, label in enumerate(labels) if label in wanted and label not in right]
        if not keep:
            continue
        images = torch.stack([items[j][0] for j in keep])
        predicted = model(images.to(device)).argmax(1).tolist() if correct_only else [None] * len(keep)
        for j, pred in zip(keep, predicted, strict=True):
            label = labels[j]
            first.setdefault(label, items[j][0])
            if pred == label or not correct_only:
                right.setdefault(label, items[j][0])
        if len(right) == count:
            break
    chosen = {**first, **right}
    return torch.stack([chosen[k] for k in wanted]), wanted


def run_demo(
    out: str | os.PathLike = "zfaccel-demo",
    *,
    model: nn.Module | None = None,
    data: Dataset | None = None,
    class_names: list[str] | None = None,
    evolution_record: str | os.PathLike | None = None,
    images: int = 6,
    occluded: int = 3,
    correct_only: bool = True,
    studies: bool = True,
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
        images: how many example images get deconvnet projections, one per class, so at most the
            number of classes (ValueError before any work otherwise).
        occluded: how many of them get occlusion maps.
        correct_only: pick examples the model classifies correctly (the first of their class).
        studies: add the paper's other studies (Figs. 5 and 6; Table 1 with the bundled data).
    """
    start = time.perf_counter()
    bundled_data, bundled_model = data is None, model is None
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
    classes = _classes_in(data, class_names)
    if images > len(classes):
        raise ValueError(f"images={images}: the data has {len(classes)} classes and the demo shows one example "
                         f"image per class, so at most {len(classes)}")  # fmt: skip
    model = model.eval()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    result = DemoOutputs(folder)
    prep = preprocessing_for(model)
    layers = [name for name in split_model(model).names if name.startswith("conv")]
    with torch.no_grad():
        examples, labels = _pick_images(model, data, classes, images, correct_only)
        probs = torch.softmax(model(examples.to(next(model.parameters()).device)).float(), 1).cpu()
    names = [class_name(k, class_names).replace(" ", "") for k in labels]

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
            pred = int(probs[i].argmax())
            title = verdict(labels[i], pred, float(probs[i, pred]), class_names)
            render_projection_rows(prep.denormalize(examples[i]), rows, path, title=f"Example {i}: {title}",
                                   columns=PROJECTED_MAPS)  # fmt: skip
            result.projections.append(path)
            result.captions[path] = (f"Example {i}: {title}; the {PROJECTED_MAPS} strongest maps of conv1 to conv5, "
                                     "each cut to its receptive field (the box of the same colour)")  # fmt: skip

        tops = {}  # layer -> its top-9 table: panel (c) of the occlusion figures shows the feature layer's
        for layer in tqdm(layers, desc="top-9 per layer", unit="layer", disable=not show_progress):
            tops[layer] = top_activations(model, data, layer, k=9, batch_size=250, show_progress=False)
            result.top9.append(folder / "top9" / f"{layer}.png")
            tops[layer].render(result.top9[-1])

    if evolution_record is not None:
        result.evolution = folder / "evolution.png"
        render_evolution(evolution_record, result.evolution)

    if occluded:
        from zfaccel.analysis import Occlusion
        from zfaccel.analysis.occlusion.figures import verdict as occlusion_verdict

        occ = Occlusion(model)
        # Default geometry: a 16 px square at stride 4 on 64 px images. The maps show the true class.
        res = occ.sweep(examples[:occluded], labels=labels[:occluded], show_progress=show_progress)
        for i in range(occluded):
            path = folder / "occlusion" / f"{i}_{names[i]}.png"
            res.render_panel(path, i, class_names=class_names, preprocessing=prep, name=f"Example {i}", model=dn,
                             top=tops.get(res.feature_layer))  # fmt: skip
            result.occlusion.append(path)
            result.captions[path] = f"Example {i}: {occlusion_verdict(res, i, class_names)}"

    if studies:
        _studies(result, model, data, examples, labels, bundled_data, bundled_model, show_progress)

    result.seconds = time.perf_counter() - start
    result.index = _write_index(result, len(data))
    return result


INVARIANCE_IMAGES = 4  # examples in Fig. 5: each gets 25 shifts, 9 zooms and 25 turns
FILTER_IMAGES = 200  # test images over which a filter must stay below 1 % of the layer's peak to count as dead
PART_IMAGES = 24  # centred stars for Table 1: 276 pairs per part


def _invariance_figure(folder: Path, model: nn.Module, examples: torch.Tensor, labels: list[int]) -> tuple[Path, str]:
    from zfaccel.analysis import invariance
    from zfaccel.analysis.invariance_figure import render_invariance

    n = min(INVARIANCE_IMAGES, len(examples))
    runs = [invariance(model, examples[:n], labels[:n], t) for t in ("translate", "scale", "rotate")]
    path = folder / "fig5_invariance.png"
    render_invariance(runs, path)
    return path, (
        f"{n} examples shifted vertically, zoomed and turned; per amount, the Euclidean distance between "
        f"the features of the original and the transformed image at {runs[0].layers[0]} and "
        f"{runs[0].layers[-1]} (the paper's layers 1 and 7), and the probability of the true class"
    )


def _held_out(data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The first FILTER_IMAGES images of ``data`` (N, 3, H, W) and their labels (N,) int64: what Fig. 6's
    dead-filter test and accuracies look at."""
    n = min(FILTER_IMAGES, len(data))
    items = [data[i] for i in range(n)]
    return torch.stack([image for image, _ in items]), torch.tensor([int(label) for _, label in items])


def _filters_figure(folder: Path, model: nn.Module, images: torch.Tensor) -> tuple[Path, str]:
    from zfaccel.analysis import filters

    report = filters(model, "conv1", data=images)
    path = folder / "fig6_filters.png"
    report.render(path)
    dead = int(report.dead.sum()) if report.dead is not None else 0
    return path, (
        f"The first layer's {len(report.norm)} filters, each stretched to its own range, and their spectral "
        f"concentration (share of energy in the 4 strongest DFT coefficients; white noise "
        f"{report.noise_concentration:.2f}, a Gabor about 0.86): mean {report.mean_concentration:.2f}, "
        f"{int(report.unstructured.sum())} unstructured, {dead} dead on {len(images)} test images"
    )


def _first_layers_figure(
    folder: Path, model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> tuple[Path, str]:
    from zfaccel.analysis import compare_first_layers
    from zfaccel.models import pretrained_small

    n = len(images)
    models = {"bundled (ZFNet-like)": model, "AlexNet-like variant": pretrained_small("alexnet")}
    result = compare_first_layers(models, images, labels)
    path = folder / "fig6_first_layers.png"
    result.render(path)
    ours, theirs = result.counts(0), result.counts(1)
    return path, (
        f"The bundled model's first layer (5x5 filters, stride 2) beside the same network trained with an "
        f"AlexNet-like one (9x9, stride 4), as the paper's Fig. 6 compares ZFNet with AlexNet: filters on top, "
        f"the strongest activation of 16 conv2 maps projected below. Mean spectral concentration "
        f"{ours['mean_concentration']:.2f} against {theirs['mean_concentration']:.2f}, unstructured filters "
        f"{ours['unstructured']} against {theirs['unstructured']}, accuracy on these {n} test images "
        f"{ours['accuracy']:.1%} against {theirs['accuracy']:.1%}"
    )


def _correspondence_table(folder: Path, model: nn.Module) -> tuple[Path, str]:
    from zfaccel.analysis import correspondence
    from zfaccel.demo import shapes

    stars = shapes.part_images("star", PART_IMAGES, centred=True)
    path = folder / "table1_correspondence.png"
    correspondence(model, stars.images, stars.parts).render(path)
    return path, (
        f"{PART_IMAGES} centred stars; each tip covered by a grey square in turn. Lower means covering that "
        "part changes the features more alike across images; the last column covers random squares."
    )


def _generalisation_curve(folder: Path) -> tuple[Path, str]:
    from zfaccel.analysis import GeneralisationResult
    from zfaccel.demo.generalisation_record import RECORD

    record = GeneralisationResult.load(RECORD)
    path = folder / "generalisation.png"
    record.render(path)
    return path, (
        "A new softmax on the frozen model's penultimate features against the same network trained from "
        f"scratch, on {record.num_classes} generated digit classes it never saw, with 1 to 30 examples per "
        "class (the record shipped with the model: python -m zfaccel.demo.generalisation_record rebuilds it)"
    )


def _studies(result: DemoOutputs, model: nn.Module, data: Dataset, examples: torch.Tensor, labels: list[int],
             bundled_data: bool, bundled_model: bool, show_progress: bool) -> None:  # fmt: skip
    """Figs. 5 and 6; Table 1 when the data is the bundled shapes (it needs their named parts); the
    generalisation curve when the model is the bundled one (its record was made with it)."""
    folder = result.folder / "studies"
    held_out, held_out_labels = _held_out(data)
    steps = [
        lambda: _invariance_figure(folder, model, examples, labels),
        lambda: _filters_figure(folder, model, held_out),
    ]
    if bundled_data:
        steps.append(lambda: _correspondence_table(folder, model))
    if bundled_model:
        steps.append(lambda: _first_layers_figure(folder, model, held_out, held_out_labels))
        steps.append(lambda: _generalisation_curve(folder))
    for step in tqdm(steps, desc="studies", unit="study", disable=not show_progress):
        path, caption = step()
        result.studies.append(path)
        result.captions[path] = caption


def _write_index(result: DemoOutputs, layers_seen: int) -> Path:
    """One HTML page showing every picture, grouped by figure, each with a caption."""
    sections = [
        Section(
            "Deconvnet projections (paper Fig. 1)",
            "For each example image and each layer, the feature maps that respond most strongly to it, each "
            "projected back to pixels on its own: unpool with the max-pool switches, rectify, filter with the "
            "transposed weights, layer by layer down to the image. Grey is zero; lighter and darker show the sign.",
            [(p, result.captions.get(p, "")) for p in result.projections],
        ),
        Section(
            "Top-9 activations per feature map (paper Fig. 2)",
            f"For every feature map of a layer, its 9 strongest activations over the {layers_seen:,} test images: "
            "the left 3 x 3 block holds their projections, the right 3 x 3 block the image patches under their "
            "receptive fields, in the same order.",
            [
                (p, f"{p.stem}: feature map by feature map, projections (left) beside image patches (right)")
                for p in result.top9
            ],
        ),  # fmt: skip
        Section(
            "Feature evolution during training (paper Fig. 4)",
            "The strongest activation of a few feature maps per layer over a fixed probe set, projected, "
            "after each training epoch (one column per epoch).",
            [(result.evolution, "columns: epochs; rows: feature maps of conv1 to conv5")] if result.evolution else [],
        ),
        Section(
            "Occlusion sensitivity (paper Fig. 7)",
            "A grey square slides over the image; each cell of a map tells what happened with the square centred "
            "there: (b) the total activation of the conv5 map strongest on the clean image, (d) the probability "
            "of the true class, (e) the most probable class. (c) shows that map's strongest activation on the "
            "clean image projected into it (black square: its receptive field), beside the map's 9 strongest "
            "activations over the test set, projected.",
            [(p, result.captions.get(p, "")) for p in result.occlusion],
        ),
        Section(
            "The paper's other studies (Figs. 5 and 6, Table 1, section 5.2)",
            "Fig. 5: how far features move when the image is shifted, zoomed or turned, at the first "
            "convolution and the penultimate layer, and whether the prediction holds. Fig. 6: the first "
            "layer's filters; structured filters (edges, blobs, Gabor-like) concentrate their energy in few "
            "frequencies, noise-like ones do not; and the same network with a larger, coarser first layer. "
            "Table 1: whether covering the same part in different images "
            "changes the features alike (lower than random squares means the network relates the parts). "
            "Section 5.2: how well the frozen features serve a new task with few examples per class.",
            [(p, result.captions.get(p, "")) for p in result.studies],
        ),
    ]
    intro = (f"The paper's figures on the bundled small ZFNet and its generated shapes data, made in "
             f"{result.seconds:.0f} s. Click a picture to open it at full size.")  # fmt: skip
    return write_page(result.folder / "index.html", "zfaccel demo", intro, sections)
