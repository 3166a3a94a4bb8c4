"""Exact incremental occlusion inference (placeholder: full re-inference until the crop engine lands)."""

from __future__ import annotations

from zfaccel.analysis.occlusion_engine import FullEngine


class IncrementalEngine(FullEngine):
    """For now the full engine; the crop-by-crop engine replaces it."""

    incremental = True
