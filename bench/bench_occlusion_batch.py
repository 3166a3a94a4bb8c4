"""pytest-benchmark entry for occlusion_batch: ``pytest bench --benchmark-enable``.

The cases and calls are zfaccel.bench's (the same as ``zfaccel bench --quick``);
with benchmarking disabled (the default) each runs once, as a smoke test.
"""

from __future__ import annotations

import pytest
import torch

from zfaccel.bench import occlusion_batch as suite
from zfaccel.bench.cases import our_backends

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
CASES = suite.cases(DEVICE, quick=True)


def _synced(fn):
    if DEVICE.type != "cuda":
        return fn
    return lambda: (fn(), torch.cuda.synchronize())


@pytest.mark.parametrize("provider", ["torch", *our_backends(DEVICE)])
@pytest.mark.parametrize("case", CASES, ids=[f"{c.name.replace(' ', '_')}-{c.batch}-{c.dtype_name}" for c in CASES])
def test_occlusion_batch(benchmark, case, provider):
    reference, ours = suite.calls(case, DEVICE)
    benchmark.group = f"occlusion_batch {case.name} {case.batch} {case.dtype_name}"
    benchmark(_synced(reference if provider == "torch" else ours[provider]))
