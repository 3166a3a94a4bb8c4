"""zfaccel.bench.timing: interleaved rounds keep each contender's minimum; the busy process that loads
the machine for the under-load columns starts and is gone afterwards; rows report both slowdowns."""

from __future__ import annotations

import os
import time

import torch

from zfaccel.bench.results import Row, table
from zfaccel.bench.timing import busy_core, measure_interleaved


def test_rounds_interleave_the_contenders_and_keep_each_minimum():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = measure_interleaved(fns, torch.device("cpu"), warmup=1, rounds=3)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed ones, each calling a then b
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())


def test_minimum_is_the_fastest_round():
    durations = iter([0.0, 0.03, 0.01, 0.02])  # warm-up round, then three rounds

    def fn():
        time.sleep(next(durations))

    ms = measure_interleaved({"f": fn}, torch.device("cpu"), warmup=1, rounds=3)["f"]
    assert 10 <= ms < 20


def _children() -> set[int]:
    path = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    return {int(p) for p in open(path).read().split()} if os.path.exists(path) else set()


def test_busy_core_runs_a_process_only_inside_the_block():
    before = _children()
    with busy_core():
        inside = _children() - before
        assert len(inside) == 1
    assert not (_children() & inside)


def test_rows_report_our_slowdown_beside_the_anchors():
    loaded = {"torch": 25.0, "native": 3.0}
    row = Row("pool", "c", "(1, 1, 4, 4)", "float32", "nchw", "aten", 10.0, {"native": 2.0}, 80, 1.0, loaded)
    assert row.slowdowns() == (1.5, 2.5)
    assert "1.50x / 2.50x" in table([row])
    quiet = Row("op", "c", "s", "float32", "nchw", "aten", 10.0, {"native": 2.0}, 80, 1.0)
    assert quiet.slowdowns() is None and table([quiet]).splitlines()[-1].rstrip().endswith("-")
