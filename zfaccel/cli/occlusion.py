"""``zfaccel occlusion``: slide a grey square over an image and map what the model sees (paper Fig. 7)."""

from __future__ import annotations

import argparse
from pathlib import Path

from zfaccel.cli.common import (
    IMAGE_HELP,
    add_approximation_arguments,
    add_geometry_arguments,
    add_model_argument,
    approximation,
    baseline_colour,
    geometry,
    layer_argument,
    load_model,
    output_folder,
    parse_target,
)


def add_parser(sub) -> None:
    p = sub.add_parser("occlusion", help="occlusion sensitivity maps of one image (paper Fig. 7)", description=__doc__)
    add_model_argument(p)
    p.add_argument("--image", type=Path, required=True, help=IMAGE_HELP)
    p.add_argument("--target",
                   help="the class whose probability is mapped: a number, or a name where the model names its "
                        "classes (e.g. diamond for the bundled model); default: the prediction")  # fmt: skip
    add_geometry_arguments(p)
    add_approximation_arguments(p)
    p.add_argument("--batch-size", type=int, help="occluder positions per batch (default: sized from free memory)")
    p.add_argument("--classes", type=Path, help="a text file of class names, one per line, for the legends "
                   "(default: the model's own, where it has them, as the bundled demo model does)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="folder for the PNGs and the .npz")
    p.set_defaults(run=run)


def read_class_names(path: Path | None, classes: int) -> list[str] | None:
    if path is None:
        return None
    if not path.is_file():
        raise FileNotFoundError(f"--classes {str(path)!r} does not exist")
    names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    names = [n for n in names if n]
    if len(names) < classes:
        raise ValueError(f"--classes {str(path)!r} names {len(names)} classes; the model has {classes}")
    return names


def run(args: argparse.Namespace) -> int:
    from zfaccel.analysis import Occlusion
    from zfaccel.analysis.labels import class_name
    from zfaccel.analysis.occlusion.figures import verdict
    from zfaccel.models import class_names
    from zfaccel.models.preprocessing import preprocessing_for

    window, stride = geometry(args)
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    out = output_folder(args.out)
    model = load_model(args.model, args.device, args.weights)
    prep = preprocessing_for(model)
    image = prep.load(args.image).to(args.device)
    if window is not None and (window[0] > image.shape[-2] or window[1] > image.shape[-1]):
        raise ValueError(
            f"--window {window[0]}x{window[1]} is larger than the image as the model sees it "
            f"({image.shape[-2]}x{image.shape[-1]})"
        )
    baseline = baseline_colour(args.baseline, prep)
    names = read_class_names(args.classes, _classes(model, image)) if args.classes else class_names(model)
    target = parse_target(args.target, names)
    result = Occlusion(model, backend=args.backend).sweep(
        image[None], target=target, window=window, stride=stride, baseline=baseline,
        feature_layer=layer_argument(args.feature_layer), batch_size=args.batch_size, show_progress=True,
        approximate=approximation(args),
    )  # fmt: skip
    stem = args.image.stem
    kw = dict(class_names=names, preprocessing=prep)
    written = [out / f"{stem}_{name}.png" for name in ("feature", "prob", "label", "panel")]
    result.render_feature(written[0], **kw)
    result.render_prob(written[1], **kw)
    result.render_label(written[2], **kw)
    result.render_panel(written[3], **kw, model=_deconvnet(model, args.backend))
    written.append(result.save_npz(out / f"{stem}_occlusion.npz"))
    n_h, n_w = result.grid_shape
    print(f"wrote {', '.join(str(p) for p in written)}")
    print(f"{verdict(result, 0, names)}; target {class_name(int(result.target[0]), names)}: "
          f"p = {float(result.clean_prob[0]):.3f} unoccluded, {float(result.prob[0].min()):.3f} at its lowest; "
          f"{n_h}x{n_w} occluder positions, window {result.window[0]}x{result.window[1]}, "
          f"stride {result.stride[0]}x{result.stride[1]}")  # fmt: skip
    return 0


def _deconvnet(model, backend: str):
    """A DeconvNet of ``model`` for the panel's (c), the feature map projected; None (no (c)) for a model the
    deconvnet cannot run (not a plain CNN), whose maps the full re-inference engine still computes."""
    from zfaccel.analysis import DeconvNet

    try:
        return DeconvNet(model, backend=backend)
    except (TypeError, ValueError):
        return None


def _classes(model, image) -> int:
    import torch

    with torch.no_grad():
        return int(model.eval()(image[None]).shape[1])
