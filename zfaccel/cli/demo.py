"""``zfaccel demo``: the paper's figures on the bundled model and data (under a minute on 2 CPU cores)."""

from __future__ import annotations

import argparse
from pathlib import Path

from zfaccel.cli.common import output_folder


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="deconvnet, top-9, evolution and occlusion figures on the bundled data",
                       description=__doc__)  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("zfaccel-demo"), help="folder to write (default: zfaccel-demo)")
    p.add_argument("--images", type=int, default=6,
                   help="example images projected, one per class, 1 to 10 (default 6)")  # fmt: skip
    p.add_argument("--occluded", type=int, default=3,
                   help="how many of them get occlusion maps, 0 to --images (default 3)")  # fmt: skip
    p.add_argument("--any-example", action="store_true",
                   help="take the first image of each class even if the model misclassifies it "
                        "(default: the first correctly classified one)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from zfaccel.demo.run import run_demo
    from zfaccel.demo.shapes import CLASSES

    # Checked before any work: the bundled data has one example per class to show.
    if not 1 <= args.images <= len(CLASSES):
        raise ValueError(f"--images {args.images}: the bundled data has {len(CLASSES)} classes and the demo shows "
                         f"one example image per class, so 1 to {len(CLASSES)}")  # fmt: skip
    if not 0 <= args.occluded <= args.images:
        raise ValueError(f"--occluded {args.occluded}: occlusion maps are drawn for some of the {args.images} "
                         f"example images, so 0 to {args.images} (see --images)")  # fmt: skip
    result = run_demo(output_folder(args.out), images=args.images, occluded=args.occluded,
                      correct_only=not args.any_example, show_progress=not args.quiet)  # fmt: skip
    print(f"zfaccel demo: wrote {len(result.all())} figures in {result.seconds:.0f} s under {result.folder}/")
    for path in result.all():
        print(f"  {path}")
    print(f"open {result.index} to see them all")
    return 0
