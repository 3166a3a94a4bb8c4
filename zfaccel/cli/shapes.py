"""``zfaccel shapes``: write the bundled shapes data as PNG files, one subfolder per class.

Gives the folder commands (``zfaccel sweep``, ``zfaccel topk``) data the bundled model
knows, with nothing downloaded: ``zfaccel shapes shapes-data && zfaccel sweep shapes-data
--out sweep.zarr``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zfaccel.cli.common import output_folder


def add_parser(sub) -> None:
    p = sub.add_parser("shapes", help="write the bundled shapes data as image files (one folder per class)",
                       description=__doc__)  # fmt: skip
    p.add_argument("out", type=Path, metavar="DIR", help="the folder to write (created)")
    p.add_argument("--count", type=int, default=200, help="how many images (default 200, 20 per class)")
    p.add_argument("--split", choices=["test", "train"], default="test",
                   help="test (held out from the bundled model's training; default) or train")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from zfaccel.demo.export import write_image_folder

    if args.count < 1:
        raise ValueError(f"--count must be at least 1, got {args.count}")
    folder = write_image_folder(output_folder(args.out), args.count, split=args.split)
    print(f"wrote {args.count} images of the shapes {args.split} split under {folder}/<class>/")
    return 0
