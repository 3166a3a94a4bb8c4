"""The paper's analyses: the deconvnet projection, occlusion sensitivity, invariance (Fig. 5), filter
diagnostics (Fig. 6), correspondence (Table 1), feature generalisation (section 5.2) and how much of a
projection lies on its object."""

from zfaccel.analysis.correspondence import correspondence
from zfaccel.analysis.correspondence_result import CorrespondenceResult
from zfaccel.analysis.deconvnet import DeconvNet
from zfaccel.analysis.filters import FilterReport, filters
from zfaccel.analysis.first_layers import FirstLayers, compare_first_layers
from zfaccel.analysis.generalisation import generalisation
from zfaccel.analysis.generalisation_result import GeneralisationResult
from zfaccel.analysis.invariance import InvarianceResult, invariance
from zfaccel.analysis.occlusion import Occlusion, OcclusionResult
from zfaccel.analysis.projection_quality import ProjectionQuality, projection_on_object


def __getattr__(name: str):
    # render_invariance draws with matplotlib, which loads only to draw
    if name == "render_invariance":
        from zfaccel.analysis.invariance_figure import render_invariance

        return render_invariance
    raise AttributeError(f"module 'zfaccel.analysis' has no attribute {name!r}")


__all__ = [
    "CorrespondenceResult",
    "DeconvNet",
    "FilterReport",
    "FirstLayers",
    "GeneralisationResult",
    "InvarianceResult",
    "Occlusion",
    "OcclusionResult",
    "ProjectionQuality",
    "compare_first_layers",
    "correspondence",
    "filters",
    "generalisation",
    "invariance",
    "projection_on_object",
    "render_invariance",
]
