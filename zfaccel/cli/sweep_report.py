"""``zfaccel sweep-report``: what a dataset sweep's store holds, as an HTML page of figures.

Writes DIR/index.html and its PNGs: the counts and failures, the distributions of clean
probabilities and of each image's largest probability drop, the mean sensitivity map per
class, and Fig. 7 panels of the images most sensitive to occlusion, of those whose label
the occluder flips most often and of done images chosen at random. The store is read one
chunk at a time, so a report on a store of millions of images needs little memory.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("sweep-report", help="an HTML report of a sweep's store: counts, distributions, Fig. 7 panels",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("store", metavar="STORE", help="the zarr store zfaccel sweep wrote")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="the folder to write (created)")
    p.add_argument("--panels", type=int, default=16,
                   help="images per list: most sensitive, most flipped, random (default 16)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="chooses the random images (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from zfaccel.analysis.occlusion.report import sweep_report

    for name in ("panels", "seed"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name} must be at least 0, got {getattr(args, name)}")
    page = sweep_report(args.store, args.out, panels=args.panels, seed=args.seed, show_progress=not args.quiet)
    print(f"zfaccel sweep-report: wrote {page}")
    return 0
