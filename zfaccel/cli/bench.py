"""``zfaccel bench``: time the kernels and analyses against PyTorch and Captum, and save the results."""

from __future__ import annotations

import argparse
from pathlib import Path

from zfaccel.cli.common import output_folder


def add_parser(sub) -> None:
    from zfaccel.bench.results import default_folder
    from zfaccel.bench.runner import SUITES

    p = sub.add_parser("bench", help="benchmark the kernels and analyses against PyTorch and Captum",
                       description=__doc__)  # fmt: skip
    p.add_argument("--quick", action="store_true", help="one case per op, fewer repeats (a few minutes on 2 cores)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--ops", nargs="+", default=None, choices=list(SUITES), metavar="SUITE",
                   help=f"suites to run (default: all): {', '.join(SUITES)}")  # fmt: skip
    p.add_argument("--out", type=Path, default=None,
                   help=f"folder for the JSON record (default: {default_folder()})")  # fmt: skip
    p.add_argument("--no-save", action="store_true", help="print only")
    p.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from zfaccel.bench import runner
    from zfaccel.bench.results import default_folder

    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    out = None if args.no_save else output_folder(args.out if args.out is not None else default_folder())
    result = runner.run(args.device, args.quick, args.threads, args.ops, out)
    print(runner.report(result, args.markdown))
    return 1 if result.failures else 0
