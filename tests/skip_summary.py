"""Every test run's skips, counted by reason: one line per reason instead of one per place.

A plugin that tests/conftest.py and bench/conftest.py load. It is not a conftest.py at the
repository's root: pytest would then put the root on sys.path, and the tests would import the
checkout's zfaccel (which has no compiled extension after a plain ``pip install .``) instead of
the installed one, skipping every native test. Each test keeps its own skip and reason; the CUDA
ones (one per test per CUDA backend, thousands on a machine without a GPU) share one line.
``-rs`` (or ``-ra``) still lists every skip with its place.
"""

from __future__ import annotations

import collections
import os
import re

import pytest

# "needs a CUDA GPU (none on this machine)", "the GPU variant ... needs a CUDA GPU", ...
CUDA = re.compile(r"\bneeds a CUDA GPU\b")
CUDA_LINE = "need a CUDA GPU (none on this machine)"


def _reason(report: pytest.TestReport) -> tuple[str, str]:
    """(reason, file) of a skip, the CUDA ones under one reason and no file."""
    path, _, reason = report.longrepr if isinstance(report.longrepr, tuple) else ("", 0, str(report.longrepr))
    reason = reason.removeprefix("Skipped: ")
    return (CUDA_LINE, "") if CUDA.search(reason) else (reason, path)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped or set(config.option.reportchars) & set("saA") or getattr(config, "_zfaccel_skips", False):
        return  # none, pytest lists them itself, or the other conftest (tests/, bench/) printed them already
    config._zfaccel_skips = True
    counts = collections.Counter()
    files = collections.defaultdict(set)
    for report in skipped:
        reason, path = _reason(report)
        counts[reason] += 1
        if path:
            files[reason].add(os.path.relpath(path, terminalreporter.startpath))
    terminalreporter.write_sep("-", f"{len(skipped):,} skipped, by reason")
    width = len(f"{counts.most_common(1)[0][1]:,}")
    for reason, n in counts.most_common():
        where = f" [{', '.join(sorted(files[reason]))}]" if files[reason] else ""
        terminalreporter.write_line(f"{n:>{width},} skipped: {reason}{where}")
