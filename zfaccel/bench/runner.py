"""Runs the benchmark suites and records them: ``zfaccel bench [--quick] [--device cpu|cuda]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from zfaccel.bench import (
    deconvnet,
    max_pool2d_switches,
    max_unpool2d_switches,
    occlusion,
    occlusion_approx,
    occlusion_batch,
    sweep,
    top_activations,
)
from zfaccel.bench.cases import pool_cases
from zfaccel.bench.results import RateRow, Row, environment, rate_table, result_path, save, table
from zfaccel.bench.timing import copy_bandwidth_gbs
from zfaccel.checks import check_int


def _pool_rows(suite):
    def rows(dev, quick, roofline, warmup, reps):
        # Also timed with a second process on one core (CPU, full runs): what a shared machine costs.
        for case in pool_cases(dev, quick):
            yield suite.run(case, dev, roofline, warmup, reps, under_load=dev.type == "cpu" and not quick)

    return rows


# op -> rows(device, quick, roofline GB/s, warm-up runs, timed runs) yielding Row or RateRow
SUITES = {
    "max_pool2d_switches": _pool_rows(max_pool2d_switches),
    "max_unpool2d_switches": _pool_rows(max_unpool2d_switches),
    "deconvnet": deconvnet.rows,
    "top_activations": top_activations.rows,
    "occlusion_batch": occlusion_batch.rows,
    "occlusion": occlusion.rows,
    "occlusion_approx": occlusion_approx.rows,
    "sweep": sweep.rows,
}
# suite -> draw(its rows, folder) -> the PNG written (or None), run when results are saved
FIGURES = {"occlusion_approx": occlusion_approx.draw}


@dataclass
class BenchRun:
    """What ``run`` measured: rows, the environment, where the record is, suites that failed and why."""

    rows: list[Row | RateRow]
    env: dict
    path: Path | None
    failures: dict[str, str] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)

    def missing_anchors(self) -> list[str]:
        """The anchors that were not installed, as the rows name them."""
        return sorted({r.reference for r in self.rows if isinstance(r, RateRow) and r.reference_rate is None})


def run(
    device: str = "cpu",
    quick: bool = False,
    threads: int | None = None,
    ops: list[str] | None = None,
    out_dir: Path | None = None,
    show_progress: bool = True,
) -> BenchRun:
    """Time every suite's cases. With ``out_dir``, the JSON record is rewritten after each suite, so
    that the rows of finished suites survive a later failure or Ctrl-C. A suite that fails is
    reported (``BenchRun.failures``) and the others still run.

    ValueError for a device that is not there or a bad thread count.
    """
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda needs a CUDA GPU, and torch sees none")
    if threads is not None:
        check_int(threads, "threads")
        torch.set_num_threads(threads)
    unknown = sorted(set(ops or ()) - set(SUITES))
    if unknown:
        raise ValueError(f"unknown suite {', '.join(unknown)}; the suites are {', '.join(SUITES)}")
    warmup, reps = (1, 5) if quick else (3, 11)
    roofline = copy_bandwidth_gbs(dev, reps=5 if quick else 11)
    env = environment(dev, torch.get_num_threads(), roofline)
    result = BenchRun([], env, result_path(env, out_dir, quick) if out_dir is not None else None)
    for op in tqdm(ops or list(SUITES), desc="benchmarks", unit="suite", disable=not show_progress):
        first = len(result.rows)
        try:
            for row in SUITES[op](dev, quick, roofline, warmup, reps):
                result.rows.append(row)
            if op in FIGURES and result.path is not None:
                figure = FIGURES[op](result.rows[first:], result.path.parent)
                result.figures += [figure] if figure is not None else []
        except Exception as err:  # one broken suite must not cost the others' figures
            result.failures[op] = f"{type(err).__name__}: {err}"
        if result.path is not None:
            save(result.rows, env, result.path, result.failures)
    return result


def report(result: BenchRun, markdown: bool = False) -> str:
    rows, env = result.rows, result.env
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
    for anchor in result.missing_anchors():
        lines.append(f"anchor skipped: {anchor}")
    for figure in result.figures:
        lines.append(f"figure: {figure}")
    for op, error in result.failures.items():
        lines.append(f"suite {op} failed: {error}")
    if result.path is not None:
        lines.append(f"saved {result.path}")
    return "\n".join(lines)
