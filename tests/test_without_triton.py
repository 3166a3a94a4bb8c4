"""zfaccel without Triton installed (it is the optional extra ``zfaccel[triton]``): importing it and
every CPU path work, and the "triton" backend is reported unavailable, never half-imported.

The child process hides Triton as if it were not installed: every finder on ``sys.meta_path`` is
wrapped so that it finds neither the ``triton`` package nor its distribution metadata.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

HIDE_TRITON = """
import sys

class HideTriton:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name == "triton" or name.startswith("triton."):
            return None
        find = getattr(self.finder, "find_spec", None)
        return None if find is None else find(name, path, target)

    def find_distributions(self, *args, **kwargs):
        find = getattr(self.finder, "find_distributions", None)
        found = () if find is None else find(*args, **kwargs)
        return (d for d in found if (d.metadata["Name"] or "").lower() != "triton")

    def __getattr__(self, attr):
        return getattr(self.finder, attr)

assert "triton" not in sys.modules
sys.meta_path[:] = [HideTriton(f) for f in sys.meta_path]
"""

CPU_PATHS = """
import importlib.metadata, importlib.util
import torch, zfaccel
from zfaccel.models import pretrained_small

assert importlib.util.find_spec("triton") is None
try:
    importlib.metadata.version("triton")
    raise AssertionError("triton's metadata is still visible")
except importlib.metadata.PackageNotFoundError:
    pass
print("backends", zfaccel.available_backends("cpu"))
try:
    zfaccel.max_pool2d_switches(torch.randn(1, 2, 6, 6), 2, backend="triton")
except zfaccel.BackendUnavailableError as err:
    print("explicit triton:", err)

g = torch.Generator().manual_seed(0)
x = torch.randn(2, 3, 9, 11, generator=g)
for backend in ("auto", "native", "torch"):
    y, s = zfaccel.max_pool2d_switches(x, 3, 2, ceil_mode=True, backend=backend)
    assert torch.equal(y, torch.nn.functional.max_pool2d(x, 3, 2, ceil_mode=True))
    x_hat = zfaccel.max_unpool2d_switches(y, s, x.shape[-2:], 3, 2, relu=True, backend=backend)
    positions = torch.tensor([[0, 0, 0], [1, 4, 5]])
    occluded = zfaccel.occlusion_batch(x, torch.zeros(()), positions, 3, backend=backend)
    values, _ = zfaccel.spatial_argmax(x, backend=backend)
    assert x_hat.shape == x.shape and occluded.shape == (2, 3, 9, 11) and torch.equal(values, x.amax((2, 3)))

model = pretrained_small()
images = torch.randn(1, 3, 64, 64, generator=g)
proj = zfaccel.DeconvNet(model).project(images, "conv2", [0, 1], mode="max")
assert proj.shape == (1, 2, 3, 64, 64) and bool(proj.isfinite().all())
res = zfaccel.Occlusion(model).sweep(images, window=16, stride=16)
assert res.prob.shape == (1, 4, 4)
pool = zfaccel.nn.MaxPool2d(3, 2, ceil_mode=True)
xg = x.clone().requires_grad_()
pool(xg).sum().backward()
assert xg.grad.shape == x.shape
print("triton imported:", "triton" in sys.modules)
"""


def test_every_cpu_path_runs_without_triton(tmp_path):
    env = {**os.environ, "TRITON_INTERPRET": "1"}  # with Triton installed, "triton" would be listed
    env.pop("ZFACCEL_BACKEND", None)
    out = subprocess.run(
        [sys.executable, "-c", HIDE_TRITON + CPU_PATHS],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,  # not the checkout: "-c" puts the current folder first on sys.path
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "backends ['native', 'torch']"
    assert "Triton is not installed" in lines[1]
    assert lines[-1] == "triton imported: False"


def test_the_control_lists_triton_where_it_is_installed(tmp_path):
    """Where Triton is installed the same child, without the hiding, lists it: the hiding is what removes it."""
    if importlib.util.find_spec("triton") is None:
        pytest.skip("Triton is not installed: nothing to hide (the test above ran without it)")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    code = "import zfaccel; print(zfaccel.available_backends('cpu'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                         cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "'triton'" in out.stdout
