"""Triton kernels of the switch ops, with launchers of the same names and
signatures as :mod:`zfaccel.reference`.

Importing this package imports Triton, so zfaccel only imports it on first use
of the "triton" backend; set ``TRITON_INTERPRET=1`` before that to run the
kernels on CPU tensors (the tests do).
"""

from zfaccel.triton_kernels.max_pool2d_switches import max_pool2d_switches
from zfaccel.triton_kernels.max_unpool2d_switches import max_unpool2d_switches

__all__ = ["max_pool2d_switches", "max_unpool2d_switches"]
