"""pytest setup for the benchmark entries: the tests' Triton interpreter switch and skip summary.

Loaded by path, not by module name: tests/conftest.py is also a module named ``conftest``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

_spec = importlib.util.spec_from_file_location(
    "zfaccel_skip_summary", Path(__file__).parent.parent / "tests" / "skip_summary.py"
)
_summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_summary)
pytest_terminal_summary = _summary.pytest_terminal_summary
