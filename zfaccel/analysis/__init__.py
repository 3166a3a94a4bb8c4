"""The paper's analyses: the deconvnet projection, occlusion sensitivity (more to come)."""

from zfaccel.analysis.deconvnet import DeconvNet
from zfaccel.analysis.occlusion import Occlusion, OcclusionResult

__all__ = ["DeconvNet", "Occlusion", "OcclusionResult"]
