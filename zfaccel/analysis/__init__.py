"""The paper's analyses: the deconvnet projection, occlusion sensitivity (more to come)."""

from zfaccel.analysis.deconvnet import DeconvNet
from zfaccel.analysis.occlusion import Occlusion
from zfaccel.analysis.occlusion_result import OcclusionResult

__all__ = ["DeconvNet", "Occlusion", "OcclusionResult"]
