"""Pure-PyTorch implementations of every op: the oracle for the tests and the
fallback that runs on any device. Same function names and signatures as the
other backends (:mod:`zfaccel.native`, :mod:`zfaccel.triton_kernels`)."""

from zfaccel.reference.max_pool2d_switches import max_pool2d_switches
from zfaccel.reference.max_unpool2d_switches import max_unpool2d_switches, switch_gather
from zfaccel.reference.occlusion_batch import occlusion_batch
from zfaccel.reference.switches_to_indices import find_invalid_switch, indices_to_switches, switches_to_indices

__all__ = [
    "find_invalid_switch",
    "indices_to_switches",
    "max_pool2d_switches",
    "max_unpool2d_switches",
    "occlusion_batch",
    "switch_gather",
    "switches_to_indices",
]
