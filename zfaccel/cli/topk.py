"""``zfaccel topk``: the k strongest activations of every channel of a layer over a folder of images (Fig. 2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zfaccel.cli.common import add_model_argument, layer_argument, load_model, output_folder


def add_parser(sub) -> None:
    p = sub.add_parser("topk", help="top-k activations over a dataset, projected (paper Fig. 2)", description=__doc__)
    add_model_argument(p)
    p.add_argument("--data", type=Path, required=True, help="a folder of image files")
    p.add_argument("--layer", required=True, help="conv1..conv5, pool1, pool2, pool5, ... or an index")
    p.add_argument("--k", type=int, default=9, help="activations kept per channel (default 9)")
    p.add_argument("--channels", nargs="+", type=int, help="channels to keep (default: all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-channels", type=int, default=64, help="channels drawn in the figure (default 64)")
    p.add_argument("--checkpoint", type=Path, help="save progress here; a rerun with the same model, data and "
                   "settings resumes from it (any other is refused)")  # fmt: skip
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image file (exit 2) "
                   "instead of skipping it and reporting it at the end")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="folder for <layer>.png and <layer>.pt")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from zfaccel.analysis.topk import top_activations
    from zfaccel.models.preprocessing import ImageFolder, preprocessing_for

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.max_channels < 1:
        raise ValueError(f"--max-channels must be at least 1, got {args.max_channels}")
    out = output_folder(args.out)
    model = load_model(args.model, args.device, args.weights)
    layer = layer_argument(args.layer)
    top = top_activations(model, args.data, layer, k=args.k, channels=args.channels, batch_size=args.batch_size,
                          checkpoint=args.checkpoint, strict=args.strict, backend=args.backend)  # fmt: skip
    png = out / f"{top.layer}.png"
    top.render(png, max_channels=args.max_channels)
    table = out / f"{top.layer}.pt"
    files = ImageFolder(args.data, preprocessing_for(model)).files  # image_index counts into this list
    torch.save({**top.state(), "files": [str(f) for f in files]}, table)
    print(f"wrote {png} and {table} ({top.images_seen} images, {len(top.channels)} channels, k={top.k})")
    if top.failures:
        print(f"zfaccel topk: {skipped(top.failures, table)}", file=sys.stderr)
    return 0


def skipped(failures: list[tuple[int, str, str]], table: Path, shown: int = 3) -> str:
    """One line: how many files were skipped, where they are listed, and the first ``shown`` of them."""
    n = len(failures)
    first = "; ".join(f"{Path(path).name}: {message}".replace("\n", " ") for _, path, message in failures[:shown])
    more = f"; and {n - shown} more" if n > shown else ""
    return f"skipped {n} unreadable file{'s' * (n != 1)} (listed in {table}): {first}{more}"
