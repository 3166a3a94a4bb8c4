"""Pure-PyTorch implementations of every op: the oracle for the tests and the
fallback that runs on any device. Same function names and signatures as the
other backends (:mod:`zfaccel.native`, :mod:`zfaccel.triton_kernels`), one
module per op (``zfaccel.reference.<op>``)."""

from zfaccel.backends import ANY
from zfaccel.reference.max_pool2d_switches import max_pool2d_switches
from zfaccel.reference.max_unpool2d_switches import max_unpool2d_switches, switch_gather
from zfaccel.reference.occlusion_batch import occlusion_batch
from zfaccel.reference.switches_to_indices import find_invalid_switch, indices_to_switches, switches_to_indices

LABEL = "the torch reference"
# op -> device types: every op, on any device.
IMPLEMENTS = {
    op: (ANY,)
    for op in (
        "max_pool2d_switches",
        "max_unpool2d_switches",
        "occlusion_batch",
        "spatial_argmax",
        "conv_transpose_crops",
        "unpool_crops",
        "unpool_conv_transpose_crops",
    )
}


def unavailable(device) -> None:
    """The reference runs wherever torch does."""
    return None


__all__ = [
    "IMPLEMENTS",
    "LABEL",
    "find_invalid_switch",
    "indices_to_switches",
    "max_pool2d_switches",
    "max_unpool2d_switches",
    "occlusion_batch",
    "switch_gather",
    "switches_to_indices",
    "unavailable",
]
