"""pytest-benchmark entry for max_pool2d_switches: ``pytest bench --benchmark-enable``.

The cases and calls are zfaccel.bench's (the same as ``zfaccel bench --quick``);
with benchmarking disabled (the default) each runs once, as a smoke test.
"""

from __future__ import annotations

import pytest
import torch

from zfaccel.bench import max_pool2d_switches as suite
from zfaccel.bench.cases import our_backends, pool_cases

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
CASES = pool_cases(DEVICE, quick=True)


def _synced(fn):
    if DEVICE.type != "cuda":
        return fn
    return lambda: (fn(), torch.cuda.synchronize())


@pytest.mark.parametrize("provider", ["torch", *our_backends(DEVICE)])
@pytest.mark.parametrize("case", CASES, ids=[f"{c.name}-{c.dtype_name}-{c.layout}" for c in CASES])
def test_max_pool2d_switches(benchmark, case, provider):
    reference, ours, _ = suite.calls(case, DEVICE)
    benchmark.group = f"max_pool2d_switches {case.name} {case.dtype_name} {case.layout}"
    benchmark(_synced(reference if provider == "torch" else ours[provider]))
