"""The paper's analyses: the deconvnet projection (more to come)."""

from zfaccel.analysis.deconvnet import DeconvNet

__all__ = ["DeconvNet"]
