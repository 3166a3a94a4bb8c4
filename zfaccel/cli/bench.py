"""``zfaccel bench``: time the kernels against PyTorch and save the results."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmark the kernels against PyTorch", description=__doc__)
    p.add_argument("--quick", action="store_true", help="one case per op, fewer repeats (under a minute on 2 cores)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    from zfaccel.bench.runner import SUITES

    p.add_argument("--ops", nargs="+", default=None, choices=list(SUITES), help="suites to run (default: all)")
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for the JSON record")
    p.add_argument("--no-save", action="store_true", help="print only")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from zfaccel.bench import runner

    if args.threads is not None and args.threads < 1:
        raise SystemExit("zfaccel bench: --threads must be at least 1")
    rows, env, path = runner.run(args.device, args.quick, args.threads, args.ops, None if args.no_save else args.out)
    print(runner.report(rows, env, path, args.markdown))
    return 0
