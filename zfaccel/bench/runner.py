"""Runs the benchmark suites and records them: ``zfaccel bench [--quick] [--device cpu|cuda]``."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from zfaccel.bench import (
    deconvnet,
    max_pool2d_switches,
    max_unpool2d_switches,
    occlusion,
    occlusion_batch,
    top_activations,
)
from zfaccel.bench.cases import pool_cases
from zfaccel.bench.results import RateRow, Row, environment, rate_table, save, table
from zfaccel.bench.timing import copy_bandwidth_gbs


def _pool_rows(suite):
    def rows(dev, quick, roofline, warmup, reps):
        for case in pool_cases(dev, quick):
            yield suite.run(case, dev, roofline, warmup, reps)

    return rows


# op -> rows(device, quick, roofline GB/s, warm-up runs, timed runs) yielding Row or RateRow
SUITES = {
    "max_pool2d_switches": _pool_rows(max_pool2d_switches),
    "max_unpool2d_switches": _pool_rows(max_unpool2d_switches),
    "deconvnet": deconvnet.rows,
    "top_activations": top_activations.rows,
    "occlusion_batch": occlusion_batch.rows,
    "occlusion": occlusion.rows,
}


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
    rows: list[Row | RateRow] = []
    for op in tqdm(ops, desc="benchmarks", unit="suite", disable=not show_progress):
        rows.extend(SUITES[op](dev, quick, roofline, warmup, reps))
    env = environment(dev, torch.get_num_threads(), roofline)
    path = save(rows, env, out_dir, quick) if out_dir is not None else None
    return rows, env, path


def report(rows: list[Row | RateRow], env: dict, path: Path | None, markdown: bool = False) -> str:
    timed = [r for r in rows if isinstance(r, Row)]
    rates = [r for r in rows if isinstance(r, RateRow)]
    lines = [
        f"{env['device']}; torch {env['torch']}, triton {env['triton']}, {env['threads']} threads; "
        f"copy roofline {env['copy_bandwidth_gbs']:.1f} GB/s (read + write)",
    ]
    if timed:
        lines += [
            "",
            table(timed, markdown),
            "",
            "torch = " + "; ".join(sorted({f"{r.op}: {r.reference}" for r in timed})),
        ]
    if rates:
        lines += ["", rate_table(rates, markdown)]
    if path is not None:
        lines.append(f"saved {path}")
    return "\n".join(lines)
