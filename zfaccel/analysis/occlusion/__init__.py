"""Occlusion sensitivity (paper section 4.2, Fig. 7): sweeps of one batch of images, the engines behind
them, the Captum-compatible ``attribute``, the figures, and sweeps of whole datasets into a store.

Modules, leaf first (each imports only those above it): ``grid`` (positions and default geometry),
``memory``, ``stages``, ``plan``, ``macs``, ``targets``, ``engine`` (the base and full re-inference),
``incremental``, ``factory`` (``make_engine``), ``figures``, ``result``, ``captum``, ``sweep``
(``Occlusion``), then the dataset sweeps: ``dataset`` (listings), ``store`` (the zarr store) and
``dataset_sweep`` (``sweep_dataset``).
"""

from zfaccel.analysis.occlusion.approximate import Approximation
from zfaccel.analysis.occlusion.dataset_sweep import sweep_dataset
from zfaccel.analysis.occlusion.factory import make_engine
from zfaccel.analysis.occlusion.grid import default_geometry, grid, positions_of
from zfaccel.analysis.occlusion.result import OcclusionResult
from zfaccel.analysis.occlusion.store import SweepStore, open_sweep
from zfaccel.analysis.occlusion.sweep import Occlusion

__all__ = [
    "Approximation",
    "Occlusion",
    "OcclusionResult",
    "SweepStore",
    "default_geometry",
    "grid",
    "make_engine",
    "open_sweep",
    "positions_of",
    "sweep_dataset",
]
