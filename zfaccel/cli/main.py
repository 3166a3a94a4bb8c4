"""``zfaccel <command>``: the entry point; each command lives in its own module."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zfaccel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from zfaccel.cli import bench

    bench.add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
