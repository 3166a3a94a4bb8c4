"""``zfaccel demo``: the paper's figures on the bundled model and data (under a minute on 2 CPU cores)."""

from __future__ import annotations

import argparse
from pathlib import Path

from zfaccel.cli.common import output_folder


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="deconvnet, top-9, evolution and occlusion figures on the bundled data",
                       description=__doc__)  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("zfaccel-demo"), help="folder to write (default: zfaccel-demo)")
    p.add_argument("--images", type=int, default=6, help="example images projected (default 6)")
    p.add_argument("--occluded", type=int, default=3, help="example images given occlusion maps (default 3)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from zfaccel.demo.run import run_demo

    result = run_demo(output_folder(args.out), images=args.images, occluded=args.occluded)
    print(f"zfaccel demo: wrote {len(result.all())} figures in {result.seconds:.0f} s under {result.folder}/")
    for path in result.all():
        print(f"  {path}")
    print(f"open {result.index} to see them all")
    return 0
