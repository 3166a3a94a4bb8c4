"""``zfaccel occlusion``: slide a grey square over an image and map what the model sees (paper Fig. 7)."""

from __future__ import annotations

import argparse
from pathlib import Path

from zfaccel.cli.common import add_model_argument, load_model, output_folder


def add_parser(sub) -> None:
    p = sub.add_parser("occlusion", help="occlusion sensitivity maps of one image (paper Fig. 7)", description=__doc__)
    add_model_argument(p, backend=False)
    p.add_argument("--image", type=Path, required=True, help="an image file (resized to the model's input size)")
    p.add_argument("--target", type=int, help="the class whose probability is mapped (default: the prediction)")
    p.add_argument("--window", type=int, nargs="+", default=[32], metavar="PX",
                   help="the occluder's side, or height and width, in pixels (default 32)")  # fmt: skip
    p.add_argument("--stride", type=int, nargs="+", default=[8], metavar="PX",
                   help="the step between occluder positions, or rows and columns (default 8)")  # fmt: skip
    p.add_argument("--baseline", default="mean",
                   help="what the occluder shows: 'mean' (the data's mean colour, the paper's grey square; "
                        "default), or a grey level or R,G,B colour in [0, 1]")  # fmt: skip
    p.add_argument("--feature-layer", default="conv5", help="layer whose strongest map is totalled (default conv5)")
    p.add_argument("--batch-size", type=int, help="occluder positions per batch (default: sized from free memory)")
    p.add_argument("--classes", type=Path, help="a text file of class names, one per line, for the legends "
                   "(default: the model's own, where it has them, as the bundled demo model does)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="folder for the PNGs and the .npz")
    p.set_defaults(run=run)


def pair(values: list[int], name: str) -> tuple[int, int]:
    """``--window 32`` or ``--window 32 24`` -> (32, 32) / (32, 24); ValueError for 0, negatives or 3 values."""
    if len(values) not in (1, 2):
        raise ValueError(f"--{name} takes one or two numbers, got {len(values)}")
    if min(values) < 1:
        raise ValueError(f"--{name} must be at least 1 pixel, got {' '.join(map(str, values))}")
    return (values[0], values[-1])


def baseline_colour(spec: str, preprocessing):
    """'mean' -> None (0 in normalised units); 'v' or 'r,g,b' in [0, 1] -> that colour normalised, (3,) float32."""
    import torch

    if spec == "mean":
        return None
    try:
        values = [float(v) for v in spec.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 3) or not all(0 <= v <= 1 for v in values):
        raise ValueError(f"--baseline {spec!r}: write 'mean', a grey level in [0, 1] or R,G,B in [0, 1]")
    rgb = torch.tensor(values * 3 if len(values) == 1 else values, dtype=torch.float32)
    return preprocessing.normalize(rgb.view(3, 1, 1)).view(3)


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
    from zfaccel.models import class_names
    from zfaccel.models.preprocessing import preprocessing_for

    window, stride = pair(args.window, "window"), pair(args.stride, "stride")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    out = output_folder(args.out)
    model = load_model(args.model, args.device, args.weights)
    prep = preprocessing_for(model)
    image = prep.load(args.image).to(args.device)
    if window[0] > image.shape[-2] or window[1] > image.shape[-1]:
        raise ValueError(
            f"--window {window[0]}x{window[1]} is larger than the image as the model sees it "
            f"({image.shape[-2]}x{image.shape[-1]})"
        )
    layer = int(args.feature_layer) if args.feature_layer.lstrip("-").isdigit() else args.feature_layer
    baseline = baseline_colour(args.baseline, prep)
    names = read_class_names(args.classes, _classes(model, image)) if args.classes else class_names(model)
    result = Occlusion(model).sweep(image[None], target=args.target, window=window, stride=stride,
                                    baseline=baseline, feature_layer=layer, batch_size=args.batch_size,
                                    show_progress=True)  # fmt: skip
    stem = args.image.stem
    kw = dict(class_names=names, preprocessing=prep)
    written = [
        result.render_feature(out / f"{stem}_feature.png", **kw),
        result.render_prob(out / f"{stem}_prob.png", **kw),
        result.render_label(out / f"{stem}_label.png", **kw),
        result.render_panel(out / f"{stem}_panel.png", **kw),
        result.save_npz(out / f"{stem}_occlusion.npz"),
    ]
    n_h, n_w = result.grid_shape
    print(f"wrote {', '.join(str(p) for p in written)}")
    print(f"target class {int(result.target[0])}: p = {float(result.clean_prob[0]):.3f} unoccluded, "
          f"{float(result.prob[0].min()):.3f} at its lowest; {n_h}x{n_w} occluder positions")  # fmt: skip
    return 0


def _classes(model, image) -> int:
    import torch

    with torch.no_grad():
        return int(model.eval()(image[None]).shape[1])
