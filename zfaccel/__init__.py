"""zfaccel: the analyses of Zeiler & Fergus, "Visualizing and Understanding
Convolutional Networks" (ECCV 2014), on fused kernels.

Importing zfaccel never imports Triton or probes a GPU; backends load on first use.
"""

from zfaccel import library as _library  # noqa: F401  (registers torch.ops.zfaccel.*)
from zfaccel import metrics, models, nn
from zfaccel.analysis import DeconvNet, Occlusion, OcclusionResult
from zfaccel.analysis.occlusion import Approximation, SweepStore, open_sweep, sweep_dataset
from zfaccel.analysis.topk import TopActivations, top_activations
from zfaccel.backends import BackendUnavailableError, available_backends
from zfaccel.models import class_names, load_images
from zfaccel.ops import max_pool2d_switches, max_unpool2d_switches, occlusion_batch, spatial_argmax, switches_to_indices

__version__ = "0.1.0"

__all__ = [
    "Approximation",
    "BackendUnavailableError",
    "DeconvNet",
    "Occlusion",
    "OcclusionResult",
    "SweepStore",
    "TopActivations",
    "available_backends",
    "class_names",
    "load_images",
    "max_pool2d_switches",
    "max_unpool2d_switches",
    "metrics",
    "models",
    "nn",
    "occlusion_batch",
    "open_sweep",
    "spatial_argmax",
    "sweep_dataset",
    "switches_to_indices",
    "top_activations",
]
