"""``zfaccel <command>``: the entry point; each command lives in its own module.

Errors a user can fix (a bad path, layer, channel or image) print one line on
stderr and exit with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys

from zfaccel.backends import BackendUnavailableError

DESCRIPTION = (
    "The analyses of Zeiler & Fergus, Visualizing and Understanding Convolutional Networks (ECCV 2014), "
    "on fused kernels: deconvnet projections, top-9 dataset patches, occlusion sensitivity, benchmarks."
)
EPILOG = "Start with `zfaccel demo` (the paper's figures on the bundled model, under a minute on 2 cores)."

# What the commands raise for bad input; anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, BackendUnavailableError, KeyError)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command line's parser and each command's own, by name."""
    from zfaccel.cli import bench, deconv, demo, info, occlusion, shapes, sweep, sweep_report, topk, train

    parser = argparse.ArgumentParser(prog="zfaccel", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=version_line())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (demo, train, deconv, topk, occlusion, sweep, sweep_report, shapes, bench, info):
        command.add_parser(sub)
    return parser, dict(sub.choices)


def main(argv: list[str] | None = None) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"zfaccel {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zfaccel {args.command}: interrupted", file=sys.stderr)
        return 130


def version_line() -> str:
    """zfaccel's version and what it runs on, as --version prints it."""
    import platform

    import torch

    from zfaccel import __version__

    return f"zfaccel {__version__} (torch {torch.__version__}, Python {platform.python_version()})"


if __name__ == "__main__":
    sys.exit(main())
