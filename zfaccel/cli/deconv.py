"""``zfaccel deconv``: project channels of one layer of a model back to the pixels of an image."""

from __future__ import annotations

import argparse
from pathlib import Path

from zfaccel.cli.common import IMAGE_HELP, add_model_argument, layer_argument, load_model, output_file, parse_channels


def add_parser(sub) -> None:
    p = sub.add_parser("deconv", help="deconvnet projections of one image (paper Fig. 1)", description=__doc__)
    add_model_argument(p)
    p.add_argument("--image", type=Path, required=True, help=IMAGE_HELP)
    p.add_argument("--layer", required=True, help="conv1..conv5, pool1, pool2, pool5, ... or an index")
    p.add_argument("--channels", nargs="+", help="channel numbers, 'all', or topN (default: top8, the strongest)")
    p.add_argument("--mode", choices=["max", "map"], default="max",
                   help="max: the strongest activation alone (the paper); map: the whole map")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="the PNG to write (the image beside its projections)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from zfaccel.analysis import DeconvNet
    from zfaccel.analysis.figures import render_projection_rows
    from zfaccel.analysis.labels import verdict
    from zfaccel.models import class_names
    from zfaccel.models.preprocessing import preprocessing_for

    out = output_file(args.out, ".png")
    model = load_model(args.model, args.device, args.weights)
    prep = preprocessing_for(model)
    image = prep.load(args.image).to(args.device)
    layer = layer_argument(args.layer)
    dn = DeconvNet(model, backend=args.backend)
    act = dn.trace(image[None], layer, record=False)[0].output[0]
    channels = parse_channels(args.channels, act.shape[0], act.flatten(1).amax(1).cpu())
    proj = dn.project(image[None], layer, channels, mode=args.mode)[0].cpu()
    name = dn.plain.name_of(dn.plain.resolve(layer))
    shown = ", ".join(map(str, channels)) if len(channels) <= 8 else ", ".join(map(str, channels[:6])) + ", ..."
    label = f"{name} ({args.mode}), channels {shown}" + (f" ({len(channels)}, row by row)" if len(channels) > 8 else "")
    with torch.no_grad():
        probs = torch.softmax(model(image[None]).float(), 1)[0].cpu()
    predicted = int(probs.argmax())
    title = verdict(None, predicted, float(probs[predicted]), class_names(model))
    render_projection_rows(prep.denormalize(image.cpu()), [(label, proj)], out, title=title)
    print(f"wrote {out} ({title})")
    return 0
