"""Which occlusion engine a model gets: incremental inference where the model allows it, else full
re-inference (the base engine knows neither subclass's conditions)."""

from __future__ import annotations

import warnings

from torch import nn

from zfaccel.analysis.occlusion.engine import FullEngine, OcclusionEngine
from zfaccel.analysis.occlusion.incremental import IncrementalEngine
from zfaccel.analysis.occlusion.memory import check_batch_size, check_max_memory
from zfaccel.analysis.occlusion.plan import check_tau
from zfaccel.backends import check_name
from zfaccel.models.plain import split_model


def make_engine(
    model: nn.Module,
    feature_layer: str | int = "conv5",
    *,
    incremental: bool = True,
    batch_size: int | None = None,
    max_memory: int | None = None,
    backend: str = "auto",
    tau: float = 1.0,
) -> OcclusionEngine:
    """An engine for ``model``: incremental inference where the model allows it, else full re-inference.

    ``incremental=False`` gives full re-inference. A model the incremental path cannot handle
    (not a plain CNN of Conv2d / ReLU / MaxPool2d / LocalResponseNorm / BatchNorm2d / Dropout
    features followed by a head, or features not starting with a convolution) gives full
    re-inference with a warning. ``backend`` runs occlusion_batch and the fused ReLU + switch
    pooling ("auto", "triton", "native", "torch"). ``tau`` < 1 approximates with the projective-field
    threshold (plan.py): it needs the incremental engine, and a model it cannot serve is a ValueError
    rather than a silent exact run. ValueError for an unknown ``feature_layer``, a bad ``batch_size``,
    ``max_memory``, ``backend`` or ``tau``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_batch_size(batch_size)
    check_max_memory(max_memory)
    check_name(backend)
    tau = check_tau(tau)
    if not isinstance(incremental, bool):
        raise TypeError(f"incremental must be a bool, got {incremental!r}")
    try:
        plain = split_model(model)
        why = None if plain.head is not None else "it has no classifier head after its features"
    except (TypeError, ValueError) as error:
        plain, why = None, str(error)
    if plain is not None and not isinstance(plain.features[0], nn.Conv2d):
        why = f"its features start with {type(plain.features[0]).__name__}, not a Conv2d"
    if tau < 1 and (not incremental or why is not None):
        reason = "incremental=False was asked for" if not incremental else why
        raise ValueError(f"tau={tau} approximates incremental inference, which cannot run here: {reason}")
    if incremental and why is None:
        return IncrementalEngine(model, feature_layer, batch_size=batch_size, max_memory=max_memory, plain=plain,
                                 backend=backend, tau=tau)  # fmt: skip
    if incremental:
        warnings.warn(f"occlusion: incremental inference cannot handle this model ({why}); "
                      f"using full re-inference", stacklevel=2)  # fmt: skip
    usable = plain if plain is not None and plain.head is not None else None
    return FullEngine(model, feature_layer, batch_size=batch_size, max_memory=max_memory, plain=usable,
                      backend=backend)  # fmt: skip
