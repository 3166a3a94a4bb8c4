"""Runs the benchmark suites and records them: ``zfaccel bench [--quick] [--device cpu|cuda]``."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from zfaccel.bench import max_pool2d_switches, max_unpool2d_switches
from zfaccel.bench.cases import pool_cases
from zfaccel.bench.results import Row, environment, save, table
from zfaccel.bench.timing import copy_bandwidth_gbs

SUITES = {"max_pool2d_switches": max_pool2d_switches, "max_unpool2d_switches": max_unpool2d_switches}


def run(
    device: str = "cpu",
    quick: bool = False,
    threads: int | None = None,
    ops: list[str] | None = None,
    out_dir: Path | None = Path("bench/results"),
    show_progress: bool = True,
) -> tuple[list[Row], dict, Path | None]:
    """Time every suite's cases; returns (rows, environment, path of the saved JSON or None)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda needs a CUDA GPU, and torch sees none")
    if threads is not None:
        torch.set_num_threads(threads)
    warmup, reps = (1, 5) if quick else (3, 11)
    roofline = copy_bandwidth_gbs(dev, reps=5 if quick else 11)
    ops = ops or list(SUITES)
    jobs = [(SUITES[op], case) for op in ops for case in pool_cases(dev, quick)]
    rows = [
        suite.run(case, dev, roofline, warmup, reps)
        for suite, case in tqdm(jobs, desc="benchmarks", unit="case", disable=not show_progress)
    ]
    env = environment(dev, torch.get_num_threads(), roofline)
    path = save(rows, env, out_dir, quick) if out_dir is not None else None
    return rows, env, path


def report(rows: list[Row], env: dict, path: Path | None, markdown: bool = False) -> str:
    lines = [
        f"{env['device']}; torch {env['torch']}, triton {env['triton']}, {env['threads']} threads; "
        f"copy roofline {env['copy_bandwidth_gbs']:.1f} GB/s (read + write)",
        "",
        table(rows, markdown),
        "",
        "torch = " + "; ".join(sorted({f"{r.op}: {r.reference}" for r in rows})),
    ]
    if path is not None:
        lines.append(f"saved {path}")
    return "\n".join(lines)
