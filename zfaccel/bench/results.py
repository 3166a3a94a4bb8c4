"""Benchmark rows, the printed table, and the JSON record under bench/results/."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from zfaccel.atomic import replace_atomically


@dataclass
class Row:
    """One case: the PyTorch anchor and each of our backends, timed in the same run."""

    op: str
    case: str
    shape: str
    dtype: str
    layout: str
    reference: str  # what the anchor is, e.g. "aten max_pool2d(return_indices=True)"
    reference_ms: float
    ours_ms: dict[str, float] = field(default_factory=dict)  # backend -> ms (median, or min of interleaved rounds)
    min_bytes: int = 0  # fewest bytes the op must move (inputs read once, outputs written once)
    roofline_gbs: float = 0.0
    # With another process keeping one core busy: "torch" (the anchor) and each backend -> ms.
    loaded_ms: dict[str, float] = field(default_factory=dict)
    # A copy of min_bytes (half read, half written, into memory already touched) timed in the same
    # interleaved rounds: this row's roofline, steadier than one measured once per run (0: not timed).
    copy_ms: float = 0.0
    # Our kernels alone, writing into outputs allocated and touched beforehand (no page faults, no
    # argument checks): backend -> ms, the same rounds.
    kernel_ms: dict[str, float] = field(default_factory=dict)

    def best(self) -> tuple[str, float]:
        return min(self.ours_ms.items(), key=lambda kv: kv[1])

    def speedup(self) -> float:
        return self.reference_ms / self.best()[1]

    def gbs(self, ms: float) -> float:
        return self.min_bytes / (ms * 1e-3) / 1e9

    def roofline(self) -> float:
        """GB/s of the copy timed with this row, else the run's copy roofline."""
        return self.gbs(self.copy_ms) if self.copy_ms else self.roofline_gbs

    def roofline_pct(self, ms: float | None = None) -> float:
        """Our best call's (or ``ms``'s) GB/s as a share of :meth:`roofline`."""
        roof = self.roofline()
        return 100.0 * self.gbs(self.best()[1] if ms is None else ms) / roof if roof else float("nan")

    def kernel_pct(self) -> float | None:
        """Our best backend's kernel alone, as a share of :meth:`roofline`; None when not timed."""
        ms = self.kernel_ms.get(self.best()[0])
        return None if ms is None else self.roofline_pct(ms)

    def slowdowns(self) -> tuple[float, float] | None:
        """(ours, the anchor's) time under load over time on a quiet machine, for our best backend;
        None when the row was not measured under load."""
        name = self.best()[0]
        if name not in self.loaded_ms or "torch" not in self.loaded_ms:
            return None
        return self.loaded_ms[name] / self.ours_ms[name], self.loaded_ms["torch"] / self.reference_ms


@dataclass
class RateRow:
    """One throughput case (higher is better): the anchor's rate and each variant of ours, same run."""

    op: str
    case: str
    unit: str  # e.g. "projections/s"
    reference: str  # what the anchor is
    reference_rate: float | None  # None: the anchor's package is not installed (``reference`` says which)
    ours: dict[str, float] = field(default_factory=dict)  # variant -> rate
    notes: dict[str, str] = field(default_factory=dict)  # extra columns
    values: dict[str, float] = field(default_factory=dict)  # the numbers behind the notes, for code to read

    def best(self) -> tuple[str, float]:
        return max(self.ours.items(), key=lambda kv: kv[1])

    def speedup(self) -> float | None:
        return None if self.reference_rate is None else self.best()[1] / self.reference_rate


def rate_table(rows: list[RateRow], markdown: bool = False) -> str:
    notes = sorted({n for r in rows for n in r.notes})
    head = ["op", "case", "anchor", "anchor rate", "ours (best variant)", "speedup", *notes]
    body = []
    for r in rows:
        name, rate = r.best()
        speedup = r.speedup()
        anchor = "-" if r.reference_rate is None else f"{r.reference_rate:.3g} {r.unit}"
        body.append([r.op, r.case, r.reference, anchor, f"{rate:.3g} {r.unit} ({name})",
                     "-" if speedup is None else f"{speedup:.1f}x", *[r.notes.get(n, "") for n in notes]])  # fmt: skip
    return _format(head, body, markdown)


