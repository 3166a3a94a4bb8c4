"""Anchors that live in optional packages: whether they are installed, and what to say when not.

Captum is the anchor of the deconvnet and occlusion suites, but a CPU user of
zfaccel needs none of it: it comes with the ``bench`` extra. A suite whose anchor
is missing still times our own variants and says which anchor it skipped.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = 'pip install "zfaccel[bench]"'


def installed(package: str) -> bool:
    """Whether ``package`` can be imported (without importing it)."""
    return importlib.util.find_spec(package) is not None


def missing_note(package: str) -> str:
    """What a row says in place of an anchor that is not installed."""
    return f"{package} is not installed ({INSTALL_HINT})"
