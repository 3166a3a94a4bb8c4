"""Arguments and helpers the analysis commands share."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn


def add_model_argument(p: argparse.ArgumentParser, *, backend: bool = True) -> None:
    """--model, --weights and --device, and --backend for commands whose kernels take one."""
    p.add_argument("--model", default="small",
                   help="zfnet, alexnet, vgg11, vgg13, vgg16 or vgg19 (random weights unless --weights is given), "
                        "small (the bundled demo model), or a weights file of any of these (or of pytorchcv's "
                        "ZFNet); default: small")  # fmt: skip
    p.add_argument("--weights", type=Path, metavar="FILE",
                   help="weights for --model zfnet, alexnet or vggN: a torchvision-style state_dict file (.pt, .pth "
                        "or .safetensors; for zfnet also pytorchcv's), read without running code")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    if backend:
        p.add_argument("--backend", default="auto", choices=["auto", "triton", "native", "torch"])


def load_model(spec: str, device: str, weights: Path | None = None) -> nn.Module:
    """--model and --weights as a model on ``device``, in eval mode; a note on stderr when its weights are random."""
    from zfaccel.models.registry import ARCHITECTURES
    from zfaccel.models.registry import load_model as load

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA GPU")
    model = load(spec, weights, names=("--model", "--weights"))
    if weights is None and spec in ARCHITECTURES:
        print(f"zfaccel: note: --model {spec} has random weights (give trained ones with --weights FILE)",
              file=sys.stderr)  # fmt: skip
    return model.to(device)


def parse_channels(specs: list[str] | None, count: int, strongest: torch.Tensor | None = None) -> list[int]:
    """``--channels 3 7 12``, ``--channels all``, or ``--channels top8`` (the 8 strongest, from
    ``strongest``: (C,) scores); ValueError naming the bad value."""
    specs = specs or ["top8"]
    if specs == ["all"]:
        return list(range(count))
    if len(specs) == 1 and specs[0].startswith("top"):
        n = specs[0][3:]
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--channels {specs[0]!r}: write topN with N >= 1, e.g. top8")
        if strongest is None:
            raise ValueError("--channels topN needs activations to rank")
        return strongest.argsort(descending=True)[: int(n)].tolist()
    channels = []
    for s in specs:
        if not s.lstrip("-").isdigit():
            raise ValueError(f"--channels {s!r} is not a channel number (or 'all', or topN)")
        c = int(s)
        if not 0 <= c < count:
            raise ValueError(f"--channels {c} is out of range: the layer has {count} channels (0..{count - 1})")
        channels.append(c)
    return channels


def output_file(path: Path, suffix: str) -> Path:
    """A writable file path with ``suffix`` (its folder is created); ValueError otherwise."""
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise ValueError(f"--out {str(path)!r} must end with {suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {str(path)!r}: cannot create its folder ({err.strerror})") from err
    return path


def output_folder(path: Path) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {str(path)!r}: cannot create the folder ({err.strerror})") from err
    return path
