"""``python -m zfaccel``: the same command line as ``zfaccel`` (torchrun starts modules this way)."""

import sys

from zfaccel.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
