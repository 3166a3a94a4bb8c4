"""Drop-in torch modules on zfaccel's kernels."""

from zfaccel.nn.local_response_norm import local_response_norm
from zfaccel.nn.max_pool2d import MaxPool2d, patch
from zfaccel.nn.max_unpool2d import MaxUnpool2d

__all__ = ["MaxPool2d", "MaxUnpool2d", "local_response_norm", "patch"]