def _format(head: list[str], body: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*["-" * w for w in widths]), *(fmt.format(*row) for row in body)])


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def environment(device: torch.device, threads: int, roofline_gbs: float) -> dict:
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    return {
        "device": device_name(device),
        "device_type": device.type,
        "date": datetime.date.today().isoformat(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton_version,
        "cuda": torch.version.cuda,
        "threads": threads,
        "copy_bandwidth_gbs": round(roofline_gbs, 2),
        # torch's CPU allocator gives large tensors 2 MiB pages only when this is
        # set; it changes aten's timings a lot (fresh outputs page-fault less).
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE"),
    }


def _record(r: Row | RateRow) -> dict:
    if isinstance(r, RateRow):
        speedup = r.speedup()
        return {**asdict(r), "kind": "rate", "speedup": None if speedup is None else round(speedup, 3),
                "best_variant": r.best()[0]}  # fmt: skip
    slow = r.slowdowns()
    under_load = None if slow is None else {"ours": round(slow[0], 2), "torch": round(slow[1], 2)}
    kernel = r.kernel_pct()
    return {**asdict(r), "kind": "time", "speedup": round(r.speedup(), 3), "best_backend": r.best()[0],
            "gbs": round(r.gbs(r.best()[1]), 2), "row_copy_gbs": round(r.roofline(), 2),
            "roofline_pct": round(r.roofline_pct(), 1),
            "kernel_roofline_pct": None if kernel is None else round(kernel, 1),
            "slowdown_under_load": under_load}  # fmt: skip


def default_folder() -> Path:
    """Where results go unless ``--out`` says otherwise: the user's data folder, never the current one
    (``$XDG_DATA_HOME/zfaccel/bench``, by default ``~/.local/share/zfaccel/bench``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "zfaccel" / "bench"


def result_path(env: dict, out_dir: Path, quick: bool) -> Path:
    """``<out_dir>/<device>-<date>[-thp][-quick].json``."""
    thp = "-thp" if env["THP_MEM_ALLOC_ENABLE"] not in (None, "", "0") else ""
    quick_tag = "-quick" if quick else ""
    return out_dir / f"{slug(env['device_type'] + '-' + env['device'])}-{env['date']}{thp}{quick_tag}.json"


def save(rows: list[Row | RateRow], env: dict, path: Path, failures: dict[str, str] | None = None) -> Path:
    """Write the record (environment, every row, suites that failed and why) atomically to ``path``."""
    record = {**env, "rows": [_record(r) for r in rows], "failed_suites": dict(failures or {})}
    return replace_atomically(path, lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))


def table(rows: list[Row], markdown: bool = False) -> str:
    backends = sorted({b for r in rows for b in r.ours_ms})
    head = [
        "op",
        "shape",
        "dtype",
        "layout",
        "torch ms",
        *[f"{b} ms" for b in backends],
        "speedup",
        "GB/s",
        "copy GB/s",
        "% of copy (kernel alone)",
        "under load (ours / torch)",
    ]
    body = []
    for r in rows:
        best_backend, best_ms = r.best()
        slow = r.slowdowns()
        kernel = r.kernel_pct()
        body.append(
            [r.op, r.shape, r.dtype, r.layout, f"{r.reference_ms:.2f}",
             *[f"{r.ours_ms[b]:.2f}" if b in r.ours_ms else "-" for b in backends],
             f"{r.speedup():.1f}x ({best_backend})", f"{r.gbs(best_ms):.1f}", f"{r.roofline():.1f}",
             f"{r.roofline_pct():.0f}%" + ("" if kernel is None else f" ({kernel:.0f}%)"),
             "-" if slow is None else f"{slow[0]:.2f}x / {slow[1]:.2f}x"]
        )  # fmt: skip
    return _format(head, body, markdown)
