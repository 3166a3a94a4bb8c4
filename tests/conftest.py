"""Test setup: the Triton interpreter switch and the seeded generator fixture.

Triton runs CPU tensors only in its interpreter, which must be switched on
before zfaccel's Triton kernels are imported, hence the environment variable
is set here, before anything imports them, unless a GPU is present.
"""

from __future__ import annotations

import os
import zlib

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
from skip_summary import pytest_terminal_summary  # noqa: E402, F401  (skips counted by reason)


@pytest.fixture
def gen(request) -> torch.Generator:
    """A generator seeded from the test's id: fresh data per case, reproducible in CI."""
    return torch.Generator().manual_seed(zlib.crc32(request.node.nodeid.encode()))
