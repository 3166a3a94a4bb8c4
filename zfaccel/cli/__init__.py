"""The ``zfaccel`` command line."""

from zfaccel.cli.main import main

__all__ = ["main"]
