"""One public function per op: argument checks, then the torch.library op that
dispatches to a backend (:mod:`zfaccel.backends`)."""

from zfaccel.ops.max_pool2d_switches import max_pool2d_switches
from zfaccel.ops.max_unpool2d_switches import max_unpool2d_switches
from zfaccel.ops.occlusion_batch import occlusion_batch
from zfaccel.ops.spatial_argmax import spatial_argmax
from zfaccel.ops.switches_to_indices import switches_to_indices

__all__ = ["max_pool2d_switches", "max_unpool2d_switches", "occlusion_batch", "spatial_argmax", "switches_to_indices"]
