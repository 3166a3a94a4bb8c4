"""Arguments and helpers the analysis commands share."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

IMAGE_HELP = "an image file (its shorter side resized to the model's input size, then centre-cropped)"


def add_model_argument(p: argparse.ArgumentParser, *, backend: bool = True) -> None:
    """--model, --weights and --device, and --backend for commands whose kernels take one."""
    p.add_argument("--model", default="small",
                   help="zfnet, alexnet, vgg11, vgg13, vgg16 or vgg19 (random weights unless --weights is given), "
                        "small (the bundled demo model), small-alexnet (its variant with an AlexNet-like first layer), "
                        "or a weights file of any of these (or of pytorchcv's "
                        "ZFNet); default: small")  # fmt: skip
    p.add_argument("--weights", type=Path, metavar="FILE",
                   help="weights for --model zfnet, alexnet or vggN: a torchvision-style state_dict file (.pt, .pth "
                        "or .safetensors; for zfnet also pytorchcv's), read without running code")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    if backend:
        add_backend_argument(p)


def add_backend_argument(p: argparse.ArgumentParser) -> None:
    """--backend: which implementation runs the kernels."""
    p.add_argument("--backend", default="auto", choices=["auto", "triton", "native", "torch"],
                   help="kernel implementation: auto (default: C++ on CPU, Triton on CUDA), triton, native "
                        "(the compiled C++/CUDA extension) or torch (the pure-PyTorch reference)")  # fmt: skip


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


def pair(values: list[int], name: str) -> tuple[int, int]:
    """``--window 32`` or ``--window 32 24`` -> (32, 32) / (32, 24); ValueError for 0, negatives or 3 values."""
    if len(values) not in (1, 2):
        raise ValueError(f"--{name} takes one or two numbers, got {len(values)}")
    if min(values) < 1:
        raise ValueError(f"--{name} must be at least 1 pixel, got {' '.join(map(str, values))}")
    return (values[0], values[-1])


def baseline_colour(spec: str, preprocessing):
    """'mean' -> None (0 in normalised units); 'v' or 'r,g,b' in [0, 1] -> that colour normalised, (3,) float32."""
    import torch

    if spec == "mean":
        return None
    try:
        values = [float(v) for v in spec.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 3) or not all(0 <= v <= 1 for v in values):
        raise ValueError(f"--baseline {spec!r}: write 'mean', a grey level in [0, 1] or R,G,B in [0, 1]")
    rgb = torch.tensor(values * 3 if len(values) == 1 else values, dtype=torch.float32)
    return preprocessing.normalize(rgb.view(3, 1, 1)).view(3)


def add_geometry_arguments(p: argparse.ArgumentParser) -> None:
    """--window, --stride, --baseline, --feature-layer: the occluder and what is totalled (Fig. 7)."""
    p.add_argument("--window", type=int, nargs="+", default=None, metavar="PX",
                   help="the occluder's side, or height and width, in pixels (default: what fits the model's "
                        "input, 32 at 224 px as in the paper, 16 at 64 px)")  # fmt: skip
    p.add_argument("--stride", type=int, nargs="+", default=None, metavar="PX",
                   help="the step between occluder positions, or rows and columns (default: a quarter of the "
                        "window)")  # fmt: skip
    p.add_argument("--baseline", default="mean",
                   help="what the occluder shows: 'mean' (the data's mean colour, the paper's grey square; "
                        "default), or a grey level or R,G,B colour in [0, 1]")  # fmt: skip
    p.add_argument("--feature-layer", default="conv5", help="layer whose strongest map is totalled (default conv5)")


def add_approximation_arguments(p: argparse.ArgumentParser) -> None:
    """--tau and --drill-down: compute less than the exact maps (zfaccel.Approximation)."""
    p.add_argument("--tau", type=float, default=1.0,
                   help="projective-field threshold in (0, 1]: each layer recomputes at most this share of its "
                        "size around the occluder (default 1: exact)")  # fmt: skip
    p.add_argument("--drill-down", type=float, default=None, metavar="F",
                   help="sweep at twice the stride first, then at the stride only the share F in (0, 1] of "
                        "positions where the probability drops most (default: off)")  # fmt: skip


def approximation(args: argparse.Namespace):
    """The zfaccel.Approximation --tau and --drill-down ask for (None: exact), naming the flags in errors."""
    from zfaccel.analysis.occlusion import Approximation

    try:
        approx = Approximation(tau=args.tau, drill_down=args.drill_down)
    except (TypeError, ValueError) as err:
        raise ValueError(f"--{str(err).replace('_', '-')}") from None
    return None if approx.exact else approx


def geometry(args: argparse.Namespace) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """(window, stride) from --window / --stride, None where not given."""
    window = None if args.window is None else pair(args.window, "window")
    stride = None if args.stride is None else pair(args.stride, "stride")
    return window, stride


def layer_argument(spec: str) -> str | int:
    """A layer name, or an index into model.features when it is a number."""
    return int(spec) if spec.lstrip("-").isdigit() else spec


def parse_target(spec: str | None, names: list[str] | None, rules: tuple[str, ...] = ()) -> str | int | None:
    """--target: a class number, a class name (where the model names its classes), or one of ``rules``
    (e.g. "predicted", "label"); ValueError naming the bad value."""
    if spec is None or spec in rules:
        return spec
    if spec.isdigit():
        return int(spec)
    if names is not None and spec in names:
        return names.index(spec)
    choices = [*rules, "a class number"] + (["a class name (" + ", ".join(names[:12]) + ")"] if names else [])
    raise ValueError(f"--target {spec!r} is not {', '.join(choices[:-1])} or {choices[-1]}")
